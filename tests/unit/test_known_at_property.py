"""Property test: bitemporal reads (``known_at=``) equal a plain-Python oracle.

Random interleaved inserts into three feature groups (a timed left group, a timed right group
with a ttl, a snapshot group): late-arriving rows (an early event time inserted later),
corrections (the same key and time again), nulls, TTL boundaries. Each insert is bracketed by
wall-clock readings, so a cut-off between two inserts says exactly which inserts are known: the
oracle needs nothing from the engine (no sequence numbers, no SQL). Checked: the point-in-time
join with one cut-off for the whole spine, with a per-row cut-off column, and ``fg.read`` in its
three modes.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fti

EXAMPLES = 300 if os.environ.get("CI") else 60
BASE_US = 1_700_000_000_000_000
STEP = 1_000_000  # one event-time unit: a second
_names = itertools.count()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[fti.FeatureStore]:
    fs = fti.connect(tmp_path_factory.mktemp("known_at") / "store")
    yield fs
    fs.close()


# --------------------------------------------------------------------------- the oracle
@dataclass(frozen=True)
class Row:
    key: int
    time: int | None  # event time in us; None in the snapshot group
    insert: int  # the global insert number (ingestion order across the scenario)
    pos: int  # position within its insert
    value: Any


def pick(rows: list[Row], key: int, t: int, ttl: int | None, known: int) -> Row | None:
    """Greatest (time, insert, pos) among rows of ``key`` known (insert <= known), time <= t."""
    best: Row | None = None
    for r in rows:
        if r.key != key or r.insert > known:
            continue
        if r.time is not None and (r.time > t or (ttl is not None and r.time < t - ttl)):
            continue
        rank = (r.time or 0, r.insert, r.pos)
        if best is None or rank > (best.time or 0, best.insert, best.pos):
            best = r
    return best


def oracle_read(rows: list[Row], known: int, mode: str) -> list[tuple[int, int, Any]]:
    """fg.read(known_at=cut) rows as (key, time, value), in (time, ingestion) order."""
    seen = sorted(
        (r for r in rows if r.insert <= known), key=lambda r: (r.time or 0, r.insert, r.pos)
    )
    if mode == "audit":
        return [(r.key, r.time or 0, r.value) for r in seen]
    last: dict[Any, Row] = {}
    for r in seen:
        last[r.key if mode == "latest" else (r.key, r.time)] = r
    kept = sorted(last.values(), key=lambda r: (r.time or 0, r.insert, r.pos))
    return [(r.key, r.time or 0, r.value) for r in kept]


# --------------------------------------------------------------------------- strategies
VALUES = st.one_of(st.none(), st.integers(-3, 3))


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    inserts = []
    for _ in range(draw(st.integers(1, 5))):
        group = draw(st.sampled_from(["a", "b", "c"]))
        rows = [
            (draw(st.integers(0, 2)), draw(st.integers(0, 5)), draw(VALUES))
            for _ in range(draw(st.integers(1, 4)))
        ]
        inserts.append((group, rows))
    n = len(inserts)
    spine = [
        (draw(st.integers(0, 3)), draw(st.integers(-1, 6)), draw(st.integers(-1, n - 1)))
        for _ in range(draw(st.integers(0, 8)))
    ]
    return {
        "inserts": inserts,
        "spine": spine,
        "ttl_b": draw(st.sampled_from([None, 1, 2])),
        "cut": draw(st.integers(-1, n - 1)),
    }


def _ts(us: list[int]) -> pa.Array:
    return pa.array(us, pa.int64()).cast(pa.timestamp("us", tz="UTC"))


def _at(ns: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)


@pytest.mark.slow
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(scenarios())
def test_known_at_matches_oracle(store: fti.FeatureStore, s: dict[str, Any]) -> None:
    n = next(_names)
    ttl_b = s["ttl_b"]
    groups = {
        "a": store.feature_group(
            f"ka{n}", primary_key=["k"], event_time="t",
            features={"k": "int64", "t": "timestamp", "x": "int64"},
        ),
        "b": store.feature_group(
            f"kb{n}", primary_key=["k"], event_time="bt",
            ttl=None if ttl_b is None else timedelta(seconds=ttl_b),
            features={"k": "int64", "bt": "timestamp", "y": "int64"},
        ),
        "c": store.feature_group(
            f"kc{n}", primary_key=["k"], features={"k": "int64", "z": "int64"}
        ),
    }  # fmt: skip
    rows: dict[str, list[Row]] = {"a": [], "b": [], "c": []}
    # cuts[i]: a cut-off (ns) after insert i finished and before insert i + 1 began.
    stamps: list[tuple[int, int]] = []
    for i, (g, batch) in enumerate(s["inserts"]):
        time.sleep(0.0002)  # leave whole microseconds between inserts for the cut-offs
        before = time.time_ns()
        value = {"a": "x", "b": "y", "c": "z"}[g]
        cols: dict[str, Any] = {
            "k": pa.array([r[0] for r in batch], pa.int64()),
            value: pa.array([r[2] for r in batch], pa.int64()),
        }
        if g != "c":
            cols["t" if g == "a" else "bt"] = _ts([BASE_US + r[1] * STEP for r in batch])
        groups[g].insert(pa.table(cols))
        stamps.append((before, time.time_ns()))
        rows[g] += [
            Row(r[0], None if g == "c" else BASE_US + r[1] * STEP, i, j, r[2])
            for j, r in enumerate(batch)
        ]
    time.sleep(0.0002)
    ends = [b for b, _a in stamps[1:]] + [time.time_ns()]
    cuts = [after + (end - after) // 2 for (_b, after), end in zip(stamps, ends, strict=True)]
    first = stamps[0][0] - 2000  # before anything was written

    def cut_ns(index: int) -> int:
        return first if index < 0 else cuts[index]

    query = (
        groups["a"]
        .select(["x"])
        .join(groups["b"].select(["y"]), on=["k"], prefix="b_")
        .join(groups["c"].select(["z"]), on=["k"], prefix="c_")
    )
    fv = store.feature_view(f"kv{n}", query=query)
    spine = pa.table(
        {
            "k": pa.array([r[0] for r in s["spine"]], pa.int64()),
            "t": _ts([BASE_US + r[1] * STEP for r in s["spine"]]),
            "seen": _ts([cut_ns(r[2]) // 1000 for r in s["spine"]]),
        }
    )
    ttl = None if ttl_b is None else ttl_b * STEP

    def expected(known: list[int]) -> list[tuple[Any, Any, Any]]:
        out = []
        for (k, t, _c), kn in zip(s["spine"], known, strict=True):
            tu = BASE_US + t * STEP
            picks = (
                pick(rows["a"], k, tu, None, kn),
                pick(rows["b"], k, tu, ttl, kn),
                pick(rows["c"], k, tu, None, kn),
            )
            out.append(tuple(None if p is None else p.value for p in picks))
        return out

    def actual(df: Any) -> list[tuple[Any, Any, Any]]:
        return [
            tuple(None if v != v or v is None else int(v) for v in row)
            for row in df[["x", "b_y", "c_z"]].itertuples(index=False)
        ]

    per_row = fv.training_data(spine=spine, known_at="seen")
    assert actual(per_row) == expected([r[2] for r in s["spine"]])
    assert list(per_row["seen"]) == list(spine.column("seen").to_pandas())
    cut = s["cut"]
    whole = fv.training_data(spine=spine, known_at=_at(cut_ns(cut)))
    assert actual(whole) == expected([cut] * len(s["spine"]))

    # Without a spine the left group's corrected history as known then is the spine.
    left = fv.training_data(known_at=_at(cut_ns(cut)))
    want_left = []
    for k, t, x in oracle_read(rows["a"], cut, "history"):
        b = pick(rows["b"], k, t, ttl, cut)
        c = pick(rows["c"], k, t, None, cut)
        want_left.append((x, None if b is None else b.value, None if c is None else c.value))
    assert actual(left) == want_left
    assert [int(v.value // 1000) for v in left["t"]] == [
        t for _k, t, _x in oracle_read(rows["a"], cut, "history")
    ]

    for g, (value, et) in {"a": ("x", "t"), "b": ("y", "bt"), "c": ("z", None)}.items():
        for mode in ("history", "latest", "audit"):
            got = groups[g].read(
                known_at=_at(cut_ns(cut)),
                latest=mode == "latest",
                include_superseded=mode == "audit",
            )
            seen = [
                (
                    int(r["k"]),
                    0 if et is None else int(r[et].value // 1000),
                    None if r[value] != r[value] or r[value] is None else int(r[value]),
                )
                for _, r in got.iterrows()
            ]
            want = oracle_read(rows[g], cut, mode)
            if et is None:  # a snapshot group has one "time": order is by ingestion only
                seen = sorted(seen, key=lambda x: x[0])
                want = sorted(want, key=lambda x: x[0])
            assert seen == want, (g, mode)


def test_known_at_spine_column_errors(store: fti.FeatureStore) -> None:
    """A per-row cut-off names an existing spine column of aware timestamps; Spark refuses."""
    g = store.feature_group(
        "known_err", primary_key=["k"], event_time="t",
        features={"k": "int64", "t": "timestamp", "x": "int64"},
    )  # fmt: skip
    g.insert(pa.table({"k": [1], "t": _ts([BASE_US]), "x": [1]}))
    fv = store.feature_view("known_err_v", query=g.select(["x"]))
    spine = pa.table({"k": [1], "t": _ts([BASE_US])})
    with pytest.raises(fti.errors.ValidationError, match="'nope' is not a column of the spine"):
        fv.training_data(spine=spine, known_at="nope")
    with pytest.raises(fti.errors.ValidationError, match="no spine was given"):
        fv.training_data(known_at="t")
    with pytest.raises(fti.errors.ValidationError, match="timezone-aware"):
        fv.training_data(spine=spine, known_at=datetime(2024, 1, 1))
    with pytest.raises(fti.errors.ValidationError, match="timezone-aware"):
        g.read(known_at=datetime(2024, 1, 1))

    class FakeSpark:  # what spark_session() accepts as a session; never reached
        def sql(self) -> None: ...
        def createDataFrame(self) -> None: ...

    with pytest.raises(fti.errors.ValidationError, match='not supported with engine="spark"'):
        fv.training_data(spine=spine, known_at="t", engine=FakeSpark())


def test_stream_rows_count_from_their_online_write(store: fti.FeatureStore) -> None:
    """Online ahead of offline: a streamed row read online before its offline commit is known
    at the time of that read, so the training data as known then equals what the request saw;
    a batch row inserted after the read is not known then."""
    g = store.feature_group(
        "known_stream", primary_key=["k"], event_time="t", online=True,
        features={"k": "int64", "t": "timestamp", "x": "int64"},
    )  # fmt: skip
    staged = [g.stage_online(pa.table({"k": [1, 2], "t": _ts([BASE_US] * 2), "x": [10, 20]}))]
    seen = g.read_online([{"k": 1}, {"k": 2}])
    time.sleep(0.001)
    requested = datetime.now(UTC)
    time.sleep(0.001)
    g.commit_staged(staged)  # the offline commit comes after the request
    g.insert(pa.table({"k": [1], "t": _ts([BASE_US - 1]), "x": [99]}))  # late, after the request
    g.insert(pa.table({"k": [2], "t": _ts([BASE_US]), "x": [21]}))  # a correction, after it
    fv = store.feature_view("known_stream_v", query=g.select(["x"]))
    spine = pa.table(
        {
            "k": [1, 2],
            "t": _ts([BASE_US + STEP] * 2),
            "at": _ts([int(requested.timestamp() * 1e6)] * 2),
        }
    )
    then = fv.training_data(spine=spine, known_at="at")
    assert list(then["x"]) == [r["x"] for r in seen] == [10, 20]
    assert list(fv.training_data(spine=spine)["x"]) == [10, 21]
    assert sorted(g.read(known_at=requested)["x"]) == [10, 20]
    assert sorted(g.read(include_superseded=True)["x"]) == [10, 20, 21, 99]
