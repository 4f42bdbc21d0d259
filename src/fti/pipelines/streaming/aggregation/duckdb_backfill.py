"""Compute windowed aggregates in batch with DuckDB: the backfill of a streaming feature group.

Given events (keys, event time, event id, value columns) and *points* ``(key, t)`` — by
default every distinct key and event time of the events, i.e. exactly the rows the stream
emits — return every aggregate over ``(t - window, t]`` per point (for a hopping/tumbling
aggregation, over the window ending at the last hop boundary at or before ``t``). Events are
deduplicated by event id (the first row wins); lateness does not apply (a backfill sees every
event).

DuckDB does the heavy part: a range join of points to events per window, grouped per point.
Sums are exact, like the stream's: integer columns are summed as HUGEINT; a float column is
split (numpy ``frexp``) into an int64 mantissa and a binary exponent, and mantissas are summed
as HUGEINT per point *and exponent*, so no rounding happens in SQL. The exact totals are then
rounded once by the same ``finalize`` the stream uses. Limit: a HUGEINT sum of squares holds
about 2**21 float values per point and exponent (2**127 / 2**106), beyond that DuckDB raises
an overflow error instead of returning a wrong value.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fti._internal.error_translation import engine_errors
from fti._internal.names import quote
from fti.backends.compute.duckdb import DuckDBEngine
from fti.definitions.aggregations import FLOAT_SCALE, Partial, WindowSpec, finalize, value_scale
from fti.definitions.fields import arrow_type
from fti.errors import ValidationError

__all__ = ["aggregate"]

_ET = "_fti_bf_et"
_T = "_fti_bf_t"
_PID = "_fti_bf_pid"
_RN = "_fti_bf_rn"
_FLOATS = {"float32", "float64"}


def _shift(value: int, bits: int) -> int:
    return value << bits if bits >= 0 else value >> -bits  # exact: low bits are zero


def _prepare(spec: WindowSpec, events: pa.Table) -> pa.Table:
    need = [*spec.keys, spec.event_time, spec.event_id, *spec.value_columns]
    missing = [c for c in need if c not in events.column_names]
    if missing:
        raise ValidationError(
            f"The backfill events lack columns {missing}; they need {need}. "
            "Rename or transform the frame first."
        )
    et = events.column(spec.event_time)
    if not pa.types.is_integer(et.type):
        et = pc.cast(pc.cast(et, arrow_type("timestamp")), pa.int64())
    cols = {c: events.column(c) for c in need if c != spec.event_time}
    cols[_ET] = et
    cols[_RN] = pa.array(np.arange(events.num_rows, dtype=np.int64))
    for i, c in enumerate(spec.value_columns):
        if spec.columns[c] in _FLOATS and _summed(spec, c):
            arr = pc.cast(events.column(c), pa.float64()).combine_chunks()
            valid = arr.is_valid().to_numpy(zero_copy_only=False)
            x = arr.fill_null(0.0).to_numpy(zero_copy_only=False)
            if not np.isfinite(x).all():
                raise ValidationError(f"Column {c!r} holds NaN or infinity; only finite values.")
            m, e = np.frexp(x)
            mant = (m * float(1 << 53)).astype(np.int64)  # exact: m has at most 53 bits
            cols[f"_fti_m{i}"] = pa.array(mant, mask=~valid)
            cols[f"_fti_e{i}"] = pa.array((e - 53).astype(np.int32), mask=~valid)
    return pa.table(cols)


def _summed(spec: WindowSpec, column: str) -> bool:
    return any(a.column == column and a.fn in ("sum", "mean", "stddev") for a in spec.aggregations)


@engine_errors("computing window aggregations")
def aggregate(
    spec: WindowSpec,
    events: pa.Table,
    points: pa.Table | None = None,
    *,
    engine: DuckDBEngine,
) -> pa.Table:
    """Aggregates per point: columns keys, event time, then one column per aggregation.

    ``points`` has the key columns and the event-time column (timestamp or int µs); it
    defaults to the distinct (key, event time) pairs of ``events``. Output rows follow it.
    """
    prepared = _prepare(spec, events)
    keys = [quote(k) for k in spec.keys]
    con = engine.cursor()  # TEMP tables below stay local to this cursor
    try:
        con.register("raw", prepared)
        con.sql(
            f"CREATE TEMP TABLE ev AS SELECT * FROM raw "
            f"QUALIFY row_number() OVER (PARTITION BY {quote(spec.event_id)} ORDER BY {_RN}) = 1"
        )
        if points is None:
            con.sql(
                f"CREATE TEMP TABLE pts AS SELECT *, row_number() OVER () - 1 AS {_PID} FROM "
                f"(SELECT DISTINCT {', '.join(keys)}, {_ET} AS {_T} FROM ev "
                f"ORDER BY {', '.join(keys)}, {_T})"
            )
        else:
            t = points.column(spec.event_time)
            if not pa.types.is_integer(t.type):
                t = pc.cast(pc.cast(t, arrow_type("timestamp")), pa.int64())
            pts_in = pa.table(
                {
                    **{k: points.column(k) for k in spec.keys},
                    _T: t,
                    _PID: pa.array(np.arange(points.num_rows, dtype=np.int64)),
                }
            )
            con.register("pts_in", pts_in)
            con.sql("CREATE TEMP TABLE pts AS SELECT * FROM pts_in")
        base = con.sql(f"SELECT * FROM pts ORDER BY {_PID}").to_arrow_table()
        n = base.num_rows
        on = " AND ".join(f"e.{k} = p.{k}" for k in keys)
        outputs: list[list[Any]] = [[None] * n for _ in spec.aggregations]
        groups: dict[tuple[str, int, int], list[int]] = {}
        for i, a in enumerate(spec.aggregations):
            groups.setdefault((a.column, a.window_us, a.hop_us), []).append(i)
        for (column, window, hop), idxs in groups.items():
            partials = _window_partials(con, spec, column, window, hop, on, n)
            scale = value_scale(spec.columns[column])
            for i in idxs:
                a = spec.aggregations[i]
                col = outputs[i]
                for pid, p in enumerate(partials):
                    col[pid] = finalize(a.fn, p, scale)
    finally:
        con.close()
    dtypes = spec.feature_dtypes()
    arrays = [base.column(k) for k in spec.keys]
    arrays.append(pc.cast(base.column(_T), pa.int64()).cast(arrow_type("timestamp")))
    for a, col in zip(spec.aggregations, outputs, strict=True):
        arrays.append(pa.array(col, arrow_type(dtypes[a.output])))
    names = [*spec.keys, spec.event_time, *(a.output for a in spec.aggregations)]
    return pa.Table.from_arrays(arrays, names=names)


def _window_partials(
    con: duckdb.DuckDBPyConnection,
    spec: WindowSpec,
    column: str,
    window: int,
    hop: int,
    on: str,
    n: int,
) -> list[Partial]:
    """Exact partial aggregates of ``column`` over ``(end - window, end]`` for every point,
    ``end`` being ``t`` (sliding) or the last multiple of ``hop`` at or before ``t``."""
    c = f"e.{quote(column)}"
    dtype = spec.columns[column]
    # Floor modulo (SQL % keeps the dividend's sign, so shift it for times before 1970).
    end = f"(p.{_T} - ((p.{_T} % {int(hop)}) + {int(hop)}) % {int(hop)})" if hop else f"p.{_T}"
    join = (
        f"FROM pts p LEFT JOIN ev e ON {on} AND e.{_ET} > {end} - {int(window)} "
        f"AND e.{_ET} <= {end}"
    )
    distinct = any(a.column == column and a.fn == "count_distinct" for a in spec.aggregations)
    summed = _summed(spec, column)
    int_sums = summed and dtype not in _FLOATS
    select = [
        f"p.{_PID}",
        f"count({c})",
        f"min({c})",
        f"max({c})",
        f"first({c} ORDER BY e.{_ET} DESC, e.{quote(spec.event_id)} DESC) "
        f"FILTER (WHERE {c} IS NOT NULL)",
        f"count(DISTINCT {c})" if distinct else "0",
    ]
    if int_sums:
        select += [
            f"sum({c}::HUGEINT)::VARCHAR",
            f"sum({c}::HUGEINT * {c}::HUGEINT)::VARCHAR",
        ]
    rows = con.sql(f"SELECT {', '.join(select)} {join} GROUP BY p.{_PID}").fetchall()
    partials = [Partial() for _ in range(n)]
    for row in rows:
        p = partials[row[0]]
        p.count, p.min, p.max = int(row[1]), row[2], row[3]
        p.last = None if row[4] is None else (0, "", row[4])
        if distinct:
            p.distinct = set(range(int(row[5])))  # only its size is read
        if int_sums and row[6] is not None:
            p.sum, p.sumsq = int(row[6]), int(row[7])
    if summed and dtype in _FLOATS:
        i = spec.value_columns.index(column)
        m, e = f"e._fti_m{i}", f"e._fti_e{i}"
        q = (
            f"SELECT p.{_PID}, {e}, sum({m}::HUGEINT)::VARCHAR, "
            f"sum({m}::HUGEINT * {m}::HUGEINT)::VARCHAR {join} AND {m} IS NOT NULL "
            f"GROUP BY p.{_PID}, {e}"
        )
        for pid, exp, s, sq in con.sql(q).fetchall():
            if exp is None:
                continue
            p = partials[pid]
            p.sum += _shift(int(s), exp + FLOAT_SCALE)
            p.sumsq += _shift(int(sq), 2 * (exp + FLOAT_SCALE))
    return partials
