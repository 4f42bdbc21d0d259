"""Property test: the point-in-time join equals a plain-Python oracle (loops, no DuckDB).

Random small tables whose timestamps collide often: ties and corrections (same key and time in
a later insert, or later in the same insert), TTL boundaries at exactly ``t - ttl`` and +-1 us,
null values, duplicate spine rows, unknown keys, two-column keys such as (1, "23") vs
(12, "3"), up to three feature groups (one a snapshot), and spines in non-UTC time zones.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fti

EXAMPLES = 1000 if os.environ.get("CI") else 200
BASE_US = 1_710_053_999_000_000  # 2024-03-10 06:59:59 UTC, an hour before a DST switch in NY
ZONES = ["UTC", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
_names = itertools.count()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[fti.FeatureStore]:
    fs = fti.connect(tmp_path_factory.mktemp("pit") / "store")
    yield fs
    fs.close()


# --------------------------------------------------------------------------- the oracle
@dataclass(frozen=True)
class Row:
    key: tuple[Any, ...]
    time: int | None  # microseconds since the epoch; None in a snapshot group
    order: tuple[int, int]  # (insert number, position in the insert)
    values: dict[str, Any]


def oracle_pick(
    rows: list[Row], key: tuple[Any, ...], t: int | None, ttl: int | None
) -> Row | None:
    """The greatest row by (time, insert order) with this key, time <= t and >= t - ttl."""
    best: Row | None = None
    for r in rows:
        if r.key != key:
            continue
        if r.time is not None and t is not None:
            if r.time > t:
                continue
            if ttl is not None and r.time < t - ttl:
                continue
        rank = (r.time if r.time is not None else 0, r.order)
        if best is None or rank > (best.time if best.time is not None else 0, best.order):
            best = r
    return best


# --------------------------------------------------------------------------- strategies
SMALL_FLOATS = st.one_of(st.none(), st.sampled_from([0.0, -1.5, 2.25, 1e300]))
SMALL_INTS = st.one_of(st.none(), st.integers(-3, 3))
K1 = st.sampled_from([1, 12])
K2 = st.sampled_from(["3", "23"])


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    multi = draw(st.booleans())
    step = draw(st.sampled_from([1, 1_000_000]))

    def key() -> tuple[Any, ...]:
        return (draw(K1), draw(K2)) if multi else (draw(K1),)

    def inserts(make: Any, max_inserts: int = 3) -> list[list[Any]]:
        n_inserts = draw(st.integers(1, max_inserts))
        return [[make() for _ in range(draw(st.integers(0, 5)))] for _ in range(n_inserts)]

    a_rows = inserts(
        lambda: (
            key(),
            BASE_US + draw(st.integers(0, 5)) * step,
            draw(SMALL_FLOATS),
            draw(SMALL_INTS),
        )
    )
    b_rows = inserts(lambda: (key(), BASE_US + draw(st.integers(0, 5)) * step, draw(SMALL_INTS)), 2)
    c_rows = inserts(
        lambda: ((draw(K1),), draw(st.one_of(st.none(), st.sampled_from(["p", "q"]))), 2)
    )
    ttl_a = draw(st.sampled_from([None, 1, 2]))
    ttl_b = draw(st.sampled_from([None, 1, 3]))
    spine = [
        (
            key() if draw(st.integers(0, 9)) else ((99, "3") if multi else (99,)),
            BASE_US + draw(st.integers(-1, 6)) * step + draw(st.sampled_from([-1, 0, 1])),
        )
        for _ in range(draw(st.integers(0, 8)))
    ]
    if spine and draw(st.booleans()):
        spine.append(spine[0])  # an exact duplicate spine row
    return {
        "multi": multi,
        "a": a_rows,
        "b": b_rows if draw(st.booleans()) else None,
        "c": c_rows if draw(st.booleans()) else None,
        "ttl_a": None if ttl_a is None else ttl_a * step,
        "ttl_b": None if ttl_b is None else ttl_b * step,
        "spine": spine,
        "zone": draw(st.sampled_from(ZONES)),
    }


# --------------------------------------------------------------------------- engine side
def _ts(values: list[int]) -> pa.Array:
    return pa.array(values, pa.int64()).cast(pa.timestamp("us", tz="UTC"))


def _key_columns(keys: list[tuple[Any, ...]], names: list[str]) -> dict[str, pa.Array]:
    out = {names[0]: pa.array([k[0] for k in keys], pa.int64())}
    if len(names) > 1:
        out[names[1]] = pa.array([k[1] for k in keys], pa.string())
    return out


def _oracle_rows(inserts: list[list[Any]], make: Any) -> list[Row]:
    return [make(row, (i, j)) for i, batch in enumerate(inserts) for j, row in enumerate(batch)]


@pytest.mark.slow
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios())
def test_point_in_time_join_matches_oracle(store: fti.FeatureStore, s: dict[str, Any]) -> None:
    n = next(_names)
    keys = ["k1", "k2"] if s["multi"] else ["k1"]
    bkeys = ["bk1", "bk2"] if s["multi"] else ["bk1"]
    kdt = {"k1": "int64", "k2": "string"}
    a = store.feature_group(
        f"a{n}",
        primary_key=keys,
        event_time="t",
        ttl=None if s["ttl_a"] is None else timedelta(microseconds=s["ttl_a"]),
        features={**{k: kdt[k] for k in keys}, "t": "timestamp", "x": "float64", "lbl": "int64"},
    )
    for batch in s["a"]:
        if batch:
            a.insert(
                pa.table(
                    {
                        **_key_columns([r[0] for r in batch], keys),
                        "t": _ts([r[1] for r in batch]),
                        "x": pa.array([r[2] for r in batch], pa.float64()),
                        "lbl": pa.array([r[3] for r in batch], pa.int64()),
                    }
                )
            )
    a_rows = _oracle_rows(s["a"], lambda r, o: Row(r[0], r[1], o, {"x": r[2], "lbl": r[3]}))
    query = a.select(["x"])
    b_rows: list[Row] = []
    c_rows: list[Row] = []
    if s["b"] is not None:
        b = store.feature_group(
            f"b{n}",
            primary_key=bkeys,
            event_time="bt",
            ttl=None if s["ttl_b"] is None else timedelta(microseconds=s["ttl_b"]),
            features={
                **{bk: kdt[k] for bk, k in zip(bkeys, keys, strict=True)},
                "bt": "timestamp",
                "y": "int64",
            },
        )
        for batch in s["b"]:
            if batch:
                b.insert(
                    pa.table(
                        {
                            **_key_columns([r[0] for r in batch], bkeys),
                            "bt": _ts([r[1] for r in batch]),
                            "y": pa.array([r[2] for r in batch], pa.int64()),
                        }
                    )
                )
        b_rows = _oracle_rows(s["b"], lambda r, o: Row(r[0], r[1], o, {"y": r[2]}))
        query = query.join(b.select(["y", "bt"]), left_on=keys, right_on=bkeys, prefix="b_")
    if s["c"] is not None:
        c = store.feature_group(
            f"c{n}", primary_key=["k1"], features={"k1": "int64", "z": "string"}
        )
        for batch in s["c"]:
            if batch:
                c.insert(
                    pa.table(
                        {
                            "k1": pa.array([r[0][0] for r in batch], pa.int64()),
                            "z": pa.array([r[1] for r in batch], pa.string()),
                        }
                    )
                )
        c_rows = _oracle_rows(s["c"], lambda r, o: Row(r[0], None, o, {"z": r[1]}))
        query = query.join(c.select(["z"]), on=["k1"], prefix="c_")
    # b's y, when joined, is a label too: labels of joined groups are joined like features.
    labels = ["lbl", *(["b_y"] if s["b"] is not None else [])]
    fv = store.feature_view(f"v{n}", query=query, labels=labels)

    def expected(key: tuple[Any, ...], t: int, own: Row | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if own is None:
            hit = oracle_pick(a_rows, key, t, s["ttl_a"])
            out["x"] = hit.values["x"] if hit else None
            out["lbl"] = hit.values["lbl"] if hit else None
        else:
            out["x"], out["lbl"] = own.values["x"], own.values["lbl"]
        if s["b"] is not None:
            hit = oracle_pick(b_rows, key, t, s["ttl_b"])
            out["b_y"] = hit.values["y"] if hit else None
            out["b_bt"] = hit.time if hit else None
        if s["c"] is not None:
            hit = oracle_pick(c_rows, key[:1], None, None)
            out["c_z"] = hit.values["z"] if hit else None
        return out

    def actual(table: pa.Table, i: int) -> dict[str, Any]:
        cols = [c for c in ("x", "lbl", "b_y", "c_z") if c in table.column_names]
        out = {c: table.column(c)[i].as_py() for c in cols}
        if "b_bt" in table.column_names:
            out["b_bt"] = table.column("b_bt").cast(pa.int64())[i].as_py()
        return out

    # 1) with a spine in some time zone: one row per spine row, in order.
    spine_keys = [k for k, _ in s["spine"]]
    spine_times = [t for _, t in s["spine"]]
    spine = pd.DataFrame(
        {
            **{name: [k[i] for k in spine_keys] for i, name in enumerate(keys)},
            "t": pd.to_datetime(
                pd.Series(spine_times, dtype="int64"), unit="us", utc=True
            ).dt.tz_convert(s["zone"]),
            "req": list(range(len(spine_keys))),
        }
    )
    if s["multi"]:
        spine["k2"] = spine["k2"].astype(object)
    got = fv.training_data(spine=spine, format="arrow")
    assert got.num_rows == len(s["spine"])
    assert got.column("req").to_pylist() == list(range(len(s["spine"])))
    assert got.column("t").cast(pa.int64()).to_pylist() == spine_times
    for i, (key, t) in enumerate(s["spine"]):
        assert actual(got, i) == expected(key, t, None), (i, key, t)

    # 2) without a spine: the left group's corrected history (per key and event time the last
    # inserted row), ordered by (event time, insert order).
    last: dict[tuple[Any, ...], Row] = {}
    for r in a_rows:
        if (r.key, r.time) not in last or r.order > last[(r.key, r.time)].order:
            last[(r.key, r.time)] = r
    got = fv.training_data(format="arrow")
    ordered = sorted(last.values(), key=lambda r: (r.time, r.order))
    assert got.num_rows == len(ordered)
    assert got.column("t").cast(pa.int64()).to_pylist() == [r.time for r in ordered]
    for i, r in enumerate(ordered):
        assert tuple(got.column(k)[i].as_py() for k in keys) == r.key
        assert actual(got, i) == expected(r.key, r.time or 0, r), (i, r)


def test_oracle_examples() -> None:
    """The oracle itself on hand-checked cases (ties, corrections, ttl bounds)."""
    rows = [
        Row((1,), 10, (0, 0), {"v": "a"}),
        Row((1,), 10, (1, 0), {"v": "correction"}),
        Row((1,), 20, (0, 1), {"v": "b"}),
        Row((12,), 5, (0, 2), {"v": "other"}),
    ]
    assert oracle_pick(rows, (1,), 9, None) is None
    pick = oracle_pick(rows, (1,), 10, None)
    assert pick is not None
    assert pick.values["v"] == "correction"
    pick = oracle_pick(rows, (1,), 19, 9)
    assert pick is not None
    assert pick.values["v"] == "correction"  # 19 - 9 == 10: the ttl bound is inclusive
    assert oracle_pick(rows, (1,), 21, 10) is not None
    assert oracle_pick(rows, (1,), 31, 10) is None
    assert oracle_pick(rows, (2,), 100, None) is None


def test_spine_columns_are_reported(store: fti.FeatureStore, tmp_path: Path) -> None:
    del tmp_path
    fg = store.feature_group(
        f"sp{next(_names)}",
        primary_key=["k1"],
        event_time="t",
        features={"k1": "int64", "t": "timestamp", "x": "float64"},
    )
    fv = store.feature_view(f"spv{next(_names)}", query=fg.select(["x"]))
    with pytest.raises(fti.ValidationError, match="lacks column"):
        fv.training_data(spine=pd.DataFrame({"k1": [1]}))
    naive = pd.DataFrame({"k1": [1], "t": [pd.Timestamp("2024-01-01")]})
    with pytest.raises(fti.ValidationError, match="naive"):
        fv.training_data(spine=naive)
