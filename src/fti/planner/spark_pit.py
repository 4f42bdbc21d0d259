"""Render a point-in-time plan (:mod:`fti.planner.pit_plan`) as one Spark SQL statement.

Same plan, semantics and output columns as :mod:`fti.planner.duckdb_pit`; Spark has no ASOF
join, so each time-aware join is a window over the union of spine rows and group rows:

* per join, spine rows ``(keys, t, seq = 2**63 - 1, side = 1)`` and group rows
  ``(keys, event_time, _fti_seq, side = 0)`` are unioned and ordered by ``(t, seq, side)``
  within each key; ``last(row, ignore nulls)`` over the rows up to the current one gives each
  spine row the greatest ``(event_time, seq)`` with ``event_time <= t`` (a group row carries
  a non-null struct, a spine row a null one, so the latest group row wins). Sorting within a key
  is all the work: no row-per-match explosion as with a range join;
* the result is joined back to the spine by its row number; the ttl nulls features whose
  chosen event time is older than ``t - ttl``, as in DuckDB;
* snapshot groups (no event time, or an untimed left side) keep their latest row per key;
* output rows come back in spine order (``ORDER BY _fti_row``).

Identifiers are validated and quoted with backticks (Spark's default dialect); values are
bound parameters (``spark.sql(text, args=[...])``); ``SparkEngine.query`` runs the statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from fti._internal.names import check_identifier, quote
from fti.definitions.query import Query
from fti.planner.pit_plan import LAST_SEQ, ROW, SEQ, JoinStep, PitPlan, PitStatement, plan_pit
from fti.planner.predicates import condition_sql, time_bounds, where_clause

__all__ = ["compile_pit_spark", "render_spark"]

_MICROSECOND = timedelta(microseconds=1)
_SQL_TYPE = {
    "bool": "BOOLEAN",
    "int8": "TINYINT",
    "int16": "SMALLINT",
    "int32": "INT",
    "int64": "BIGINT",
    "float32": "FLOAT",
    "float64": "DOUBLE",
    "string": "STRING",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
}


def _q(name: str) -> str:
    if not name.startswith("_fti_"):
        check_identifier(name)
    return quote(name, "`")


def _us(expr: str) -> str:
    return f"unix_micros({expr})"


def compile_pit_spark(
    query: Query,
    *,
    spine_columns: Sequence[str] | None,
    columns: Sequence[tuple[int, str, str]] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> PitStatement:
    """Compile the point-in-time join for Spark (arguments as in ``compile_pit``)."""
    plan = plan_pit(query, spine_columns=spine_columns, columns=columns, start=start, end=end)
    return render_spark(plan)


def render_spark(plan: PitPlan) -> PitStatement:
    """The plan as one Spark SQL statement (``known_at`` is not supported on Spark)."""
    if plan.known_at is not None:
        raise ValueError("known_at is not supported by the Spark renderer")
    tag = uuid.uuid4().hex[:10]  # temp view names unique per statement: runs may overlap
    et = plan.time
    start, end = plan.start, plan.end
    params: list[Any] = []
    group_rel = [f"_fti_g{i}_{tag}" for i in range(plan.relations)]
    spine_rel = f"_fti_spine_{tag}"
    ctes: list[str] = []
    if plan.left is not None:
        own = list(plan.left.columns)
        where = [condition_sql(c, "g", params, _q) for c in plan.left.conditions]
        cols = ", ".join(f"g.{_q(c)}" for c in own)
        if et is not None:
            where += time_bounds(f"g.{_q(et)}", start, end, params)
            ctes.append(
                f"s0 AS (SELECT {cols}, {_us(f'g.{_q(et)}')} AS _fti_t, g.{SEQ} AS {ROW} "
                f"FROM {group_rel[0]} g{where_clause(where)})"
            )
            order = f"_fti_t, {ROW}"
        else:
            keys = ", ".join(f"g.{_q(k)}" for k in plan.left.keys)
            inner = (
                f"SELECT {cols}, g.{SEQ} AS {ROW}, row_number() OVER (PARTITION BY {keys} "
                f"ORDER BY g.{SEQ} DESC) AS _fti_rn FROM {group_rel[0]} g{where_clause(where)}"
            )
            own_sql = ", ".join(_q(c) for c in own)
            ctes.append(
                f"s0 AS (SELECT {own_sql}, CAST(NULL AS BIGINT) AS _fti_t, {ROW} "
                f"FROM ({inner}) WHERE _fti_rn = 1)"
            )
            order = ROW
    else:
        if et is not None:
            bounds = time_bounds(f"s.{_q(et)}", start, end, params)
            ctes.append(
                f"s0 AS (SELECT s.*, {_us(f's.{_q(et)}')} AS _fti_t FROM {spine_rel} s"
                f"{where_clause(bounds)})"
            )
        else:
            ctes.append(f"s0 AS (SELECT s.*, CAST(NULL AS BIGINT) AS _fti_t FROM {spine_rel} s)")
        order = ROW
    prev = "s0"
    for step in plan.steps:
        ctes += _join_ctes(step, relation=group_rel[step.index], prev=prev, params=params)
        prev = f"j{step.index}"
    select = ", ".join(_q(c) for c in plan.columns)
    sql = f"WITH {', '.join(ctes)} SELECT {select} FROM {prev} ORDER BY {order}"
    return PitStatement(sql, params, list(plan.columns), spine_rel, group_rel)


def _join_ctes(step: JoinStep, *, relation: str, prev: str, params: list[Any]) -> list[str]:
    i, group, left_on, right_on, cols = (
        step.index,
        step.group,
        step.left_on,
        step.right_on,
        step.columns,
    )
    where = [condition_sql(c, "g", params, _q) for c in step.conditions]
    et = group.event_time
    if et is not None and step.timed:
        fields = [f"'e', {_us(f'g.{_q(et)}')}"]
        fields += [f"'f{n}', g.{_q(src)}" for n, (src, _out) in enumerate(cols)]
        struct_type = ", ".join(
            ["e: BIGINT"]
            + [f"f{n}: {_SQL_TYPE[group.column(src).dtype]}" for n, (src, _) in enumerate(cols)]
        )
        g_keys = [f"g.{_q(r)} AS _fti_k{n}" for n, r in enumerate(right_on)]
        s_keys = [f"s.{_q(lc)} AS _fti_k{n}" for n, lc in enumerate(left_on)]
        part = ", ".join(f"_fti_k{n}" for n in range(len(right_on)))
        g_cte = (
            f"g{i} AS (SELECT {', '.join(g_keys)}, {_us(f'g.{_q(et)}')} AS _fti_t, "
            f"g.{SEQ} AS _fti_q, 0 AS _fti_side, CAST(NULL AS BIGINT) AS _fti_r, "
            f"named_struct({', '.join(fields)}) AS _fti_v FROM {relation} g{where_clause(where)})"
        )
        u_cte = (
            f"u{i} AS (SELECT {', '.join(s_keys)}, s._fti_t AS _fti_t, "
            f"CAST({LAST_SEQ} AS BIGINT) AS _fti_q, 1 AS _fti_side, s.{ROW} AS _fti_r, "
            f"CAST(NULL AS STRUCT<{struct_type}>) AS _fti_v FROM {prev} s "
            f"UNION ALL SELECT * FROM g{i})"
        )
        w_cte = (
            f"w{i} AS (SELECT _fti_r, _fti_v FROM (SELECT _fti_r, _fti_side, "
            f"last(_fti_v, true) OVER (PARTITION BY {part} ORDER BY _fti_t, _fti_q, _fti_side "
            f"ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS _fti_v FROM u{i}) "
            f"WHERE _fti_side = 1)"
        )
        if group.ttl is not None:
            ttl_us = int(group.ttl // _MICROSECOND)
            outs = [
                f"CASE WHEN w._fti_v.e >= s._fti_t - {ttl_us} THEN w._fti_v.f{n} END AS {_q(out)}"
                for n, (_src, out) in enumerate(cols)
            ]
        else:
            outs = [f"w._fti_v.f{n} AS {_q(out)}" for n, (_src, out) in enumerate(cols)]
        j_cte = (
            f"j{i} AS (SELECT {', '.join(['s.*', *outs])} FROM {prev} s "
            f"LEFT JOIN w{i} w ON s.{ROW} = w._fti_r)"
        )
        return [g_cte, u_cte, w_cte, j_cte]
    order = (f"g.{_q(et)} DESC, " if et is not None else "") + f"g.{SEQ} DESC"
    part = ", ".join(f"g.{_q(r)}" for r in right_on)
    keys = [f"g.{_q(r)} AS _fti_k{n}" for n, r in enumerate(right_on)]
    feats = [f"g.{_q(src)} AS _fti_f{n}" for n, (src, _out) in enumerate(cols)]
    inner = (
        f"SELECT {', '.join([*keys, *feats])}, row_number() OVER (PARTITION BY {part} "
        f"ORDER BY {order}) AS _fti_rn FROM {relation} g{where_clause(where)}"
    )
    g_cte = f"g{i} AS (SELECT * FROM ({inner}) WHERE _fti_rn = 1)"
    on = " AND ".join(f"s.{_q(lc)} = g._fti_k{n}" for n, lc in enumerate(left_on))
    outs = [f"g._fti_f{n} AS {_q(out)}" for n, (_src, out) in enumerate(cols)]
    j_cte = f"j{i} AS (SELECT {', '.join(['s.*', *outs])} FROM {prev} s LEFT JOIN g{i} g ON {on})"
    return [g_cte, j_cte]
