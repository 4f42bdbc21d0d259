"""Complete the rows of a partial insert (``fg.insert(df, partial=True)``) from stored rows.

A partial insert carries the keys, the event time and some feature columns. Each of its rows
takes, for every feature column it lacks, the value of the key's greatest stored row at or
before its event time by (event time, ingestion order) — the value a point-in-time read at
that time gives — or null if the key has no such row. Without an event time that is the key's
last ingested row. Rows of the same insert do not fill each other: they all read the table as
it was before the insert. The completed rows are full width and written like any insert, so
the online store keeps its newer-wins rule (a partial row older than the online row changes
nothing online). "Stored" means the latest table version when the insert starts: rows another
writer commits while it runs are not seen, as with any read-then-write.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from fti._internal.names import quote
from fti.backends.offline import SEQ
from fti.definitions.feature_group import FeatureGroupSpec
from fti.services.context import StoreContext

__all__ = ["complete_rows"]

_ROW = "_fti_row"


def complete_rows(
    ctx: StoreContext, spec: FeatureGroupSpec, table: pa.Table, missing: Sequence[str]
) -> pa.Table:
    """``table`` (normalized, null in the ``missing`` columns) with those columns filled from
    the stored rows, in one DuckDB statement; row order and Arrow types are kept."""
    if not missing or table.num_rows == 0 or not ctx.offline.exists(spec.key):
        return table
    dataset, _ = ctx.offline.dataset(spec.key)
    stored_names = set(dataset.schema.names)
    fill = [c for c in missing if c in stored_names]  # a column no file has yet stays null
    if not fill:
        return table
    keys = [quote(k) for k in spec.primary_key]
    et = quote(spec.event_time) if spec.event_time else None
    part = ", ".join(keys + ([et] if et else []))
    stored = (
        f"SELECT {', '.join(keys + ([et] if et else []) + [quote(c) for c in fill])} FROM fg "
        f"QUALIFY row_number() OVER (PARTITION BY {part} ORDER BY {quote(SEQ)} DESC) = 1"
    )
    on = " AND ".join(f"n.{k} = s.{k}" for k in keys)
    if et is not None:
        # ASOF: the stored row with the greatest event time <= the new row's; stored ties on
        # (key, event time) were resolved to the last ingested above.
        join = f"ASOF LEFT JOIN s ON {on} AND n.{et} >= s.{et}"
    else:
        join = f"LEFT JOIN s ON {on}"
    filled = set(fill)
    select = ", ".join(
        f"s.{quote(c)} AS {quote(c)}" if c in filled else f"n.{quote(c)}"
        for c in table.column_names
    )
    numbered = table.append_column(_ROW, pa.array(np.arange(table.num_rows, dtype=np.int64)))
    sql = f"WITH s AS ({stored}) SELECT {select} FROM n {join} ORDER BY n.{quote(_ROW)}"
    con = ctx.compute.cursor()
    try:
        con.register("fg", dataset)
        con.register("n", numbered)
        out = con.sql(sql).to_arrow_table()
    finally:
        con.close()
    return out.cast(table.schema) if out.schema != table.schema else out
