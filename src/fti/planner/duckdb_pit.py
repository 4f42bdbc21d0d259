"""Compile a query (and optional spine) to ONE point-in-time-correct DuckDB SQL statement.

For a spine row with key ``k`` and time ``t`` and a feature group ``G``: the chosen row is the
greatest by ``(event_time, _fti_seq)`` among G's rows with key ``k`` and ``event_time <= t``
(and ``event_time >= t - ttl`` if G has a ttl); none -> nulls. How the SQL gets there:

* each row gets an order key ``o = {t: epoch_us(event_time), s: _fti_seq}`` (a struct, which
  sorts lexicographically) and each spine row ``o = {t: epoch_us(t), s: 2**63 - 1}``; an
  ``ASOF LEFT JOIN ... ON keys AND s.o >= g.o`` then picks exactly the greatest
  ``(event_time, seq)`` with ``event_time <= t`` — corrections (same key and time, inserted
  later) win without a de-duplication pass;
* the ttl is a post-filter: features are nulled when the matched ``event_time < t - ttl``
  (the greatest qualifying row is too old iff every qualifying row is);
* snapshot groups (no event time) keep their latest row per key and join by key;
* keys are compared column by column, so (1, "23") and (12, "3") never collide;
* spine order comes from a row-number column, duplicates and unknown keys are kept.

All comparisons run on int64 microseconds since the epoch (UTC). DuckDB scans the Delta tables'
Arrow datasets lazily, so tables are never loaded into Python.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from fti._internal.names import quote
from fti.definitions.feature_group import FeatureGroupSpec
from fti.definitions.query import Condition, Query

__all__ = ["ROW", "SEQ", "PitStatement", "compile_pit", "run_pit"]

SEQ = "_fti_seq"
ROW = "_fti_row"  # spine position (int64), added by the caller to a user spine
_SPINE_SEQ = "9223372036854775807"  # 2**63 - 1: after every real seq at the same time
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class PitStatement:
    """The SQL text, its bound parameters and the output column names in order."""

    sql: str
    params: list[Any]
    columns: list[str]
    spine_relation: str
    group_relations: list[str]


def _ord(time_expr: str, seq_expr: str) -> str:
    # A struct compares lexicographically, so one ASOF inequality orders by (time, seq).
    return f"{{'t': epoch_us({time_expr}), 's': ({seq_expr})::BIGINT}}"


def _condition_sql(cond: Condition, alias: str, params: list[Any]) -> str:
    column = f"{alias}.{quote(cond.column)}"
    if cond.op == "is_null":
        return f"{column} IS NULL"
    if cond.op == "not_null":
        return f"{column} IS NOT NULL"
    if cond.op == "in":
        values = list(cond.value)
        if not values:
            return "FALSE"
        params.extend(values)
        return f"{column} IN ({', '.join('?' for _ in values)})"
    op = "=" if cond.op == "==" else cond.op
    params.append(cond.value)
    return f"{column} {op} ?"


def _time_bounds(
    column: str, start: datetime | None, end: datetime | None, params: list[Any]
) -> list[str]:
    out = []
    if start is not None:
        out.append(f"{column} >= ?")
        params.append(start)
    if end is not None:
        out.append(f"{column} < ?")
        params.append(end)
    return out


def compile_pit(
    query: Query,
    *,
    spine_columns: Sequence[str] | None,
    extra_left: Sequence[str] = (),
    start: datetime | None = None,
    end: datetime | None = None,
) -> PitStatement:
    """Compile the point-in-time join.

    ``spine_columns``: the columns of the spine relation (which must hold ``_fti_row``, the left
    group's keys and, if it has one, its event time as timestamp[us, UTC]); None means the left
    group's own rows are the spine. ``extra_left``: further left-group columns to return (e.g.
    labels) unless the spine has them. ``start``/``end`` bound the spine's time,
    ``start <= t < end``.
    """
    left = query.left.group
    et = left.event_time
    params: list[Any] = []
    group_rel = [f"_fti_g{i}" for i in range(len(query.selections))]
    spine_rel = "_fti_spine"
    features = query.feature_columns()
    by_group: dict[int, list[tuple[str, str]]] = {}
    for i, src, out in features:
        by_group.setdefault(i, []).append((src, out))
    ctes: list[str] = []
    if spine_columns is None:
        # The left group's rows are the spine; its features come from the row itself.
        own = [*query.entity_columns()]
        own += [c for c in (*query.left.features, *extra_left) if c not in own]
        where = [_condition_sql(c, "g", params) for c in _conditions(query, 0)]
        cols = ", ".join(f"g.{quote(c)}" for c in own)
        if et is not None:
            where += _time_bounds(f"g.{quote(et)}", start, end, params)
            head = (
                f"SELECT {cols}, {_ord(f'g.{quote(et)}', _SPINE_SEQ)} AS _fti_o, "
                f"epoch_us(g.{quote(et)}) AS _fti_t, g.{SEQ} AS {ROW} FROM {group_rel[0]} g"
            )
            order = f"_fti_t, {ROW}"
        else:
            head = f"SELECT {cols}, NULL::BIGINT AS _fti_t, g.{SEQ} AS {ROW} FROM {group_rel[0]} g"
            where_sql = f" WHERE {' AND '.join(where)}" if where else ""
            keys = ", ".join(f"g.{quote(k)}" for k in left.primary_key)
            head += (
                f"{where_sql} QUALIFY row_number() OVER (PARTITION BY {keys} "
                f"ORDER BY g.{SEQ} DESC) = 1"
            )
            where = []
            order = ROW
        if where:
            head += f" WHERE {' AND '.join(where)}"
        ctes.append(f"s0 AS ({head})")
        out_cols = own
        first_joined = 1
    else:
        present = set(spine_columns)
        if et is not None:
            bounds = _time_bounds(f"s.{quote(et)}", start, end, params)
            where_sql = f" WHERE {' AND '.join(bounds)}" if bounds else ""
            ctes.append(
                f"s0 AS (SELECT s.*, {_ord(f's.{quote(et)}', _SPINE_SEQ)} AS _fti_o, "
                f"epoch_us(s.{quote(et)}) AS _fti_t FROM {spine_rel} s{where_sql})"
            )
        else:
            ctes.append(f"s0 AS (SELECT s.*, NULL::BIGINT AS _fti_t FROM {spine_rel} s)")
        out_cols = [c for c in spine_columns if c != ROW]
        # Left group columns the spine does not carry come from its point-in-time row.
        wanted = [c for c in query.entity_columns() if c not in present]
        wanted += [c for c, _ in by_group.get(0, []) if c not in wanted]
        wanted += [c for c in extra_left if c not in present and c not in wanted]
        by_group[0] = [(c, c) for c in wanted]
        out_cols += [c for c in wanted if c not in out_cols]
        order = ROW
        first_joined = 0
    joins = [(0, left, tuple(left.primary_key), tuple(left.primary_key))]
    joins += [
        (i, j.selection.group, j.left_on, j.right_on) for i, j in enumerate(query.joins, start=1)
    ]
    prev = "s0"
    for i, group, left_on, right_on in joins:
        if i < first_joined:
            continue
        picked = by_group.get(i, [])
        ctes += _join_ctes(
            query,
            i,
            group,
            left_on,
            right_on,
            picked,
            relation=group_rel[i],
            prev=prev,
            params=params,
            timed=et is not None,
        )
        prev = f"j{i}"
        out_cols += [out for _, out in picked if out not in out_cols]
    select = ", ".join(quote(c) for c in out_cols)
    sql = f"WITH {', '.join(ctes)} SELECT {select} FROM {prev} ORDER BY {order}"
    return PitStatement(sql, params, out_cols, spine_rel, group_rel)


def _conditions(query: Query, index: int) -> list[Condition]:
    return [c for c in query.filters if query.resolve_condition(c) == index]


def _join_ctes(
    query: Query,
    i: int,
    group: FeatureGroupSpec,
    left_on: Sequence[str],
    right_on: Sequence[str],
    cols: list[tuple[str, str]],
    *,
    relation: str,
    prev: str,
    params: list[Any],
    timed: bool,
) -> list[str]:
    here = f"j{i}"
    keys = [f"g.{quote(r)} AS _fti_k{n}" for n, r in enumerate(right_on)]
    feats = [f"g.{quote(src)} AS _fti_f{n}" for n, (src, _out) in enumerate(cols)]
    where = [_condition_sql(c, "g", params) for c in _conditions(query, i)]
    where_sql = f" WHERE {' AND '.join(where)}" if where else ""
    on = " AND ".join(f"s.{quote(lc)} = g._fti_k{n}" for n, lc in enumerate(left_on))
    et = group.event_time
    if et is not None and timed:
        inner = ", ".join(
            [
                *keys,
                f"{_ord(f'g.{quote(et)}', f'g.{SEQ}')} AS _fti_o",
                f"epoch_us(g.{quote(et)}) AS _fti_et",
                *feats,
            ]
        )
        g_cte = f"g{i} AS (SELECT {inner} FROM {relation} g{where_sql})"
        if group.ttl is not None:
            ttl_us = group.ttl // _MICROSECOND
            outs = [
                f"CASE WHEN g._fti_et >= s._fti_t - {int(ttl_us)} THEN g._fti_f{n} END "
                f"AS {quote(out)}"
                for n, (_src, out) in enumerate(cols)
            ]
        else:
            outs = [f"g._fti_f{n} AS {quote(out)}" for n, (_src, out) in enumerate(cols)]
        join = f"ASOF LEFT JOIN g{i} g ON {on} AND s._fti_o >= g._fti_o"
    else:
        order = (f"g.{quote(et)} DESC, " if et is not None else "") + f"g.{SEQ} DESC"
        part = ", ".join(f"g.{quote(r)}" for r in right_on)
        inner = ", ".join([*keys, *feats])
        g_cte = (
            f"g{i} AS (SELECT {inner} FROM {relation} g{where_sql} QUALIFY row_number() OVER "
            f"(PARTITION BY {part} ORDER BY {order}) = 1)"
        )
        outs = [f"g._fti_f{n} AS {quote(out)}" for n, (_src, out) in enumerate(cols)]
        join = f"LEFT JOIN g{i} g ON {on}"
    select = ", ".join(["s.*", *outs])
    return [g_cte, f"{here} AS (SELECT {select} FROM {prev} s {join})"]


_ROOT: duckdb.DuckDBPyConnection | None = None
_ROOT_LOCK = threading.Lock()


def _cursor() -> duckdb.DuckDBPyConnection:
    """A fresh connection to one in-process DuckDB database (opening a database is slow)."""
    global _ROOT
    with _ROOT_LOCK:
        if _ROOT is None:
            _ROOT = duckdb.connect()
        return _ROOT.cursor()


def run_pit(
    statement: PitStatement,
    *,
    spine: pa.Table | None,
    groups: Sequence[ds.Dataset | pa.Table],
) -> pa.Table:
    """Execute a compiled statement over the spine and one relation per selection."""
    con = _cursor()
    try:
        con.execute("SET TimeZone = 'UTC'")
        if spine is not None:
            con.register(statement.spine_relation, spine)
        for name, relation in zip(statement.group_relations, groups, strict=True):
            con.register(name, relation)
        result: pa.Table = con.sql(statement.sql, params=statement.params).to_arrow_table()
        return result
    finally:
        con.close()
