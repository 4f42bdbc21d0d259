"""Windowed aggregations: the stream state, the DuckDB backfill and a plain-Python oracle must
agree exactly (0 mismatches) on random event sequences with out-of-order delivery, duplicate
deliveries and equal timestamps."""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable, Mapping
from datetime import timedelta
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fti.backends.compute.duckdb import DuckDBEngine
from fti.definitions.aggregations import Aggregation, WindowSpec
from fti.errors import ValidationError
from fti.pipelines.streaming.aggregation import (
    AggregationState,
    Event,
    VectorState,
    WindowState,
    aggregate,
    new_state,
)
from fti.pipelines.streaming.aggregation.kernels import I64_MAX, I64_MIN, RangeExtremes, search

FNS = ("count", "sum", "mean", "min", "max", "stddev", "last", "count_distinct")
# What the columnar state handles (else the pipeline uses WindowState): no count_distinct, and
# no stddev of float columns.
VECTOR_FNS = {
    "int64": ("count", "sum", "mean", "min", "max", "stddev", "last"),
    "float64": ("count", "sum", "mean", "min", "max", "last"),
}
STATES = {"window": WindowState, "vector": VectorState}
US = timedelta(microseconds=1)


def make_spec(
    dtype: str,
    windows: tuple[int, ...],
    tile: int,
    lateness: int = 10**9,
    hops: tuple[tuple[int, int], ...] = (),
    fns: tuple[str, ...] = FNS,
) -> WindowSpec:
    aggs = tuple(Aggregation("v", fn, window=w * US) for fn in fns for w in windows)
    # Hopping (hop < window) and tumbling (hop == window) windows: (window, hop) pairs.
    aggs += tuple(Aggregation("v", fn, window=w * US, hop=h * US) for fn in fns for w, h in hops)
    return WindowSpec(
        keys=("k",),
        event_time="ts",
        event_id="id",
        aggregations=aggs,
        columns={"k": "string", "ts": "timestamp", "id": "int64", "v": dtype},
        allowed_lateness=lateness * US,
        tile=tile * US,
    )


# ---------------------------------------------------------------- the oracle (no engine code)
def oracle(spec: WindowSpec, events: list[tuple[str, int, int, Any]]) -> dict[tuple, dict]:
    """Loop over raw events: for each key and distinct event time t, every aggregate over the
    events with t - window < event_time <= t. The first delivery of an id counts."""
    first: dict[int, tuple[str, int, int, Any]] = {}
    for e in events:
        first.setdefault(e[2], e)
    unique = list(first.values())
    by_key: dict[str, list[tuple[str, int, int, Any]]] = {}
    for e in unique:
        by_key.setdefault(e[0], []).append(e)
    out: dict[tuple, dict] = {}
    for key, t in {(e[0], e[1]) for e in unique}:
        row: dict[str, Any] = {}
        for a in spec.aggregations:
            w = a.window // US
            h = a.hop // US if a.hop else 0
            end = t - t % h if h else t  # a hopping window ends at the last boundary <= t
            inside = [e for e in by_key[key] if end - w < e[1] <= end and e[3] is not None]
            xs = [e[3] for e in inside]
            row[a.output] = _one(a.fn, xs, inside)
        out[(key, t)] = row
    return out


def _one(fn: str, xs: list[Any], inside: list[tuple[str, int, int, Any]]) -> Any:
    if fn == "count":
        return len(xs)
    if fn == "count_distinct":
        return len(set(xs))
    if not xs:
        return None
    if fn == "sum":
        total = sum(Fraction(x) for x in xs)
        return int(total) if isinstance(xs[0], int) else float(total)
    if fn == "mean":
        return float(sum(Fraction(x) for x in xs) / len(xs))
    if fn == "stddev":
        if len(xs) < 2:
            return None
        mean = sum(Fraction(x) for x in xs) / len(xs)
        var = sum((Fraction(x) - mean) ** 2 for x in xs) / (len(xs) - 1)
        return math.sqrt(float(var))
    if fn == "min":
        return min(xs)
    if fn == "max":
        return max(xs)
    if fn == "last":
        return max(inside, key=lambda e: (e[1], e[2]))[3]
    raise AssertionError(fn)


# ---------------------------------------------------------------- the two engine paths
def run_stream(
    spec: WindowSpec, events: list, batch_sizes: list[int], state_cls: Any = WindowState
) -> dict[tuple, dict]:
    state = state_cls(spec)
    latest: dict[tuple, dict] = {}
    i = 0
    sizes = iter(batch_sizes)
    while i < len(events):
        n = next(sizes, 7)
        chunk = [Event((k,), t, eid, (v,)) for k, t, eid, v in events[i : i + n]]
        i += n
        accepted, _, late = state.admit(chunk)
        assert late == 0
        for r in state.emit(accepted).to_pylist():
            latest[(r.pop("k"), r.pop("ts"))] = r  # a later row for the same key/time corrects
    return latest


ENGINE = DuckDBEngine()  # the backfill's SQL runs on a store's engine; one for the module


def run_backfill(spec: WindowSpec, events: list, dtype: str) -> dict[tuple, dict]:
    table = pa.table(
        {
            "k": [e[0] for e in events],
            "ts": pa.array([e[1] for e in events], pa.int64()),
            "id": pa.array([e[2] for e in events], pa.int64()),
            "v": pa.array(
                [e[3] for e in events], pa.float64() if dtype == "float64" else pa.int64()
            ),
        }
    )
    out = {}
    for r in aggregate(spec, table, engine=ENGINE).to_pylist():
        out[(r.pop("k"), r.pop("ts"))] = r
    return out


def to_us(d: dict[tuple, dict]) -> dict[tuple, dict]:
    """Stream/backfill rows carry datetimes; the oracle uses int µs."""
    from datetime import UTC, datetime

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return {(k, (t - epoch) // US if not isinstance(t, int) else t): v for (k, t), v in d.items()}


def mismatches(a: dict, b: dict) -> list:
    bad = [k for k in a.keys() | b.keys() if a.get(k) != b.get(k)]
    return sorted(bad)[:5]


FLOATS = st.one_of(
    st.none(),
    st.sampled_from([0.1, 0.2, 0.3, -0.0, 1e16, -1e16, 1e150, 5e-324, 2.5]),
    # Bounded so that sums of squares stay finite (beyond float64, values become +-inf).
    st.floats(min_value=-1e150, max_value=1e150, allow_nan=False),
)
INTS = st.one_of(st.none(), st.integers(-(10**12), 10**12))


def events_strategy(values: st.SearchStrategy[Any]) -> st.SearchStrategy[list]:
    event = st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 60), values)
    return st.lists(event, min_size=1, max_size=80)


def shuffle_with_dupes(raw: list, seed: int) -> list[tuple[str, int, int, Any]]:
    """Ids in time order, then 10-30% duplicates and local out-of-order swaps."""
    rng = random.Random(seed)
    events = sorted(raw, key=lambda e: e[1])
    with_ids = [(k, t, i, v) for i, (k, t, v) in enumerate(events)]
    out = list(with_ids)
    for e in rng.sample(with_ids, k=len(with_ids) // 4):
        out.insert(rng.randrange(len(out) + 1), e)  # same id delivered twice
    for _ in range(len(out) // 3):
        i = rng.randrange(len(out))
        j = min(len(out) - 1, i + rng.randint(1, 6))
        out[i], out[j] = out[j], out[i]
    return out


@pytest.mark.parametrize("state", sorted(STATES))
@pytest.mark.parametrize("dtype", ["float64", "int64"])
@settings(max_examples=40, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**32))
def test_stream_backfill_and_oracle_agree(
    state: str, dtype: str, data: st.DataObject, seed: int
) -> None:
    raw = data.draw(events_strategy(FLOATS if dtype == "float64" else INTS))
    windows = data.draw(st.sampled_from([(1, 7), (5, 20), (3, 64), (16,)]))
    tile = data.draw(st.sampled_from([1, 2, 3, 8]))
    hops = data.draw(st.sampled_from([(), ((10, 5),), ((6, 6), (12, 3))]))
    fns = FNS if state == "window" else VECTOR_FNS[dtype]
    spec = make_spec(dtype, windows, tile, hops=hops, fns=fns)
    events = shuffle_with_dupes(raw, seed)
    sizes = data.draw(st.lists(st.integers(1, 20), max_size=30))
    expected = oracle(spec, events)
    stream = to_us(run_stream(spec, events, sizes, STATES[state]))
    batch = to_us(run_backfill(spec, events, dtype))
    assert mismatches(stream, expected) == []
    assert mismatches(batch, expected) == []


@pytest.mark.parametrize("state", sorted(STATES))
def test_identical_on_a_large_random_sequence(state: str) -> None:
    rng = random.Random(7)
    raw = [
        (rng.choice("abcdefgh"), rng.randint(0, 2_500), rng.choice([None, rng.uniform(-1e6, 1e6)]))
        for _ in range(2_000)
    ]
    fns = FNS if state == "window" else VECTOR_FNS["float64"]
    spec = make_spec("float64", (50, 400), 25, hops=((100, 100), (300, 60)), fns=fns)
    events = shuffle_with_dupes(raw, 11)
    expected = oracle(spec, events)
    assert mismatches(to_us(run_stream(spec, events, [250] * 50, STATES[state])), expected) == []
    assert mismatches(to_us(run_backfill(spec, events, "float64")), expected) == []


def test_vector_state_matches_on_many_keys_with_ties_and_nulls() -> None:
    """Integer sums and stddev over many keys, colliding times and ids, large batches."""
    rng = random.Random(3)
    keys = "abcdefghijklmnop"
    raw = [
        (rng.choice(keys), rng.randint(0, 400), rng.choice([None, rng.randint(-9, 9)]))
        for _ in range(3_000)
    ]
    spec = make_spec("int64", (1, 30, 200), 4, hops=((40, 20),), fns=VECTOR_FNS["int64"])
    events = shuffle_with_dupes(raw, 5)
    expected = oracle(spec, events)
    for sizes in ([1] * 3_000, [37] * 200, [1_000] * 4):
        got = to_us(run_stream(spec, events, sizes, VectorState))
        assert mismatches(got, expected) == []


def test_vector_state_falls_back_exactly_beyond_int64() -> None:
    """Sums of squares past 2**62 move the state into exact big integers, mid-stream."""
    spec = make_spec("int64", (10, 50), 4, fns=VECTOR_FNS["int64"])
    rng = random.Random(9)
    raw = [(rng.choice("ab"), t, rng.choice([1, 3, 2**40, -(2**41)])) for t in range(200)]
    events = shuffle_with_dupes(raw, 1)
    expected = oracle(spec, events)
    state = VectorState(spec)
    got = to_us(run_stream(spec, events, [25] * 40, lambda s: state))
    assert state._fallback is not None  # the guard tripped
    assert state.watermark == max(e[1] for e in events)  # what the runtime checkpoints
    assert mismatches(got, expected) == []


@pytest.mark.parametrize("state_cls", [WindowState, VectorState])
def test_late_events_are_counted_not_applied(state_cls: Any) -> None:
    spec = make_spec("int64", (10,), 2, lateness=5, fns=VECTOR_FNS["int64"])
    state = state_cls(spec)
    ev = [Event(("a",), t, i, (1,)) for i, t in enumerate([100, 96, 95, 90, 101, 97, 96])]
    accepted, dups, late = state.admit(ev)
    # watermark 100: 96 ok, 95 and 90 late (<= 95); watermark 101: 97 ok, 96 late (<= 96).
    assert [e.et for e in accepted] == [100, 96, 101, 97]
    assert late == 3
    assert dups == 0
    accepted, dups, late = state.admit([Event(("a",), 100, 0, (1,))])
    assert (accepted, dups, late) == ([], 1, 0)


@pytest.mark.parametrize("state_cls", [WindowState, VectorState])
def test_eviction_keeps_windows_exact(state_cls: Any) -> None:
    spec = make_spec("int64", (10,), 4, lateness=0, fns=VECTOR_FNS["int64"])
    state = state_cls(spec)
    events = [Event(("a",), t, t, (t,)) for t in range(0, 1_000, 3)]
    rows = []
    for i in range(0, len(events), 10):
        acc, _, _ = state.admit(events[i : i + 10])
        rows += state.emit(acc).to_pylist()
    assert state.size <= 10  # only events within window + lateness are kept
    last = rows[-1]
    # (989, 999]: 990, 993, 996, 999
    assert last["v_count_10us"] == 4
    assert last["v_sum_10us"] == 990 + 993 + 996 + 999
    assert last["v_min_10us"] == 990
    assert last["v_last_10us"] == 999


def test_aggregation_validation() -> None:
    a = Aggregation("amount", "sum", window=timedelta(hours=1))
    assert a.output == "amount_sum_1h"
    assert Aggregation("x", "count", window=timedelta(minutes=90), name="n").output == "n"
    assert Aggregation("x", "count", window=timedelta(minutes=90)).output == "x_count_90m"
    with pytest.raises(ValidationError, match="'fn' parameter must be one of"):
        Aggregation("amount", "median", window=timedelta(hours=1))
    with pytest.raises(ValidationError, match="timedelta > 0"):
        Aggregation("amount", "sum", window=timedelta(0))
    hourly = Aggregation("x", "sum", window=timedelta(hours=1), hop=timedelta(minutes=10))
    assert hourly.output == "x_sum_1h_hop10m"
    assert hourly.window_end(7_260_000_000) == 7_200_000_000  # 2h01m -> 2h00m
    daily = Aggregation("x", "max", window=timedelta(days=1), hop=timedelta(days=1))
    assert daily.output == "x_max_1d_tumbling"
    assert Aggregation.from_dict(hourly.to_dict()) == hourly
    with pytest.raises(ValidationError, match="multiple of 'hop'"):
        Aggregation("x", "sum", window=timedelta(hours=1), hop=timedelta(minutes=7))
    with pytest.raises(ValidationError, match="needs a numeric column"):
        WindowSpec(
            keys=("k",),
            event_time="ts",
            event_id="id",
            aggregations=(Aggregation("s", "mean", window=timedelta(hours=1)),),
            columns={"k": "string", "ts": "timestamp", "id": "string", "s": "string"},
        )


def test_vector_state_types_match_the_python_state() -> None:
    """Timestamp, bool and float32 columns: same values and the same Arrow types as WindowState."""
    spec = WindowSpec(
        keys=("k", "n"),
        event_time="ts",
        event_id="id",
        aggregations=(
            Aggregation("seen", "last", window=50 * US),
            Aggregation("seen", "max", window=50 * US),
            Aggregation("flag", "sum", window=20 * US),
            Aggregation("flag", "mean", window=20 * US),
            Aggregation("flag", "min", window=20 * US),
            Aggregation("x", "max", window=30 * US, hop=10 * US),
            Aggregation("x", "last", window=30 * US),
        ),
        columns={
            "k": "string",
            "n": "int64",
            "ts": "timestamp",
            "id": "string",
            "seen": "timestamp",
            "flag": "bool",
            "x": "float32",
        },
        allowed_lateness=10**6 * US,
    )
    rng = random.Random(4)
    events = [
        Event(
            (rng.choice("ab"), rng.choice([1, 12])),
            rng.randint(0, 200),
            f"e{i:04d}",
            (
                rng.choice([None, rng.randint(0, 10**15)]),
                rng.choice([None, True, False]),
                rng.choice([None, float(np.float32(rng.uniform(-5, 5)))]),
            ),
        )
        for i in range(600)
    ]
    events += events[::7]  # duplicates
    assert VectorState.supports(spec)
    outputs = []
    for cls in (WindowState, VectorState):
        state = cls(spec)
        rows: dict[tuple, dict] = {}
        schema = None
        for i in range(0, len(events), 50):
            accepted, _, _ = state.admit(events[i : i + 50])
            table = state.emit(accepted)
            schema = table.schema
            for r in table.to_pylist():
                rows[(r.pop("k"), r.pop("n"), r.pop("ts"))] = r
        outputs.append((schema, rows))
    (schema_w, rows_w), (schema_v, rows_v) = outputs
    assert schema_v == schema_w
    assert rows_v == rows_w
    assert len(rows_w) > 300


def test_vector_state_sums_floats_exactly_in_int64_limbs() -> None:
    """Float sum/mean through the limb prefix sums (no fallback), equal to the exact oracle."""
    rng = random.Random(7)
    values = [None, 0.1, 0.2, 0.3, -0.0, 1e-3]
    raw = [
        (
            rng.choice("abcdefgh"),
            rng.randint(0, 2_500),
            rng.choice([*values, rng.uniform(-1e6, 1e6)]),
        )
        for _ in range(3_000)
    ]
    spec = make_spec(
        "float64", (50, 400), 25, hops=((100, 100), (300, 60)), fns=VECTOR_FNS["float64"]
    )
    events = shuffle_with_dupes(raw, 11)
    expected = oracle(spec, events)
    state = VectorState(spec)
    got = to_us(run_stream(spec, events, [97] * 100, lambda s: state))
    assert state._fallback is None  # the exponents fit in the limbs
    assert mismatches(got, expected) == []
    assert len(got) > 2_000


# ---------------------------------------------------------------- the one state interface
StateFactory = Callable[[WindowSpec, int | None], AggregationState]
Rows = dict[tuple[Any, ...], dict[str, Any]]
FACTORIES: dict[str, StateFactory] = {
    "window": lambda spec, wm: WindowState(spec, watermark=wm),
    "vector": lambda spec, wm: VectorState(spec, watermark=wm),
}


def _drop_pings(record: dict[str, Any]) -> Mapping[str, Any] | None:
    """A row-level transformation: drops pings, renames the time column."""
    if record.get("kind") == "ping":
        return None
    return {**record, "ts": record.pop("at", None)}


def ingest_all(
    make: StateFactory,
    spec: WindowSpec,
    records: list[dict[str, Any]],
    sizes: list[int],
    restart: int,
) -> tuple[Rows, dict[str, int]]:
    """Feed raw records through ``ingest`` only; after batch ``restart`` start a new state
    from the watermark and the journal of accepted events, as the runtime does after a crash."""
    state = make(spec, None)
    journal: list[pa.Table] = []
    latest: Rows = {}
    counts = {"accepted": 0, "duplicates": 0, "late": 0, "invalid": 0}
    chunks = iter(sizes)
    i = batch = 0
    while i < len(records):
        n = next(chunks, 7)
        step = state.ingest(records[i : i + n], _drop_pings)
        i += n
        journal.append(step.events)
        for name in counts:
            counts[name] += getattr(step, name)
        for r in step.rows.to_pylist():
            latest[(r.pop("k"), r.pop("ts"))] = r
        batch += 1
        if batch == restart:
            state = make(spec, state.watermark)
            assert state.restore(pa.concat_tables(journal)) == counts["accepted"]
    return latest, counts


def test_both_states_implement_the_one_protocol() -> None:
    spec = make_spec("int64", (5,), 2, fns=VECTOR_FNS["int64"])
    for make in FACTORIES.values():
        assert isinstance(make(spec, None), AggregationState)
    assert isinstance(new_state(spec), AggregationState)
    # new_state falls back to the Python state for what the columnar one does not compute.
    assert type(new_state(make_spec("int64", (5,), 2, fns=("count_distinct",)))) is WindowState


@pytest.mark.parametrize("state", sorted(FACTORIES))
@settings(max_examples=30, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**32))
def test_ingest_and_restore_through_the_protocol_match_the_oracle(
    state: str, data: st.DataObject, seed: int
) -> None:
    raw = data.draw(events_strategy(INTS))
    windows = data.draw(st.sampled_from([(1, 7), (5, 20), (16,)]))
    fns = FNS if state == "window" else VECTOR_FNS["int64"]
    spec = make_spec("int64", windows, 3, hops=((10, 5),), fns=fns)
    events = shuffle_with_dupes(raw, seed)
    records: list[dict[str, Any]] = [
        {"k": k, "at": t, "id": eid, "v": v} for k, t, eid, v in events
    ]
    rng = random.Random(seed)
    n_bad = len(records) // 5
    for j in range(n_bad):  # pings (dropped) and records without a time (invalid)
        bad = {"k": "a", "id": -1 - j, "v": 1} | ({"kind": "ping"} if j % 2 else {})
        records.insert(rng.randrange(len(records) + 1), bad)
    sizes = data.draw(st.lists(st.integers(1, 20), max_size=30))
    restart = data.draw(st.integers(0, 6))
    got, counts = ingest_all(FACTORIES[state], spec, records, sizes, restart)
    assert mismatches(to_us(got), oracle(spec, events)) == []
    assert counts["accepted"] == len({e[2] for e in events})
    assert counts["duplicates"] == len(events) - counts["accepted"]
    assert counts["invalid"] == (n_bad + 1) // 2  # the pings are dropped, not invalid
    assert counts["late"] == 0


def test_both_states_journal_events_in_the_same_schema() -> None:
    """The runtime concatenates the accepted events of every micro-batch into one commit."""
    spec = make_spec("float64", (5,), 2, fns=VECTOR_FNS["float64"])
    records = [{"k": "a", "at": t, "id": t, "v": None if t % 3 else t / 2} for t in range(20)]
    tables = [make(spec, None).ingest(records, _drop_pings).events for make in FACTORIES.values()]
    assert tables[0].schema == tables[1].schema
    assert tables[0].to_pylist() == tables[1].to_pylist()
    assert tables[0].num_rows == 20


# ---------------------------------------------------------------- the columnar kernels
@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(-(10**6), 10**6), min_size=1, max_size=300),
    data=st.data(),
)
def test_range_extremes_match_python_min_and_max(values: list[int], data: st.DataObject) -> None:
    n = len(values)
    pairs = data.draw(
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, n)), min_size=1, max_size=40)
    )
    pairs = [(a, b) if a < b else (b - 1, a + 1) for a, b in pairs]
    lo = np.array([a for a, _ in pairs], np.int64)
    hi = np.array([b for _, b in pairs], np.int64)
    arr = np.array(values, np.int64)
    assert RangeExtremes(arr, np.maximum, I64_MIN).query(lo, hi).tolist() == [
        max(values[a:b]) for a, b in pairs
    ]
    assert RangeExtremes(arr, np.minimum, I64_MAX).query(lo, hi).tolist() == [
        min(values[a:b]) for a, b in pairs
    ]


@settings(max_examples=60, deadline=None)
@given(
    times=st.lists(st.integers(0, 50), max_size=200),
    data=st.data(),
    right=st.booleans(),
)
def test_segment_search_matches_bisect(times: list[int], data: st.DataObject, right: bool) -> None:
    et = sorted(times)
    n = len(et)
    queries = data.draw(
        st.lists(st.tuples(st.integers(0, n), st.integers(0, n), st.integers(-5, 55)), max_size=40)
    )
    lo = np.array([min(a, b) for a, b, _ in queries], np.int64)
    hi = np.array([max(a, b) for a, b, _ in queries], np.int64)
    target = np.array([t for _, _, t in queries], np.int64)
    side = bisect.bisect_right if right else bisect.bisect_left
    expected = [side(et, t, int(a), int(b)) for a, b, t in zip(lo, hi, target, strict=True)]
    got = search(np.array(et, np.int64), lo, hi, target, right=right)
    assert got.tolist() == expected
