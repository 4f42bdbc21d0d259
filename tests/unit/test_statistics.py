"""statistics.describe against plain-Python oracles: counts, moments, histogram, distinct."""

from __future__ import annotations

import json
import math
import statistics
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from fti.services.statistics import EXACT_DISTINCT_ROWS, describe

EXAMPLES = settings(max_examples=200, deadline=None)

floats = st.lists(
    st.one_of(
        st.floats(-1e9, 1e9, allow_nan=False),
        st.floats(-1e9, 1e9, allow_nan=False),
        st.sampled_from([None, math.nan, math.inf, -math.inf, 0.0, 1.0]),
    ),
    max_size=60,
)
ints = st.lists(st.one_of(st.integers(-(10**12), 10**12), st.none()), max_size=60)


def oracle_bins(values: list[float], edges: list[float]) -> list[int]:
    """Bin i holds edges[i] <= x < edges[i+1]; the last bin also holds x == edges[-1]."""
    counts = [0] * (len(edges) - 1)
    for x in values:
        for i in range(len(counts)):
            last = i == len(counts) - 1
            if edges[i] <= x < edges[i + 1] or (last and x == edges[-1]):
                counts[i] += 1
                break
    return counts


def check_numeric(got: dict[str, Any], finite: list[float], kind: type) -> None:
    if not finite:
        assert got["mean"] is None
        assert got["std"] is None
        assert got["histogram"] is None
        return
    scale = max(1.0, *(abs(x) for x in finite))
    assert math.isclose(got["mean"], statistics.fmean(finite), rel_tol=1e-9, abs_tol=1e-9 * scale)
    assert math.isclose(got["std"], statistics.pstdev(finite), rel_tol=1e-9, abs_tol=1e-6 * scale)
    assert got["min"] == min(finite)
    assert got["max"] == max(finite)
    assert type(got["min"]) is kind
    edges, counts = got["histogram"]["edges"], got["histogram"]["counts"]
    assert len(edges) == 11
    assert len(counts) == 10
    assert edges == sorted(edges)
    lo, hi = (
        (min(finite), max(finite))
        if min(finite) < max(finite)
        else (finite[0] - 0.5, finite[0] + 0.5)
    )
    assert edges[0] == lo
    assert edges[-1] == hi
    for i, e in enumerate(edges):
        assert math.isclose(e, lo + (hi - lo) * i / 10, rel_tol=1e-9, abs_tol=1e-9 * scale)
    assert counts == oracle_bins([float(x) for x in finite], edges)
    assert sum(counts) == len(finite)


@EXAMPLES
@given(floats)
def test_float_column_matches_python_oracle(values: list[float | None]) -> None:
    got = describe(pa.table({"x": pa.array(values, pa.float64())}))["x"]
    json.dumps(got, allow_nan=False)  # strict JSON: no NaN or inf anywhere
    present = [v for v in values if v is not None]
    finite = [v for v in present if math.isfinite(v)]
    assert got["dtype"] == "float64"
    assert got["count"] == len(present)
    assert got["nulls"] == len(values) - len(present)
    assert got["non_finite"] == len(present) - len(finite)
    distinct = {("nan" if math.isnan(v) else v) for v in present}
    assert got["distinct"] == len(distinct)
    check_numeric(got, finite, float)


@EXAMPLES
@given(ints)
def test_int_column_matches_python_oracle(values: list[int | None]) -> None:
    got = describe(pa.table({"i": pa.array(values, pa.int64())}))["i"]
    json.dumps(got, allow_nan=False)
    present = [v for v in values if v is not None]
    assert got["count"] == len(present)
    assert got["nulls"] == len(values) - len(present)
    assert got["distinct"] == len(set(present))
    assert "non_finite" not in got
    check_numeric(got, present, int)


@EXAMPLES
@given(st.lists(st.one_of(st.text(max_size=3), st.none()), max_size=40))
def test_string_column_counts_and_distinct(values: list[str | None]) -> None:
    got = describe(pa.table({"s": pa.array(values, pa.string())}))["s"]
    present = [v for v in values if v is not None]
    assert got == {
        "dtype": "string",
        "count": len(present),
        "nulls": len(values) - len(present),
        "distinct": len(set(present)),
    }


def test_bool_timestamp_and_date_columns() -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    table = pa.table(
        {
            "b": [True, False, True, None],
            "ts": pa.array([t0, None, t0 + timedelta(hours=5), t0], pa.timestamp("us", tz="UTC")),
            "d": [date(2026, 1, 2), date(2025, 5, 6), None, None],
        }
    )
    got = describe(table)
    json.dumps(got, allow_nan=False)
    assert got["b"] == {"dtype": "bool", "count": 3, "nulls": 1, "distinct": 2, "mean": 2 / 3}
    assert got["ts"]["min"] == "2026-03-01T00:00:00+00:00"
    assert got["ts"]["max"] == "2026-03-01T05:00:00+00:00"
    assert got["ts"]["distinct"] == 2
    assert got["d"]["min"] == "2025-05-06"
    assert got["d"]["max"] == "2026-01-02"


def test_single_value_histogram_spans_half_a_unit() -> None:
    got = describe(pa.table({"x": [3, 3, 3]}))["x"]
    assert got["std"] == 0.0
    assert got["histogram"]["edges"][0] == 2.5
    assert got["histogram"]["edges"][-1] == 3.5
    assert got["histogram"]["counts"] == [0, 0, 0, 0, 0, 3, 0, 0, 0, 0]


def test_empty_and_all_null_columns() -> None:
    got = describe(
        pa.table(
            {"x": pa.array([None, None], pa.float64()), "y": pa.array([None, None], pa.int64())}
        )
    )
    assert got["x"]["count"] == 0
    assert got["x"]["mean"] is None
    assert describe(pa.table({"e": pa.array([], pa.string())}))["e"]["count"] == 0
    assert got["y"] == {
        "dtype": "int64",
        "count": 0,
        "nulls": 2,
        "distinct": 0,
        "mean": None,
        "std": None,
        "min": None,
        "max": None,
        "histogram": None,
    }


def test_overflowing_mean_is_none_not_inf() -> None:
    got = describe(pa.table({"x": [1.7e308, 1.7e308]}))["x"]
    json.dumps(got, allow_nan=False)
    assert got["max"] == 1.7e308
    assert sum(got["histogram"]["counts"]) == 2


def test_dictionary_and_column_order() -> None:
    table = pa.table({"z": pa.array(["a", "b", "a"]).dictionary_encode(), "a": [1.0, 2.0, 3.0]})
    got = describe(table)
    assert list(got) == ["z", "a"]
    assert got["z"]["dtype"] == "string"
    assert got["z"]["distinct"] == 2


def test_distinct_is_exact_up_to_the_limit_and_estimated_above() -> None:
    n = EXACT_DISTINCT_ROWS
    small = describe(pa.table({"i": pa.array(range(n))}))
    assert small["i"]["distinct"] == n
    big = pa.table(
        {
            "i": pa.array([i % 150_000 for i in range(2 * n)]),
            "s": pa.array([str(i % 1000) for i in range(2 * n)]),
            "b": pa.array([i % 2 == 0 for i in range(2 * n)]),
        }
    )
    got = describe(big)
    assert abs(got["i"]["distinct"] - 150_000) <= 0.05 * 150_000
    assert abs(got["s"]["distinct"] - 1000) <= 0.05 * 1000
    assert got["b"]["distinct"] == 2
    assert got["i"]["count"] == 2 * n
