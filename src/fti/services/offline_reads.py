"""Read a feature group's offline history with DuckDB over the Delta table's Arrow dataset."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa

from fti._internal.error_translation import engine_errors
from fti._internal.frames import from_arrow
from fti._internal.lineage_events import record_input
from fti._internal.names import quote
from fti.backends.offline import SEQ
from fti.definitions.feature_group import FeatureGroupSpec
from fti.definitions.fields import arrow_type
from fti.errors import ValidationError
from fti.planner.predicates import time_bounds, where_clause
from fti.services.context import StoreContext
from fti.services.training_data import known_ns

__all__ = ["SUPERSEDED", "counts", "read"]

# In audit reads (include_superseded=True): True for a row a later ingested row of the same
# key and event time replaced. Reserved prefix: no user column can be named like this.
SUPERSEDED = "_fti_superseded"


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
        raise ValidationError(
            f"{name}={value!r} must be a timezone-aware datetime, e.g. "
            "datetime(2013, 1, 1, tzinfo=timezone.utc)."
        )
    return value


@engine_errors("reading a feature group")
def read(
    ctx: StoreContext,
    spec: FeatureGroupSpec,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    as_of: datetime | None = None,
    version: int | None = None,
    latest: bool = False,
    include_superseded: bool = False,
    known_at: datetime | None = None,
    format: str = "pandas",
) -> Any:
    """Rows with ``start <= event_time < end`` of one table version, ordered by (event time,
    ingestion order), in one of three modes (see ``fg.read``). The filters apply first, then
    the mode: ``latest=True, end=t`` is the state just before ``t``. ``known_at`` keeps only
    rows ingested at or before it (``_fti_seq <= known_at`` in UTC ns) before the mode applies,
    so every mode reads as the store knew it then."""
    cutoff = None if known_at is None else known_ns(known_at)
    _aware("start", start)
    _aware("end", end)
    _aware("as_of", as_of)
    if as_of is not None and version is not None:
        raise ValidationError("Pass either as_of= or version=, not both.")
    if latest and include_superseded:
        raise ValidationError(
            "Pass either latest=True (the current row per key) or include_superseded=True "
            "(every row ever written), not both; without either, read() returns the corrected "
            "history (one row per key and event time)."
        )
    if (start or end) and spec.event_time is None:
        raise ValidationError(
            f"Feature group {spec.name!r} has no event time, so start/end cannot filter it."
        )
    names = spec.column_names
    extra = [pa.field(SEQ, pa.int64()), pa.field(SUPERSEDED, pa.bool_())]
    if not spec.has_schema or not ctx.offline.exists(spec.key):
        empty = _schema(spec, extra if include_superseded else []).empty_table()
        return from_arrow(empty, format)
    dataset, table_version = ctx.offline.dataset(spec.key, version=version, as_of=as_of)
    record_input("feature_group", spec.name, spec.version, table_version=table_version)
    available = set(dataset.schema.names)
    select = ", ".join(
        quote(n) if n in available else f"NULL::{_duck_type(spec.column(n).dtype)} AS {quote(n)}"
        for n in names
    )
    params: list[Any] = []
    where = time_bounds(quote(spec.event_time or ""), start, end, params)
    if cutoff is not None:
        where.append(f"{quote(SEQ)} <= ?")
        params.append(cutoff)
    keys = [quote(k) for k in spec.primary_key]
    et = [quote(spec.event_time)] if spec.event_time else []
    order = ", ".join([*et, quote(SEQ)])
    # One row per (key, event time): the last ingested. Without an event time a key has one
    # "time", so the corrected history and the current state are the same row per key.
    rank = f"row_number() OVER (PARTITION BY {', '.join(keys + et)} ORDER BY {quote(SEQ)} DESC)"
    if latest:
        desc = ", ".join(f"{c} DESC" for c in [*et, quote(SEQ)])
        rank = f"row_number() OVER (PARTITION BY {', '.join(keys)} ORDER BY {desc})"
    if include_superseded:
        sql = (
            f"SELECT {select}, {quote(SEQ)}, {rank} > 1 AS {quote(SUPERSEDED)} "
            f"FROM fg{where_clause(where)} ORDER BY {order}"
        )
    else:
        sql = f"SELECT {select} FROM fg{where_clause(where)} QUALIFY {rank} = 1 ORDER BY {order}"
    con = ctx.compute.cursor()
    try:
        con.register("fg", dataset)
        table = con.sql(sql, params=params).to_arrow_table()
    finally:
        con.close()
    schema = _schema(spec, extra if include_superseded else [])
    return from_arrow(table.cast(schema) if table.schema != schema else table, format)


def counts(ctx: StoreContext, spec: FeatureGroupSpec) -> dict[str, int]:
    """Rows written, corrected-history rows (one per key and event time) and current rows (one
    per key) of the latest table version, in one scan of the key and event time columns."""
    if not spec.has_schema or not ctx.offline.exists(spec.key):
        return {"rows_written": 0, "history_rows": 0, "current_rows": 0}
    dataset, _ = ctx.offline.dataset(spec.key)
    keys = ", ".join(quote(k) for k in spec.primary_key)
    et = f", {quote(spec.event_time)}" if spec.event_time else ""
    sql = f"SELECT count(*), count(DISTINCT row({keys}{et})), count(DISTINCT row({keys})) FROM fg"
    con = ctx.compute.cursor()
    try:
        con.register("fg", dataset)
        written, history, current = con.sql(sql).fetchall()[0]
    finally:
        con.close()
    return {
        "rows_written": int(written),
        "history_rows": int(history),
        "current_rows": int(current),
    }


def _duck_type(dtype: str) -> str:
    return {
        "bool": "BOOLEAN",
        "int8": "TINYINT",
        "int16": "SMALLINT",
        "int32": "INTEGER",
        "int64": "BIGINT",
        "float32": "FLOAT",
        "float64": "DOUBLE",
        "string": "VARCHAR",
        "timestamp": "TIMESTAMPTZ",
        "date": "DATE",
    }[dtype]


def _schema(spec: FeatureGroupSpec, extra: list[pa.Field]) -> pa.Schema:
    """fti's Arrow types (DuckDB may hand back other flavours, e.g. large strings)."""
    return pa.schema([pa.field(c.name, arrow_type(c.dtype)) for c in spec.columns] + extra)
