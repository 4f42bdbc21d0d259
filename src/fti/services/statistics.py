"""Descriptive statistics of a table, stored with every training dataset.

:func:`describe` is vectorised (``pyarrow.compute`` and numpy, one pass per statistic) and works
out-of-the-box on millions of rows. Its result is plain JSON. Per column:

- ``dtype`` (fti's logical dtype, or the Arrow type for anything else), ``count`` (non-null
  values), ``nulls``, ``distinct`` (distinct non-null values: exact for tables of up to
  :data:`EXACT_DISTINCT_ROWS` rows, above that DuckDB's HyperLogLog ``approx_count_distinct``,
  typically within a few percent, because an exact count of a million unique floats costs ~1 s
  per column);
- numeric columns (ints, floats, decimals): ``mean``, ``std`` (population, ddof=0), ``min``,
  ``max`` and a 10-bin ``histogram`` ``{"edges": [11 floats], "counts": [10 ints]}`` — all over
  the finite values; float columns also report ``non_finite`` (NaN and ±inf, excluded above).
  Bin ``i`` holds ``edges[i] <= x < edges[i+1]``; the last bin also holds ``x == edges[10]``. When
  every value is the same, the edges span ``value ± 0.5`` (as numpy does);
- bool columns: ``mean`` (the fraction of true values);
- timestamp and date columns: ``min`` and ``max`` as ISO 8601 strings.

Statistics that do not apply, or that have no values to describe, are ``None``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fti._internal.error_translation import engine_errors
from fti.definitions.fields import dtype_of
from fti.errors import SchemaError

if TYPE_CHECKING:
    from fti.backends.compute.duckdb import DuckDBEngine

__all__ = ["EXACT_DISTINCT_ROWS", "HISTOGRAM_BINS", "describe", "histogram_edges"]

HISTOGRAM_BINS = 10
#: Up to this many rows ``distinct`` is exact; above it, a HyperLogLog estimate.
EXACT_DISTINCT_ROWS = 100_000


def describe(table: pa.Table, *, engine: DuckDBEngine | None = None) -> dict[str, dict[str, Any]]:
    """Per-column statistics of ``table`` (see the module docstring), JSON-serialisable.
    ``engine``: the store's DuckDB (``ctx.compute``) for the distinct counts of a large table
    (default: a short-lived one of its own).

    >>> describe(pa.table({"x": [1, 2, None]}))["x"]["mean"]
    1.5
    """
    out = {
        name: _describe_column(col, exact_distinct=table.num_rows <= EXACT_DISTINCT_ROWS)
        for name, col in zip(table.column_names, table.columns, strict=True)
    }
    if table.num_rows > EXACT_DISTINCT_ROWS:
        for name, estimate in _approx_distinct(table, engine).items():
            out[name]["distinct"] = estimate
    return out


@engine_errors("counting distinct values")
def _approx_distinct(table: pa.Table, engine: DuckDBEngine | None) -> dict[str, int]:
    """HyperLogLog distinct counts of every hashable column, in one parallel DuckDB scan."""
    if engine is None:
        from fti.backends.compute.duckdb import DuckDBEngine

        own = DuckDBEngine()
        try:
            return _approx_distinct(table, own)
        finally:
            own.close()
    names = [
        n
        for n, t in zip(table.column_names, table.schema.types, strict=True)
        if not (pa.types.is_nested(t) or pa.types.is_null(t))
    ]
    if not names:
        return {}
    # Positional aliases: no user-supplied name ever reaches the SQL text.
    data = table.select(names).rename_columns([f"c{i}" for i in range(len(names))])
    query = "SELECT " + ", ".join(f"approx_count_distinct(c{i})" for i in range(len(names)))
    with engine.cursor() as con:
        con.register("data", data)
        (counts,) = con.sql(query + " FROM data").fetchall()
    return {n: int(c) for n, c in zip(names, counts, strict=True)}


def histogram_edges(lo: float, hi: float, bins: int = HISTOGRAM_BINS) -> list[float]:
    """``bins + 1`` equal-width edges from ``lo`` to ``hi`` (``± 0.5`` when they are equal)."""
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    # Divide before subtracting so that (-1e308, 1e308) does not overflow to inf.
    step = hi / bins - lo / bins
    return [lo, *(lo + step * i for i in range(1, bins)), hi]


def _dtype_name(t: pa.DataType) -> str:
    try:
        return dtype_of(t, column="?")
    except SchemaError:
        return str(t)


def _describe_column(col: pa.ChunkedArray, *, exact_distinct: bool) -> dict[str, Any]:
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    t = col.type
    out: dict[str, Any] = {
        "dtype": _dtype_name(t),
        "count": len(col) - col.null_count,
        "nulls": col.null_count,
        "distinct": _distinct(col) if exact_distinct else None,
    }
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        out.update(_numeric(col))
    elif pa.types.is_boolean(t):
        mean = pc.mean(col).as_py()
        out["mean"] = None if mean is None else float(mean)
    elif pa.types.is_timestamp(t) or pa.types.is_date(t):
        mm = pc.min_max(col).as_py()
        out["min"] = None if mm["min"] is None else mm["min"].isoformat()
        out["max"] = None if mm["max"] is None else mm["max"].isoformat()
    return out


def _distinct(col: pa.ChunkedArray) -> int | None:
    if pa.types.is_floating(col.type):
        col = pc.add(col, 0.0)  # -0.0 + 0.0 == 0.0: count the two zeros as one value
    try:
        return int(pc.count_distinct(col, mode="only_valid").as_py())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return None  # nested types have no hash kernel


def _numeric(col: pa.ChunkedArray) -> dict[str, Any]:
    is_int = pa.types.is_integer(col.type)
    out: dict[str, Any] = {}
    if is_int:
        x = pc.drop_null(col)
    else:
        col = col.cast(pa.float64())
        finite = pc.is_finite(col)
        x = pc.filter(col, finite)  # drops nulls too
        out["non_finite"] = int(pc.sum(pc.invert(finite)).as_py() or 0)
    n = len(x)
    if n == 0:
        out.update(mean=None, std=None, min=None, max=None, histogram=None)
        return out
    mm = pc.min_max(x).as_py()
    # Finite inputs can still overflow a sum (e.g. 1e308 + 1e308): report None, never inf.
    mean = float(pc.mean(x).as_py())
    std = float(pc.stddev(x, ddof=0).as_py())
    out["mean"] = mean if math.isfinite(mean) else None
    out["std"] = std if math.isfinite(std) else None
    out["min"] = int(mm["min"]) if is_int else float(mm["min"])
    out["max"] = int(mm["max"]) if is_int else float(mm["max"])
    edges = histogram_edges(float(mm["min"]), float(mm["max"]))
    values = x.cast(pa.float64(), safe=False).to_numpy()
    # The bin of x is the number of inner edges <= x: exactly the rule stated in the docstring.
    bins = np.searchsorted(np.asarray(edges[1:-1]), values, side="right")
    counts = np.bincount(bins, minlength=HISTOGRAM_BINS)
    out["histogram"] = {"edges": edges, "counts": [int(c) for c in counts]}
    return out
