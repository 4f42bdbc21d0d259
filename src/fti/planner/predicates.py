"""SQL predicates shared by the DuckDB and Spark planners: filters and time bounds.

Values are always bound parameters (``?``); column names go through the dialect's ``quote``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from fti.definitions.query import Condition, Query

__all__ = ["condition_sql", "group_conditions", "time_bounds", "where_clause"]


def condition_sql(
    cond: Condition, alias: str, params: list[Any], quote: Callable[[str], str]
) -> str:
    """One filter as SQL over ``alias``; its values are appended to ``params``."""
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


def time_bounds(
    column: str, start: datetime | None, end: datetime | None, params: list[Any]
) -> list[str]:
    """``start <= column < end`` (either bound may be None) as SQL terms."""
    out = []
    if start is not None:
        out.append(f"{column} >= ?")
        params.append(start)
    if end is not None:
        out.append(f"{column} < ?")
        params.append(end)
    return out


def group_conditions(query: Query, index: int) -> list[Condition]:
    """The filters of the query that apply to its ``index``-th selection."""
    return [c for c in query.filters if query.resolve_condition(c) == index]


def where_clause(terms: Sequence[str]) -> str:
    """`` WHERE a AND b`` or the empty string."""
    return f" WHERE {' AND '.join(terms)}" if terms else ""
