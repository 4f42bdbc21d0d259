"""Read a feature group's offline history with DuckDB over the Delta table's Arrow dataset."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
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

__all__ = ["read"]


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
    format: str = "pandas",
) -> Any:
    """Rows with ``start <= event_time < end``, ordered by (event time, ingestion order)."""
    _aware("start", start)
    _aware("end", end)
    _aware("as_of", as_of)
    if as_of is not None and version is not None:
        raise ValidationError("Pass either as_of= or version=, not both.")
    if (start or end) and spec.event_time is None:
        raise ValidationError(
            f"Feature group {spec.name!r} has no event time, so start/end cannot filter it."
        )
    names = spec.column_names
    if not spec.has_schema or not ctx.offline.exists(spec.key):
        empty = pa.schema([pa.field(c.name, arrow_type(c.dtype)) for c in spec.columns])
        return from_arrow(empty.empty_table(), format)
    dataset, table_version = ctx.offline.dataset(spec.key, version=version, as_of=as_of)
    record_input("feature_group", spec.name, spec.version, table_version=table_version)
    available = set(dataset.schema.names)
    select = ", ".join(
        quote(n) if n in available else f"NULL::{_duck_type(spec.column(n).dtype)} AS {quote(n)}"
        for n in names
    )
    params: list[Any] = []
    where = time_bounds(quote(spec.event_time or ""), start, end, params)
    order = ([quote(spec.event_time)] if spec.event_time else []) + [quote(SEQ)]
    sql = f"SELECT {select} FROM fg{where_clause(where)} ORDER BY {', '.join(order)}"
    con = duckdb.connect()
    try:
        con.register("fg", dataset)
        table = con.sql(sql, params=params).to_arrow_table()
    finally:
        con.close()
    return from_arrow(_restore_types(spec, table), format)


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


def _restore_types(spec: FeatureGroupSpec, table: pa.Table) -> pa.Table:
    """DuckDB may hand back other Arrow flavours (e.g. large strings); cast to fti's types."""
    schema = pa.schema([pa.field(c.name, arrow_type(c.dtype)) for c in spec.columns])
    return table.cast(schema) if table.schema != schema else table
