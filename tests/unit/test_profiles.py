"""Statistics of every commit: merged commit profiles against plain-Python oracles."""

from __future__ import annotations

import math
import statistics
import tempfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fti
from fti.errors import NotFoundError, ValidationError
from fti.services import profile_store
from fti.store import context_of

DAY0 = datetime(2024, 1, 1, tzinfo=UTC)
SPAN_US = 6 * 86_400 * 1_000_000  # event times fall within six days

row = st.fixed_dictionaries(
    {
        "ts": st.integers(0, SPAN_US - 1),
        "x": st.one_of(
            st.floats(-1e6, 1e6, allow_nan=False),
            st.sampled_from([None, math.nan, math.inf, 0.0, 1.5]),
        ),
        "k": st.one_of(st.none(), st.integers(-50, 50)),
        "s": st.one_of(st.none(), st.sampled_from(["a", "b", "c", "dd", "é"])),
    }
)
inserts = st.lists(st.lists(row, min_size=1, max_size=40), min_size=1, max_size=4)
day_offsets = st.integers(-1, 7)


def to_table(rows: list[dict[str, Any]], first_id: int) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(first_id, first_id + len(rows)), pa.int64()),
            "ts": pa.array(
                [DAY0 + timedelta(microseconds=r["ts"]) for r in rows], pa.timestamp("us", "UTC")
            ),
            "x": pa.array([r["x"] for r in rows], pa.float64()),
            "k": pa.array([r["k"] for r in rows], pa.int64()),
            "s": pa.array([r["s"] for r in rows], pa.string()),
        }
    )


def day_floor(t: datetime) -> datetime:
    return datetime(t.year, t.month, t.day, tzinfo=UTC)


def day_ceil(t: datetime) -> datetime:
    floor = day_floor(t)
    return floor if floor == t else floor + timedelta(days=1)


def check_numeric(got: dict[str, Any], values: list[Any]) -> None:
    """``values``: every value of the column in the window, nulls and NaN included."""
    assert got["nulls"] == sum(v is None for v in values)
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if "non_finite" in got:
        assert got["non_finite"] == sum(v is not None and not math.isfinite(v) for v in values)
    assert got["count"] == len(finite)
    if not finite:
        assert got.get("mean") is None
        return
    assert got["min"] == min(finite)
    assert got["max"] == max(finite)
    scale = max(1.0, *(abs(x) for x in finite))
    # Exact up to float rounding: merged (n, mean, M2) per Chan et al., compared at 1e-9.
    assert math.isclose(got["mean"], statistics.fmean(finite), rel_tol=1e-9, abs_tol=1e-9 * scale)
    assert math.isclose(
        got["stddev"], statistics.pstdev(finite), rel_tol=1e-9, abs_tol=1e-6 * scale
    )
    # Quantiles are checked by rank: the value returned for q must have a true rank interval
    # [#(< v), #(<= v)] / n within the sketch's stated normalized rank error of q.
    eps = got["rank_error"]
    n = len(finite)
    for name, v in got["quantiles"].items():
        q = int(name[1:]) / 100
        below = sum(x < v for x in finite) / n
        at_most = sum(x <= v for x in finite) / n
        assert below - eps <= q <= at_most + eps, (name, v, below, at_most, eps)


def check_strings(got: dict[str, Any], values: list[str | None]) -> None:
    present = [v for v in values if v is not None]
    assert got["nulls"] == len(values) - len(present)
    assert got["count"] == len(present)
    if not present:
        return
    assert got["min"] == min(present)
    assert got["max"] == max(present)
    distinct = got["distinct"]
    assert distinct["lower"] <= len(set(present)) <= distinct["upper"]
    for item in got["top"]:
        true = present.count(item["value"])
        assert item["lower"] <= true <= item["upper"]


@pytest.mark.slow
@given(batches=inserts, start_day=day_offsets, days=st.integers(1, 8), shift=st.integers(0, 3))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_window_statistics_equal_exact_statistics_of_the_same_rows(
    batches: list[list[dict[str, Any]]], start_day: int, days: int, shift: int
) -> None:
    with tempfile.TemporaryDirectory() as root:
        fs = fti.connect(root)
        fg = fs.feature_group("tx", version=1, primary_key=["id"], event_time="ts")
        written: list[dict[str, Any]] = []
        for batch in batches:
            fg.insert(to_table(batch, len(written)))
            written += batch
        # A window cutting days (shift hours) is rounded out to whole UTC days.
        start = DAY0 + timedelta(days=start_day, hours=shift)
        end = start + timedelta(days=days)
        got = fg.statistics(start=start, end=end)
        lo, hi = day_floor(start), day_ceil(end)
        assert (got.start, got.end) == (lo, hi)
        assert got.rounded == (shift != 0)
        inside = [r for r in written if lo <= DAY0 + timedelta(microseconds=r["ts"]) < hi]
        assert got.rows == len(inside)
        if not inside:
            assert got.features == {}
            return
        check_numeric(got["x"], [r["x"] for r in inside])
        check_numeric(got["k"], [r["k"] for r in inside])
        check_strings(got["s"], [r["s"] for r in inside])
        assert "id" not in got.features  # keys are identities, not features

        whole = fg.statistics()
        assert whole.rows == len(written)
        assert whole.commits == len(batches)
        check_numeric(whole["x"], [r["x"] for r in written])
        check_strings(whole["s"], [r["s"] for r in written])
        first = fg.statistics(version=1)
        assert first.rows == len(batches[0])
        check_numeric(first["k"], [r["k"] for r in batches[0]])


def frame(n: int, day: int, first_id: int = 0) -> pa.Table:
    rows = [
        {"ts": day * 86_400_000_000 + i, "x": float(i), "k": i % 7, "s": "abc"[i % 3]}
        for i in range(n)
    ]
    return to_table(rows, first_id)


def test_version_ignores_later_profiles_and_rejects_unknown_versions(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group("tx", version=1, primary_key=["id"], event_time="ts")
    r1 = fg.insert(frame(10, 0))
    fg.insert(frame(20, 1, first_id=10))
    assert fg.statistics(version=r1.offline_version).rows == 10
    assert fg.statistics(version=r1.offline_version)["x"]["max"] == 9.0
    assert fg.statistics().rows == 30
    with pytest.raises(NotFoundError, match="no table version 99"):
        fg.statistics(version=99)


def test_empty_window_and_bad_arguments(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group("tx", version=1, primary_key=["id"], event_time="ts")
    assert fg.statistics().rows == 0  # nothing inserted yet
    fg.insert(frame(10, 0))
    empty = fg.statistics(start=DAY0 + timedelta(days=30), end=DAY0 + timedelta(days=31))
    assert (empty.rows, empty.commits, empty.features) == (0, 0, {})
    only_x = fg.statistics(features=["x"], start=DAY0 + timedelta(days=30))
    assert only_x.features == {"x": {"kind": "other", "count": 0, "nulls": 0}}
    assert set(fg.statistics(features=["x"]).features) == {"x"}
    with pytest.raises(ValidationError, match="unknown columns"):
        fg.statistics(features=["nope"])
    with pytest.raises(ValidationError, match="timezone-aware"):
        fg.statistics(start=datetime(2024, 1, 1))
    with pytest.raises(ValidationError, match="start must be before end"):
        fg.statistics(start=DAY0, end=DAY0)
    snapshot = fs.feature_group("snap", version=1, primary_key=["id"])
    snapshot.insert(pa.table({"id": [1, 2], "v": [1.0, 3.0]}))
    assert snapshot.statistics()["v"]["mean"] == 2.0
    with pytest.raises(ValidationError, match="no event time"):
        snapshot.statistics(start=DAY0)


def test_frequent_items_of_strings(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group("tx", version=1, primary_key=["id"], event_time="ts")
    values = ["US"] * 50 + ["DE"] * 30 + ["FR"] * 5 + [None] * 3
    for part in (values[:40], values[40:]):
        first = fg.statistics().rows
        fg.insert(
            to_table([{"ts": i, "x": 1.0, "k": 1, "s": v} for i, v in enumerate(part)], first)
        )
    got = fg.statistics()["s"]
    assert [(t["value"], t["estimate"]) for t in got["top"]] == [("US", 50), ("DE", 30), ("FR", 5)]
    assert got["nulls"] == 3
    assert round(got["distinct"]["estimate"]) == 3


def test_a_commit_without_a_profile_is_profiled_on_the_next_call(
    fs: fti.FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fg = fs.feature_group("tx", version=1, primary_key=["id"], event_time="ts")
    fg.insert(frame(10, 0))
    # A crash between the data commit and its profile: the profile write fails.
    monkeypatch.setattr(profile_store, "append", _fail)
    report = fg.insert(frame(5, 2, first_id=10))
    assert report.rows == 5  # the insert itself succeeded
    monkeypatch.undo()
    # And an insert with profiles switched off.
    monkeypatch.setenv("FTI_PROFILES", "0")
    fg.insert(frame(7, 3, first_id=15))
    monkeypatch.delenv("FTI_PROFILES")
    profiles = fs._ctx.offline  # the test looks at what was stored
    table = f"{fg.spec.key}__profiles"
    before = profiles.version(table)
    got = fg.statistics()
    assert got.rows == 22
    assert got["x"]["count"] == 22
    assert got.commits == 3
    healed = profiles.version(table)
    assert healed == before + 1  # the two missing profiles, stored in one commit
    assert fg.statistics(start=DAY0 + timedelta(days=2)).rows == 12
    assert profiles.version(table) == healed  # healed once, not on every call


def _fail(*_: object, **__: object) -> None:
    raise OSError("disk full")


def test_deleted_rows_leave_the_profiles_of_rows_written(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group("tx", version=1, primary_key=["id"], event_time="ts")
    fg.insert(frame(10, 0))
    fg.delete_rows([{"id": 0}])
    got = fg.statistics()
    assert got.rows == 10  # profiles describe rows written
    assert got.commits == 1


def test_training_dataset_splits_store_sketches_beside_exact_statistics(
    fs: fti.FeatureStore,
) -> None:
    fg = fs.feature_group("tx", version=1, primary_key=["id"], event_time="ts")
    fg.insert(frame(200, 0))
    fv = fs.feature_view("tx_fv", query=fg.select(["x", "s"]), labels=["k"])
    td = fv.create_training_dataset(split={"train": 0.5, "test": 0.5}, seed=1)
    for split in ("train", "test"):
        raw = td.read_raw(split)
        got = td.profile(split)
        exact = td.statistics[split]
        check_numeric(got["x"], raw["x"].tolist())
        check_strings(got["s"], raw["s"].tolist())
        assert got["x"]["mean"] == pytest.approx(exact["x"]["mean"], rel=1e-12)
        assert got["x"]["count"] == exact["x"]["count"]  # the exact statistics are still there
    with pytest.raises(NotFoundError, match="no split 'valid'"):
        td.profile("valid")


def test_inserts_and_stream_commits_store_their_profile_at_commit_time(
    fs: fti.FeatureStore,
) -> None:
    fg = fs.feature_group("tx", version=1, primary_key=["id"], event_time="ts")
    r1 = fg.insert(frame(10, 0))
    staged = fg.stage_online(frame(4, 1, first_id=10))
    r2 = fg.commit_staged([staged])
    stored = {e.table_version for e in profile_store.entries(fs._ctx, fg.spec)}
    assert {r1.offline_version, r2.offline_version} <= stored  # before any statistics() call
    assert fg.statistics(start=DAY0 + timedelta(days=1)).rows == 4


def test_distinct_count_of_integers_beyond_float_precision(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group("big", version=1, primary_key=["id"])
    big = [2**60, 2**60 + 1, 2**60 + 2, 2**60 + 2]  # one float64 value, three distinct ints
    fg.insert(pa.table({"id": [1, 2, 3, 4], "k": pa.array(big, pa.int64())}))
    assert round(fg.statistics()["k"]["distinct"]["estimate"]) == 3


def test_profiles_of_an_earlier_group_with_the_same_name_do_not_count(
    fs: fti.FeatureStore,
) -> None:
    fg = fs.feature_group("tx", version=1, primary_key=["id"], event_time="ts")
    fg.insert(frame(10, 0))
    # A profile of table version 2 left by a deleted group of the same name and version (its
    # id sorts first, so without the owner check it would be the one used).
    stale = profile_store.profile_rows(fg.spec, frame(99, 0, first_id=100), 2)
    ids = ["0-" + "0" * 32] * stale.num_rows
    profile_store.append(fs._ctx, fg.spec, stale.set_column(1, "profile_id", pa.array(ids)))
    fg.insert(frame(5, 1, first_id=10))
    got = fg.statistics()
    assert got.rows == 15
    assert got["x"]["count"] == 15


def test_profile_table_stays_small_and_a_first_call_writes_nothing(tmp_path: Any) -> None:
    """Profiles are compacted every COMPACT_EVERY commits (a new process opens few files), the
    creation commit's marker is stored with the first insert (the first statistics() call of a
    process heals nothing, so it writes nothing), and neither changes the statistics."""
    fs = fti.connect(tmp_path)
    fg = fs.feature_group("tx", version=1, primary_key=["id"], event_time="ts")
    commits = 2 * profile_store.COMPACT_EVERY + 3
    for day in range(commits):
        fg.insert(frame(5, day % 6, first_id=5 * day))
    fs.close()
    fresh = fti.connect(tmp_path)
    ctx = context_of(fresh)
    table = profile_store.profile_table(fg.spec)
    before = ctx.offline.version(table)
    got = fresh.get_feature_group("tx", version=1).statistics()
    assert ctx.offline.version(table) == before  # nothing healed, nothing written
    assert got.rows == 5 * commits
    assert got.commits == commits
    assert got["x"]["count"] == 5 * commits
    assert got["x"]["max"] == 4.0
    assert got["k"]["min"] == 0
    # Compacted twice: at most COMPACT_EVERY files written since the last compaction, plus
    # what the compaction wrote.
    assert ctx.offline.file_count(table) <= profile_store.COMPACT_EVERY + 1


@pytest.mark.parametrize("far", [False, True])
def test_rows_are_profiled_in_their_utc_day_before_1970_and_across_centuries(
    tmp_path: Any, far: bool
) -> None:
    """Day buckets floor to the UTC day (an instant before 1970 included); ``far`` spans more
    than 2**16 days, the other way of sorting rows into days."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    times = [
        epoch - timedelta(microseconds=1),  # 1969-12-31
        epoch - timedelta(days=1),  # 1969-12-31 00:00 exactly
        epoch,
        epoch + timedelta(days=1) - timedelta(microseconds=1),  # still 1970-01-01
        epoch + timedelta(days=70_000 if far else 3, hours=5),
    ]
    fs = fti.connect(tmp_path)
    fg = fs.feature_group("t", version=1, primary_key=["id"], event_time="ts")
    fg.insert(
        pa.table(
            {
                "id": pa.array(range(len(times)), pa.int64()),
                "ts": pa.array(times, pa.timestamp("us", "UTC")),
                "x": pa.array([1.0, 2.0, 3.0, 4.0, 5.0], pa.float64()),
            }
        )
    )
    day = timedelta(days=1)
    before = fg.statistics(start=epoch - day, end=epoch)
    assert before.rows == 2
    assert (before["x"]["min"], before["x"]["max"]) == (1.0, 2.0)
    first = fg.statistics(start=epoch, end=epoch + day)
    assert first.rows == 2
    assert (first["x"]["min"], first["x"]["max"]) == (3.0, 4.0)
    last = day_floor(times[-1])
    assert fg.statistics(start=last, end=last + day).rows == 1
    assert fg.statistics().rows == 5
    fs.close()
