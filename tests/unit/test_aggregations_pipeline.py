"""A streaming pipeline end to end on the in-memory source: the feature group it writes,
point-in-time training data over it, strict as-of-t values, the backfill, bad records, and
restart from the checkpoint."""

from __future__ import annotations

import bisect
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

import fti
from fti.backends.streams.memory import ListSource
from fti.pipelines.streaming import statuses

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def make_pipeline(**options: Any) -> fti.StreamPipeline:
    @fti.stream_pipeline(
        feature_group="taps",
        key=["user"],
        event_time="ts",
        event_id="id",
        schema={"user": "string", "id": "int64", "ts": "timestamp", "ms": "int64"},
        aggregations=[
            fti.Aggregation("ms", "count", window=10 * S, name="n10"),
            fti.Aggregation("ms", "sum", window=60 * S, name="total60"),
        ],
        allowed_lateness=30 * S,
        **options,
    )
    def taps(event: dict[str, Any]) -> dict[str, Any] | None:
        if event.get("user") == "bot":
            return None
        return {**event, "ms": int(event["ms"]) * 1000}  # a row-level transformation

    return taps


EVENTS = [  # (user, id, seconds after T0, ms); delivered out of order with a duplicate
    ("a", 1, 0, 1),
    ("a", 2, 5, 2),
    ("b", 3, 5, 4),
    ("a", 4, 3, 8),  # out of order
    ("a", 2, 5, 2),  # duplicate delivery
    ("a", 5, 20, 16),
    ("bot", 6, 21, 1),  # dropped by the transformation
    ("a", 7, 20, 32),  # equal timestamp
]


def records() -> list[dict[str, Any]]:
    return [
        {"user": u, "id": i, "ts": (T0 + s * S).isoformat(), "ms": str(ms)}
        for u, i, s, ms in EVENTS
    ]


def oracle(user: str, t: float, *, strict: bool) -> dict[str, int | None]:
    """n10 / total60 for ``user`` at time T0 + t s: over (t - w, t] if strict, else as of the
    user's last event at or before t."""
    seen: dict[int, tuple[str, int, int]] = {}
    for u, i, s, ms in EVENTS:
        if u != "bot":
            seen.setdefault(i, (u, s, ms * 1000))
    mine = sorted((s, ms) for u, s, ms in seen.values() if u == user)
    times = [s for s, _ in mine]
    if not strict:
        k = bisect.bisect_right(times, t)
        if k == 0:
            return {"n10": None, "total60": None}
        t = times[k - 1]
    n10 = sum(1 for s, _ in mine if t - 10 < s <= t)
    in60 = [ms for s, ms in mine if t - 60 < s <= t]
    return {"n10": n10, "total60": sum(in60) if in60 else None}


def test_pipeline_writes_feature_group_and_point_in_time_reads(fs: fti.FeatureStore) -> None:
    taps = make_pipeline(batch_size=3)
    report = taps.run(fs, source=ListSource(records()), idle_timeout=0.05)
    assert (report.records, report.accepted, report.duplicates, report.late) == (8, 6, 1, 0)
    fg = fs.get_feature_group("taps")
    online = fg.read_online([{"user": "a"}, {"user": "b"}, {"user": "zz"}])
    assert online[0]["ts"] == T0 + 20 * S
    assert {k: online[0][k] for k in ("n10", "total60")} == oracle("a", 20, strict=False)
    assert online[1]["total60"] == 4000
    assert online[2] is None
    times = [-1, 0, 2, 3, 4.5, 5, 12, 16, 20, 29, 31, 90]
    spine = pd.DataFrame(
        {"user": ["a"] * len(times) + ["b"] * 2, "ts": [T0 + t * S for t in [*times, 5, 100]]}
    )
    fv = fs.feature_view("taps_view", query=fg.select(["n10", "total60"]))
    got = fv.training_data(spine=spine)
    for (_, row), t in zip(got.iterrows(), [*times, 5, 100], strict=True):
        want = oracle(row["user"], t, strict=False)
        assert [None if pd.isna(row[c]) else int(row[c]) for c in ("n10", "total60")] == [
            want["n10"],
            want["total60"],
        ], t
    strict = taps.aggregates_at(fs, spine)
    for (_, row), t in zip(strict.iterrows(), [*times, 5, 100], strict=True):
        want = oracle(row["user"], t, strict=True)
        have = [None if pd.isna(row[c]) else int(row[c]) for c in ("n10", "total60")]
        assert have == [want["n10"], want["total60"]], t
    # The backfill through the same definitions equals the latest stream row per key/time.
    batch = taps.backfill(fs, write=False).rows.to_pylist()
    stream = {(r["user"], r["ts"]): r for r in fg.read(format="arrow").to_pylist()}
    assert len(batch) == len(stream) == 5  # a@0, a@3, a@5, a@20, b@5
    for r in batch:
        assert {k: r[k] for k in ("n10", "total60")} == {
            k: stream[(r["user"], r["ts"])][k] for k in ("n10", "total60")
        }


def test_restart_resumes_after_the_checkpoint_and_counts_bad_records(
    fs: fti.FeatureStore,
) -> None:
    taps = make_pipeline(batch_size=2)
    first, rest = records()[:4], records()[4:]
    taps.run(fs, source=ListSource(first), idle_timeout=0.05)
    bad = [{"user": "a", "id": 99, "ts": "2024-03-01T12:00:00", "ms": "1"}]  # naive time
    source = ListSource(first + rest + bad)
    report = taps.run(fs, source=source, idle_timeout=0.05)
    # Resumed after position 3: only the rest was read; the bad record is counted, not fatal.
    assert report.records == len(rest) + 1
    assert report.invalid == 1
    assert source.committed == len(first) + len(rest)
    (status,) = statuses(fs)
    assert status["counters"]["records"] == 9
    assert status["counters"]["invalid"] == 1
    assert status["status"] == "stopped"
    row = fs.get_feature_group("taps").read_online([{"user": "a"}])[0]
    assert {k: row[k] for k in ("n10", "total60")} == oracle("a", 20, strict=False)


def test_a_backfill_from_raw_history_matches_a_stream(fs: fti.FeatureStore, tmp_path: Any) -> None:
    taps = make_pipeline()
    rows = taps.backfill(fs, pd.DataFrame(records())).rows.to_pylist()
    other = fti.connect(tmp_path / "other")
    make_pipeline().run(other, source=ListSource(records()), idle_timeout=0.05)
    stream = other.get_feature_group("taps").read(format="arrow").to_pylist()
    latest = {(r["user"], r["ts"]): (r["n10"], r["total60"]) for r in stream}
    assert {(r["user"], r["ts"]): (r["n10"], r["total60"]) for r in rows} == latest
    other.close()


def test_declaration_errors_say_how_to_fix() -> None:
    with pytest.raises(fti.ValidationError, match="missing from schema"):
        fti.stream_pipeline(
            feature_group="x",
            key=["k"],
            event_time="ts",
            event_id="id",
            schema={"k": "string", "ts": "timestamp"},
            aggregations=[fti.Aggregation("v", "sum", window=S)],
        )


def test_rows_failing_the_groups_rules_are_quarantined_and_counted(fs: fti.FeatureStore) -> None:
    taps = make_pipeline(batch_size=2)
    first, rest = records()[:4], records()[4:]
    taps.run(fs, source=ListSource(first), idle_timeout=0.05)
    fg = fs.get_feature_group("taps")
    fg.set_expectations([fti.expect.between("total60", 0, 20_000)], on_invalid="quarantine")
    report = taps.run(fs, source=ListSource(first + rest), idle_timeout=0.05)
    aside = fg.quarantined(format="arrow")
    # a@20 sums 1+2+8+16(+32) seconds of ms: over the bound, so its rows went aside.
    assert aside.num_rows > 0
    assert set(aside.column("total60").to_pylist()) == {27_000, 59_000}
    assert report.quarantined == aside.num_rows
    (status,) = statuses(fs)
    assert status["counters"]["quarantined"] == aside.num_rows
    # Nothing over the bound reached the group, offline or online.
    stored = fg.read(format="arrow").column("total60").to_pylist()
    assert all(v is None or v <= 20_000 for v in stored)
    assert fg.read_online([{"user": "a"}])[0]["total60"] <= 20_000
