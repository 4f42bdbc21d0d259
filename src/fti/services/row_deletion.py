"""Delete rows by key from the offline table, then repair the online rows of those keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import pyarrow as pa

from fti._internal.error_translation import engine_errors
from fti._internal.names import quote
from fti.definitions.feature_group import FeatureGroupSpec
from fti.definitions.fields import arrow_type
from fti.errors import ValidationError
from fti.services import materialization
from fti.services.context import StoreContext
from fti.services.feature_groups import online_table
from fti.services.online_lookup import OnlineReader

__all__ = ["delete_keys"]


def _literal(value: Any, dtype: str, column: str) -> str:
    if dtype.startswith("int") and isinstance(value, int) and not isinstance(value, bool):
        return str(int(value))
    if dtype == "string" and isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if dtype == "bool" and isinstance(value, bool):
        return "true" if value else "false"
    if dtype == "date" and isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    raise ValidationError(
        f"Cannot delete by key column {column!r} ({dtype}) with value {value!r}: pass a "
        f"{dtype} value (deleting by timestamp keys is not supported)."
    )


@engine_errors("deleting rows")
def delete_keys(
    ctx: StoreContext, spec: FeatureGroupSpec, entities: Sequence[Mapping[str, Any]]
) -> int:
    """Delete every row of the given keys; returns the number of offline rows deleted."""
    if not entities or not spec.has_schema or not ctx.offline.exists(spec.key):
        return 0
    reader = OnlineReader(ctx, spec)
    keys = [reader.encode_key(e) for e in entities]  # validates names and types
    dtypes = {c.name: c.dtype for c in spec.columns}
    clauses = []
    for e in entities:
        parts = [f"{quote(k)} = {_literal(e[k], dtypes[k], k)}" for k in spec.primary_key]
        clauses.append("(" + " AND ".join(parts) + ")")
    version, deleted = ctx.offline.delete(spec.key, " OR ".join(clauses))
    if spec.online:
        table = online_table(spec)
        ctx.online.delete(table, keys)
        dataset, _ = ctx.offline.dataset(spec.key, version=version)
        wanted = pa.table(
            {k: pa.array([e[k] for e in entities], arrow_type(dtypes[k])) for k in spec.primary_key}
        )
        on = " AND ".join(f"fg.{quote(k)} = w.{quote(k)}" for k in spec.primary_key)
        with ctx.compute.cursor() as con:
            con.register("fg_all", dataset)
            con.register("w", wanted)
            rows = con.sql(f"SELECT fg.* FROM fg_all fg SEMI JOIN w ON {on}").to_arrow_table()
        remaining = materialization.latest_per_key(ctx, spec, rows)
        materialization.upsert_chunks(
            ctx, table, materialization.canonical_batch(spec, remaining), version=version
        )
    return deleted
