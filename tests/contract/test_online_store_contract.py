"""The contract every online store passes (SQLite embedded, Redis).

Expectations come from small plain-Python oracles: the stored row per key is the row with the
greatest ``(event time, sequence)`` ever written, whatever the batch order.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fti.backends.online import ET, SEQ, OnlineStore, OnlineTable
from fti.backends.resolver import open_online
from fti.errors import SchemaError

ARROW = {
    "bool": pa.bool_(),
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "string": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
}
INT64_MAX = 2**63 - 1
_names = itertools.count()


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'online.db'}"
    else:
        prefix = request.getfixturevalue("redis_prefix")
        url = f"redis://127.0.0.1:6379/0?prefix={prefix}"
    s = open_online(url)
    yield s
    s.close()


def make_table(
    keys: list[tuple[str, str]], features: list[tuple[str, str]], name: str | None = None
) -> OnlineTable:
    return OnlineTable(
        name=name or f"t{next(_names)}_v1", keys=tuple(keys), features=tuple(features)
    )


def batch(table: OnlineTable, rows: list[dict[str, Any]]) -> pa.Table:
    """rows: dicts with key columns, 'et', 'seq' and features (missing feature -> null)."""
    cols: dict[str, pa.Array] = {}
    for k, t in table.keys:
        cols[k] = pa.array([r[k] for r in rows], ARROW[t])
    cols[ET] = pa.array([r["et"] for r in rows], pa.int64())
    cols[SEQ] = pa.array([r["seq"] for r in rows], pa.int64())
    for f, t in table.features:
        cols[f] = pa.array([r.get(f) for r in rows], ARROW[t])
    return pa.table(cols)


def ready(store: OnlineStore, table: OnlineTable) -> OnlineTable:
    store.ensure_table(table)
    return table


def test_ping_answers_and_a_closed_store_reconnects(store: OnlineStore) -> None:
    store.ping()
    store.close()
    store.ping()


# ---------------------------------------------------------------------------- newer wins
def test_newer_wins_with_ties_broken_by_sequence(store: OnlineStore) -> None:
    t = ready(store, make_table([("id", "int64")], [("v", "string")]))

    def put(et: int, seq: int, v: str) -> int:
        return store.upsert(t, batch(t, [{"id": 1, "et": et, "seq": seq, "v": v}]), version=None)

    assert put(10, 5, "a") == 1
    assert put(10, 4, "older seq") == 0
    assert put(10, 5, "same et and seq") == 0
    assert put(9, 100, "older et") == 0
    assert store.read(t, [(1,)]) == [(10, 5, "a")]
    assert put(10, 6, "b") == 1
    assert store.read(t, [(1,)]) == [(10, 6, "b")]
    assert put(11, 0, "c") == 1
    assert store.read(t, [(1,)]) == [(11, 0, "c")]


def test_exact_int64_comparison_beyond_double_precision(store: OnlineStore) -> None:
    # 2**62 and 2**62 - 1 are the same double: the comparison must be exact.
    t = ready(store, make_table([("id", "int64")], [("v", "int64")]))
    big = 2**62
    store.upsert(t, batch(t, [{"id": 1, "et": big, "seq": big, "v": 1}]), version=None)
    store.upsert(t, batch(t, [{"id": 1, "et": big, "seq": big - 1, "v": 2}]), version=None)
    store.upsert(t, batch(t, [{"id": 1, "et": big - 1, "seq": INT64_MAX, "v": 3}]), version=None)
    assert store.read(t, [(1,)]) == [(big, big, 1)]
    store.upsert(t, batch(t, [{"id": 1, "et": big, "seq": big + 1, "v": 4}]), version=None)
    assert store.read(t, [(1,)]) == [(big, big + 1, 4)]
    # Negative event times (before 1970) order correctly too.
    store.upsert(t, batch(t, [{"id": 2, "et": -5, "seq": 7, "v": 5}]), version=None)
    store.upsert(t, batch(t, [{"id": 2, "et": -6, "seq": 9, "v": 6}]), version=None)
    store.upsert(t, batch(t, [{"id": 2, "et": -(10**12), "seq": 9, "v": 7}]), version=None)
    assert store.read(t, [(2,)]) == [(-5, 7, 5)]


rows_strategy = st.lists(
    st.tuples(
        st.integers(0, 4),  # key
        st.sampled_from([-(2**62), -3, 0, 1, 2, 2**53, 2**53 + 1, 2**62]),  # et
        st.integers(-(2**63), INT64_MAX),  # seq
        st.integers(-100, 100),  # value
    ),
    min_size=1,
    max_size=40,
    unique_by=lambda r: (r[0], r[1], r[2]),  # a (key, et, seq) identifies one write
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=rows_strategy, cuts=st.lists(st.integers(0, 40), max_size=4), seed=st.integers(0, 99))
def test_out_of_order_batches_match_oracle(
    store: OnlineStore, rows: list[tuple[int, int, int, int]], cuts: list[int], seed: int
) -> None:
    t = ready(store, make_table([("id", "int64")], [("v", "int64")]))
    shuffled = rows[:]
    random.Random(seed).shuffle(shuffled)
    bounds = sorted({0, len(shuffled), *(min(c, len(shuffled)) for c in cuts)})
    for lo, hi in itertools.pairwise(bounds):  # duplicates of a key within a batch included
        part = [{"id": k, "et": e, "seq": s, "v": v} for k, e, s, v in shuffled[lo:hi]]
        store.upsert(t, batch(t, part), version=None)
    # Oracle: per key, the write with the greatest (et, seq).
    best: dict[int, tuple[int, int, int]] = {}
    for k, e, s, v in rows:
        if k not in best or (e, s) > best[k][:2]:
            best[k] = (e, s, v)
    keys = list(range(6))
    assert store.read(t, [(k,) for k in keys]) == [best.get(k) for k in keys]
    assert store.count(t) == len(best)


def test_duplicates_within_one_batch(store: OnlineStore) -> None:
    t = ready(store, make_table([("id", "string")], [("v", "float64")]))
    rows = [
        {"id": "a", "et": 5, "seq": 2, "v": 1.0},
        {"id": "a", "et": 7, "seq": 1, "v": 2.0},  # greatest
        {"id": "b", "et": 1, "seq": 1, "v": 3.0},
        {"id": "a", "et": 6, "seq": 9, "v": 4.0},
        {"id": "a", "et": 7, "seq": 0, "v": 5.0},
    ]
    store.upsert(t, batch(t, rows), version=None)
    assert store.read(t, [("a",), ("b",)]) == [(7, 1, 2.0), (1, 1, 3.0)]
    assert store.count(t) == 2


# ---------------------------------------------------------------------------- dtypes
def _value(dtype: str) -> st.SearchStrategy[Any]:
    return {
        "bool": st.booleans(),
        "int8": st.integers(-(2**7), 2**7 - 1),
        "int16": st.integers(-(2**15), 2**15 - 1),
        "int32": st.integers(-(2**31), 2**31 - 1),
        "int64": st.integers(-(2**63), INT64_MAX),
        # NaN has its own test below (SQLite turns NaN into NULL).
        "float32": st.floats(width=32, allow_nan=False),
        "float64": st.floats(allow_nan=False),
        "string": st.text(max_size=20),
        "timestamp": st.datetimes(timezones=st.just(UTC)),
        "date": st.dates(),
    }[dtype]


DTYPES = list(ARROW)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.lists(
        st.fixed_dictionaries({d: st.none() | _value(d) for d in DTYPES}), min_size=1, max_size=8
    )
)
def test_every_dtype_round_trips(store: OnlineStore, data: list[dict[str, Any]]) -> None:
    t = ready(store, make_table([("id", "int64")], [(f"f_{d}", d) for d in DTYPES]))
    rows = [
        {"id": i, "et": 1, "seq": i, **{f"f_{d}": r[d] for d in DTYPES}} for i, r in enumerate(data)
    ]
    store.upsert(t, batch(t, rows), version=None)
    got = store.read(t, [(i,) for i in range(len(data))])
    for i, (row, raw) in enumerate(zip(data, got, strict=True)):
        assert raw is not None
        assert raw[:2] == (1, i)
        for d, value in zip(DTYPES, raw[2:], strict=True):
            assert same(value, row[d]), (d, row[d], value)


def test_none_and_nan_stay_distinct(store: OnlineStore) -> None:
    t = ready(store, make_table([("id", "int64")], [("x", "float64"), ("y", "float32")]))
    rows = [
        {"id": 1, "et": 1, "seq": 1, "x": math.nan, "y": None},
        {"id": 2, "et": 1, "seq": 2, "x": None, "y": math.inf},
        {"id": 3, "et": 1, "seq": 3, "x": -0.0, "y": 0.5},
    ]
    store.upsert(t, batch(t, rows), version=None)
    r1, r2, r3 = store.read(t, [(1,), (2,), (3,)])
    assert r1 is not None
    assert math.isnan(r1[2])
    assert r1[3] is None
    assert r2 == (1, 2, None, math.inf)
    # -0.0 comes back equal to 0.0; its sign is not part of the contract (SQLite drops it).
    assert r3 == (1, 3, 0.0, 0.5)


def test_newer_row_with_nulls_replaces_every_value(store: OnlineStore) -> None:
    t = ready(store, make_table([("id", "int64")], [("a", "string"), ("b", "int32")]))
    store.upsert(t, batch(t, [{"id": 1, "et": 1, "seq": 1, "a": "x", "b": 3}]), version=None)
    store.upsert(t, batch(t, [{"id": 1, "et": 2, "seq": 1, "a": None, "b": 4}]), version=None)
    assert store.read(t, [(1,)]) == [(2, 1, None, 4)]
    # A batch without a feature column writes that feature as null.
    only_keys = pa.table(
        {
            "id": pa.array([1], pa.int64()),
            ET: pa.array([3], pa.int64()),
            SEQ: pa.array([1], pa.int64()),
            "a": pa.array(["y"]),
        }
    )
    store.upsert(t, only_keys, version=None)
    assert store.read(t, [(1,)]) == [(3, 1, "y", None)]


# ---------------------------------------------------------------------------- keys
def test_composite_keys_do_not_collide(store: OnlineStore) -> None:
    t = ready(store, make_table([("a", "int64"), ("b", "string")], [("v", "string")]))
    rows = [
        {"a": 1, "b": "23", "et": 1, "seq": 1, "v": "1|23"},
        {"a": 12, "b": "3", "et": 1, "seq": 2, "v": "12|3"},
        {"a": 1, "b": "2:3", "et": 1, "seq": 3, "v": "1|2:3"},
        {"a": -1, "b": "", "et": 1, "seq": 4, "v": "-1|"},
        {"a": 1, "b": "é 😀", "et": 1, "seq": 5, "v": "unicode"},
    ]
    store.upsert(t, batch(t, rows), version=None)
    keys = [(r["a"], r["b"]) for r in rows]
    assert [r and r[2] for r in store.read(t, keys)] == [r["v"] for r in rows]
    assert store.read(t, [(12, "23"), (1, "3"), (-1, " ")]) == [None, None, None]
    assert store.count(t) == len(rows)


def test_keys_of_every_key_dtype(store: OnlineStore) -> None:
    key_types = [("s", "string"), ("i", "int32"), ("t", "timestamp"), ("d", "date"), ("b", "bool")]
    t = ready(store, make_table(key_types, [("v", "int64")]))
    when = datetime(2024, 5, 1, 12, 30, 0, 123456, tzinfo=UTC)
    rows = [
        {"s": "x", "i": 7, "t": when, "d": date(2024, 5, 1), "b": True, "et": 1, "seq": 1, "v": 1},
        {"s": "x", "i": 7, "t": when, "d": date(2024, 5, 1), "b": False, "et": 1, "seq": 2, "v": 2},
    ]
    store.upsert(t, batch(t, rows), version=None)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    t_us = (when - epoch) // timedelta(microseconds=1)
    d_days = (date(2024, 5, 1) - date(1970, 1, 1)).days
    # Readers pass timestamps as µs and dates as days since the epoch (see OnlineReader).
    got = store.read(t, [("x", 7, t_us, d_days, True), ("x", 7, t_us, d_days, False)])
    assert [r and r[2] for r in got] == [1, 2]
    assert store.read(t, [("x", 7, t_us + 1, d_days, True)]) == [None]


def test_missing_keys_read_as_none_in_order(store: OnlineStore) -> None:
    t = ready(store, make_table([("id", "string")], [("v", "int64")]))
    assert store.read(t, [("nope",)]) == [None]
    store.upsert(t, batch(t, [{"id": "b", "et": 1, "seq": 1, "v": 2}]), version=None)
    keys = [("a",), ("b",), ("c",), ("b",)]
    assert store.read(t, keys) == [None, (1, 1, 2), None, (1, 1, 2)]
    many = [(str(i),) for i in range(1200)] + [("b",)]
    assert store.read(t, many) == [None] * 1200 + [(1, 1, 2)]


# ---------------------------------------------------------------------------- bookkeeping
def test_applied_versions(store: OnlineStore) -> None:
    t = ready(store, make_table([("id", "int64")], [("v", "int64")]))
    assert store.applied_versions(t) == set()
    store.upsert(t, batch(t, [{"id": 1, "et": 1, "seq": 1, "v": 1}]), version=3)
    assert store.applied_versions(t) == {3}
    store.mark_applied(t, [0, 1, 3])
    store.mark_applied(t, [])
    assert store.applied_versions(t) == {0, 1, 3}
    store.upsert(t, batch(t, []), version=4)
    assert store.applied_versions(t) == {0, 1, 3, 4}
    other = ready(store, make_table([("id", "int64")], [("v", "int64")]))
    assert store.applied_versions(other) == set()


def test_marker_is_set_by_mark_synced_and_goes_with_a_drop(store: OnlineStore) -> None:
    t = ready(store, make_table([("id", "int64")], [("v", "int64")]))
    other = ready(store, make_table([("id", "int64")], [("v", "int64")]))
    assert not store.holds(t)
    store.upsert(t, batch(t, [{"id": 1, "et": 1, "seq": 1, "v": 1}]), version=1)
    assert not store.holds(t)  # writes alone never claim the table is complete
    store.mark_synced(t)
    assert store.holds(t)
    assert not store.holds(other)
    assert store.applied_versions(t) == {1}  # the marker is not a version
    store.drop(t)
    assert not store.holds(t)


def test_exclusive_is_held_by_one_caller_at_a_time(store: OnlineStore) -> None:
    t = ready(store, make_table([("id", "int64")], [("v", "int64")]))
    other = ready(store, make_table([("id", "int64")], [("v", "int64")]))
    with store.exclusive(t, seconds=30) as first:
        assert first
        with store.exclusive(t, seconds=30) as second:
            assert not second
        with store.exclusive(other, seconds=30) as third:
            assert third
    with store.exclusive(t, seconds=30) as again:
        assert again
    # A holder keeps its lock past ``seconds`` while it works (a long restore).
    with store.exclusive(t, seconds=0.3) as long_holder:
        assert long_holder
        time.sleep(1.0)
        with store.exclusive(t, seconds=0.3) as late:
            assert not late


def test_large_upsert_marks_version_and_counts(store: OnlineStore) -> None:
    t = ready(store, make_table([("id", "int64")], [("v", "int64"), ("s", "string")]))
    rows = [{"id": i % 2500, "et": i, "seq": i, "v": i, "s": None} for i in range(3000)]
    assert store.upsert(t, batch(t, rows), version=7) == 3000
    assert store.count(t) == 2500
    assert store.applied_versions(t) == {7}
    assert store.read(t, [(0,), (499,), (500,), (2499,)]) == [
        (2500, 2500, 2500, None),
        (2999, 2999, 2999, None),
        (500, 500, 500, None),
        (2499, 2499, 2499, None),
    ]


def test_count_and_delete(store: OnlineStore) -> None:
    t = ready(store, make_table([("a", "int64"), ("b", "string")], [("v", "int64")]))
    assert store.count(t) == 0
    rows = [{"a": i, "b": str(i), "et": 1, "seq": i, "v": i} for i in range(10)]
    store.upsert(t, batch(t, rows), version=None)
    store.upsert(t, batch(t, rows[:3]), version=None)  # not newer: nothing changes
    assert store.count(t) == 10
    assert store.delete(t, [(1, "1"), (2, "2"), (99, "x"), (1, "1")]) == 2
    assert store.count(t) == 8
    assert store.read(t, [(1, "1"), (3, "3")]) == [None, (1, 3, 3)]
    assert store.delete(t, []) == 0
    # A deleted key can be written again from scratch (even with an older event time).
    store.upsert(t, batch(t, [{"a": 1, "b": "1", "et": 0, "seq": 0, "v": 5}]), version=None)
    assert store.read(t, [(1, "1")]) == [(0, 0, 5)]
    assert store.count(t) == 9


def test_tables_whose_names_differ_in_case_never_share_rows(store: OnlineStore) -> None:
    """Either they are two tables (Redis keys are case-sensitive) or the second one is refused
    (SQLite's table names are not): never one table read by both."""
    upper = ready(store, make_table([("id", "int64")], [("v", "int64")], name="Prices_v1"))
    store.upsert(upper, batch(upper, [{"id": 1, "et": 1, "seq": 1, "v": 7}]), version=1)
    lower = make_table([("id", "int64")], [("v", "int64")], name="prices_v1")
    refused = ""
    try:
        store.ensure_table(lower)
    except SchemaError as e:
        refused = str(e)
    if refused:
        assert "'Prices_v1'" in refused
    else:
        assert store.read(lower, [(1,)]) == [None]
        assert store.applied_versions(lower) == set()
        store.upsert(lower, batch(lower, [{"id": 1, "et": 2, "seq": 2, "v": 8}]), version=3)
        store.drop(lower)
    assert store.read(upper, [(1,)]) == [(1, 1, 7)]
    assert store.applied_versions(upper) == {1}


def test_drop_removes_rows_and_marks_of_one_table_only(store: OnlineStore) -> None:
    t1 = ready(store, make_table([("id", "int64")], [("v", "int64")], name="fg_v1"))
    t10 = ready(store, make_table([("id", "int64")], [("v", "int64")], name="fg_v10"))
    for t in (t1, t10):
        store.upsert(t, batch(t, [{"id": 1, "et": 1, "seq": 1, "v": 1}]), version=1)
    store.drop(t1)
    store.drop(t1)  # idempotent
    assert store.count(t1) == 0
    assert store.applied_versions(t1) == set()
    store.ensure_table(t1)
    assert store.read(t1, [(1,)]) == [None]
    assert store.read(t10, [(1,)]) == [(1, 1, 1)]
    assert store.applied_versions(t10) == {1}
    assert store.count(t10) == 1


def test_ensure_table_adds_columns(store: OnlineStore) -> None:
    t = ready(store, make_table([("id", "int64")], [("v", "int64")], name="grow_v1"))
    store.ensure_table(t)  # idempotent
    store.upsert(t, batch(t, [{"id": 1, "et": 1, "seq": 1, "v": 1}]), version=None)
    wider = make_table([("id", "int64")], [("v", "int64"), ("w", "string")], name="grow_v1")
    store.ensure_table(wider)
    assert store.read(wider, [(1,)]) == [(1, 1, 1, None)]
    store.upsert(
        wider, batch(wider, [{"id": 2, "et": 1, "seq": 2, "v": 2, "w": "x"}]), version=None
    )
    assert store.read(wider, [(1,), (2,)]) == [(1, 1, 1, None), (1, 2, 2, "x")]
    assert store.count(wider) == 2


def test_columns_added_by_another_process_are_read_by_a_store_that_read_before(
    store: OnlineStore,
) -> None:
    """A long-lived store read the narrow table; another store on the same URL (another
    process) adds a column and writes. Readers with the wider definition get the new column,
    readers still holding the narrow one get exactly their columns, in either order."""
    narrow = ready(store, make_table([("id", "int64")], [("v", "int64")], name="shared_v1"))
    store.upsert(narrow, batch(narrow, [{"id": 1, "et": 1, "seq": 1, "v": 1}]), version=None)
    assert store.read(narrow, [(1,)]) == [(1, 1, 1)]
    assert store.read(narrow, [(1,), (2,)]) == [(1, 1, 1), None]
    other: OnlineStore = open_online(store.url)
    try:
        wider = make_table([("id", "int64")], [("v", "int64"), ("w", "string")], name="shared_v1")
        other.ensure_table(wider)
        other.upsert(
            wider, batch(wider, [{"id": 1, "et": 2, "seq": 2, "v": 5, "w": "x"}]), version=None
        )
    finally:
        other.close()
    for _ in range(2):  # each definition after the other, both ways round
        assert store.read(wider, [(1,)]) == [(2, 2, 5, "x")]
        assert store.read(wider, [(1,), (2,)]) == [(2, 2, 5, "x"), None]
        assert store.read(narrow, [(1,)]) == [(2, 2, 5)]
        assert store.read(narrow, [(1,), (2,)]) == [(2, 2, 5), None]


def test_a_writer_with_an_older_definition_replaces_the_whole_row(store: OnlineStore) -> None:
    """After another store added column w and wrote it, a newer row written with the narrow
    definition (a writer that has not seen w yet) has w null, as its offline row has; an
    older row still loses."""
    narrow = ready(store, make_table([("id", "int64")], [("v", "int64")], name="stale_v1"))
    store.upsert(narrow, batch(narrow, [{"id": 1, "et": 1, "seq": 1, "v": 1}]), version=None)
    other: OnlineStore = open_online(store.url)
    try:
        wider = ready(
            other,
            make_table([("id", "int64")], [("v", "int64"), ("w", "string")], name="stale_v1"),
        )
        rows = [{"id": i, "et": 2, "seq": 2, "v": 2, "w": "x"} for i in (1, 2, 3)]
        other.upsert(wider, batch(wider, rows), version=None)
    finally:
        other.close()
    newer = [{"id": 1, "et": 3, "seq": 3, "v": 3}, {"id": 2, "et": 1, "seq": 9, "v": 9}]
    assert store.upsert(narrow, batch(narrow, newer), version=None) == 1
    assert store.read(wider, [(1,), (2,), (3,)]) == [
        (3, 3, 3, None),
        (2, 2, 2, "x"),
        (2, 2, 2, "x"),
    ]


def test_a_column_the_store_never_added_reads_as_null_or_fails_never_as_its_name(
    store: OnlineStore,
) -> None:
    """A definition naming a column that ensure_table never added (the registry has it, the
    writer stopped before the online store): Redis hashes have no schema (null), SQLite names
    the column in a IntegrityError. Never a made-up value."""
    from fti.errors import IntegrityError

    narrow = ready(store, make_table([("id", "int64")], [("v", "int64")], name="gap_v1"))
    store.upsert(narrow, batch(narrow, [{"id": 1, "et": 1, "seq": 1, "v": 1}]), version=None)
    wider = make_table([("id", "int64")], [("v", "int64"), ("w", "string")], name="gap_v1")
    for keys in ([(1,)], [(1,), (2,)]):
        if store.url.startswith("sqlite"):
            with pytest.raises(IntegrityError, match=r"\['w'\]"):
                store.read(wider, keys)
        else:
            assert store.read(wider, keys)[0] == (1, 1, 1, None)


def test_stores_are_independent(store: OnlineStore, tmp_path: Path) -> None:
    """Two stores on different paths/prefixes never see each other's rows."""
    t = ready(store, make_table([("id", "int64")], [("v", "int64")], name="iso_v1"))
    store.upsert(t, batch(t, [{"id": 1, "et": 1, "seq": 1, "v": 1}]), version=1)
    if store.url.startswith("redis"):
        other_url = store.url.replace("prefix=", "prefix=other_")
    else:
        other_url = f"sqlite:///{tmp_path / 'other.db'}"
    other: OnlineStore = open_online(other_url)
    try:
        other.ensure_table(t)
        assert other.read(t, [(1,)]) == [None]
        assert other.count(t) == 0
        other.drop(t)
    finally:
        other.close()
    assert store.read(t, [(1,)]) == [(1, 1, 1)]


def test_unreachable_redis_is_a_clear_error_without_the_password() -> None:
    from fti.errors import BackendUnavailableError

    with pytest.raises(BackendUnavailableError, match="Start Redis") as info:
        open_online("redis://:secret@127.0.0.1:1/0?prefix=x")
    assert "secret" not in str(info.value)


def test_bad_prefix_is_rejected() -> None:
    from fti.errors import ConfigError

    with pytest.raises(ConfigError, match="prefix"):
        open_online("redis://127.0.0.1:1/0?prefix=a:b")


def test_large_upsert_in_rounds_marks_its_version_once_all_rows_are_in(
    store: OnlineStore,
) -> None:
    # More rows than one write round (Redis encodes the next round while the previous runs):
    # every row lands, older rows still lose to stored newer ones, the version is marked.
    t = ready(store, make_table([("id", "int64")], [("v", "float64")]))
    n = 120_003
    store.upsert(t, batch(t, [{"id": 7, "et": 10, "seq": 10, "v": -1.0}]), version=None)
    rows = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            ET: pa.array([5] * n, pa.int64()),
            SEQ: pa.array(range(n), pa.int64()),
            "v": pa.array([float(i) for i in range(n)], pa.float64()),
        }
    )
    assert store.upsert(t, rows, version=3) == n - 1  # key 7 holds a newer row
    assert 3 in store.applied_versions(t)
    assert store.count(t) == n
    assert store.read(t, [(0,), (7,), (n - 1,), (60_000,)]) == [
        (5, 0, 0.0),
        (10, 10, -1.0),
        (5, n - 1, float(n - 1)),
        (5, 60_000, 60_000.0),
    ]
