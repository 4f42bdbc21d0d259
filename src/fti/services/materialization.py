"""Keep the online store derived from the offline table (the system of record).

Each online store records which offline table versions it holds, and a marker saying it holds
every applied version's rows (``mark_synced``). Versions it lacks — after a crash between the
offline commit and the online write — are replayed from the commit's own files; a gap that
removed rows, or a store that lost its marker (a FLUSHDB), is restored from one snapshot of the
offline table instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fti._internal.error_translation import engine_errors
from fti._internal.names import quote
from fti.backends.offline import SEQ, local_files
from fti.backends.online import ET, OnlineTable
from fti.definitions.feature_group import FeatureGroupSpec
from fti.services.context import StoreContext
from fti.services.feature_groups import online_table

if TYPE_CHECKING:
    from fti.backends.compute.duckdb import DuckDBEngine

__all__ = [
    "HEAL_LOCK_SECONDS",
    "canonical_batch",
    "catch_up",
    "latest_per_key",
    "newest_per_key",
    "online_batch",
    "rebuild",
    "upsert_chunks",
]

HEAL_LOCK_SECONDS = 30.0  # a restore's lock frees this long after its holder died

# Keys per store call: one SQLite transaction / one pipelined Redis round of scripts each, so a
# large insert is a handful of store writes, yet progress still moves.
_CHUNK = 1_000_000
_POS = "_fti_pos"

def _order(et: str, seq: str) -> str:
    """SQL for one HUGEINT that orders rows as ``(et, seq)`` does, both int64: et * 2^64 +
    (seq + 2^63), exact (a struct comparison would be several times slower)."""
    return f"({et}::HUGEINT * 18446744073709551616 + ({seq}::HUGEINT + 9223372036854775808))"


@engine_errors("reducing an online batch to the newest row per key")
def newest_per_key(engine: DuckDBEngine, batch: pa.Table, keys: Sequence[str]) -> pa.Table:
    """A canonical batch reduced to its greatest row per key by ``(_fti_et, _fti_seq)``, in key
    order: only those rows can survive in the online store, and key order keeps the store's
    B-tree writes local. Each row keeps its own ``_fti_seq``, so the store still compares it
    with what it holds (another writer's rows) exactly as before."""
    n = batch.num_rows
    if n <= 1:
        return batch
    cols = ", ".join(quote(k) for k in keys)
    with engine.cursor() as con:
        con.register("b", batch.append_column(_POS, pa.array(np.arange(n, dtype=np.int64))))
        winners = con.sql(
            f"SELECT arg_max({_POS}, {_order(ET, SEQ)}) FROM b GROUP BY {cols} ORDER BY {cols}"
        ).fetchnumpy()
    positions = next(iter(winners.values()))
    if len(positions) == n and bool(np.all(positions[1:] > positions[:-1])):
        return batch  # already one row per key, in key order
    return batch.take(pa.array(positions))


def canonical_batch(spec: FeatureGroupSpec, table: pa.Table) -> pa.Table:
    """Offline rows -> the canonical online batch (keys, _fti_et, _fti_seq, features)."""
    if spec.event_time is not None:
        et = pc.cast(table.column(spec.event_time), pa.int64())
    else:
        et = pa.chunked_array([pa.array([0] * table.num_rows, pa.int64())])
    cols = [table.column(k) for k in spec.primary_key]
    cols += [et, table.column(SEQ)]
    names = [*spec.primary_key, ET, SEQ]
    for f in spec.feature_columns:
        if f.name in table.column_names:
            cols.append(table.column(f.name))
            names.append(f.name)
    return pa.Table.from_arrays(cols, names=names)


def online_batch(engine: DuckDBEngine, spec: FeatureGroupSpec, rows: pa.Table) -> pa.Table:
    """Offline rows -> the canonical batch of their newest row per key, ready for
    ``upsert_chunks(..., reduced=True)``. Pure computation: an insert runs it while its offline
    commit is being written."""
    return newest_per_key(engine, canonical_batch(spec, rows), spec.primary_key)


def upsert_chunks(
    ctx: StoreContext,
    table: OnlineTable,
    batch: pa.Table,
    *,
    version: int | None,
    on_chunk: Callable[[int], object] | None = None,
    rows: int | None = None,
    reduced: bool = False,
) -> int:
    """Write the newest row per key of a canonical batch, in chunks of keys (so progress can be
    shown); ``version`` is marked with the last one. Returns the number of keys that changed.

    ``on_chunk`` is called with a share of the input rows (``rows``, default the batch's) per
    chunk, summing to all of them. ``reduced``: the batch is already ``online_batch``'s output.
    """
    rows = batch.num_rows if rows is None else rows
    if not reduced:
        batch = newest_per_key(ctx.compute, batch, table.key_names)
    changed = 0
    n = batch.num_rows
    if n == 0:
        if version is not None:
            ctx.online.mark_applied(table, [version])
        return 0
    reported = 0
    for start in range(0, n, _CHUNK):
        last = start + _CHUNK >= n
        chunk = batch.slice(start, _CHUNK)
        changed += ctx.online.upsert(table, chunk, version=version if last else None)
        if on_chunk is not None:
            share = rows if last else rows * (start + chunk.num_rows) // n
            on_chunk(share - reported)
            reported = share
    return changed


def _local_parquet(ctx: StoreContext, spec: FeatureGroupSpec, dataset: object) -> str | None:
    """``read_parquet([...])`` over the dataset's files if they are local, else None."""
    paths = local_files(ctx.offline, spec.key, dataset)
    if paths is None:
        return None
    quoted = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
    return f"read_parquet([{quoted}], union_by_name = true)"


@engine_errors("computing the latest row per key")
def latest_per_key(ctx: StoreContext, spec: FeatureGroupSpec, dataset: object) -> pa.Table:
    """The greatest row per key by (event time, ingestion order), computed out of core, in
    key order. A dataset of local files is scanned by DuckDB's Parquet reader.

    Two hash passes instead of a window sort (several times faster on millions of rows): the
    greatest order per key, then the rows that carry it. A tie — equal event time and ingestion
    order, which only writers that reserved overlapping sequences could produce — keeps one row.
    """
    keys = ", ".join(quote(k) for k in spec.primary_key)

    def order(alias: str) -> str:
        et = f"epoch_us({alias}{quote(spec.event_time)})" if spec.event_time else "0"
        return _order(et, f"{alias}{quote(SEQ)}")

    on = " AND ".join(f"fg.{quote(k)} = w.{quote(k)}" for k in spec.primary_key)
    con = ctx.compute.cursor()
    try:
        source = _local_parquet(ctx, spec, dataset)
        if source is not None:
            con.execute(f"CREATE TEMP VIEW fg AS SELECT * FROM {source}")
            names = getattr(dataset, "schema", pa.schema([])).names
            if not set(names) <= set(con.sql("SELECT * FROM fg LIMIT 0").columns):
                # A column declared after the last write is in no file: the dataset has it.
                con.execute("DROP VIEW fg")
                source = None
        if source is None:
            con.register("fg", dataset)
        return con.sql(
            f"WITH w AS (SELECT {keys}, max({order('')}) AS o FROM fg GROUP BY {keys}) "
            f"SELECT DISTINCT ON ({keys}) fg.* FROM fg SEMI JOIN w "
            f"ON {on} AND {order('fg.')} = w.o ORDER BY {keys}"
        ).to_arrow_table()
    finally:
        con.close()


def rebuild(ctx: StoreContext, spec: FeatureGroupSpec, *, drop: bool = True) -> int:
    """Rebuild the online table from the offline table; returns the number of keys written.

    ``drop=False`` restores lost keys in place (newer wins, so rows written meanwhile stay)."""
    table = online_table(spec)
    with ThreadPoolExecutor(1, thread_name_prefix="fti-rebuild") as pool:
        # The drop (on Redis a scan of the keyspace: ~2 s for 1M keys) runs while DuckDB
        # computes the latest rows; the writes start once both are done.
        dropped = pool.submit(ctx.online.drop, table) if drop else None
        dataset, version = ctx.offline.dataset(spec.key)
        latest = latest_per_key(ctx, spec, dataset)
        if dropped is not None:
            dropped.result()
    ctx.online.ensure_table(table)
    upsert_chunks(ctx, table, canonical_batch(spec, latest), version=None, reduced=True)
    ctx.online.mark_applied(table, range(version + 1))
    ctx.online.mark_synced(table)
    return int(latest.num_rows)


def catch_up(ctx: StoreContext, spec: FeatureGroupSpec, *, upto: int | None = None) -> list[int]:
    """Apply offline versions the online store lacks (<= ``upto``); returns those versions."""
    if not spec.online or not spec.has_schema or not ctx.offline.exists(spec.key):
        return []
    table = online_table(spec)
    upto = ctx.offline.version(spec.key) if upto is None else upto
    applied = ctx.online.applied_versions(table)
    missing = [v for v in range(upto + 1) if v not in applied]
    if ctx.online.holds(table):
        # Also when nothing is missing: a column added to the registry by a writer that stopped
        # before altering the online table is added here (stores skip a definition they
        # checked). Only after the marker check: on SQLite it would recreate a dropped table.
        ctx.online.ensure_table(table)
        if missing:
            _replay(ctx, spec, table, missing)
        return missing
    # No marker: a new table, or a store that lost its data. One process restores it, under
    # a lock; the others leave it to that one (readers answer "not ready" until it is done).
    with ctx.online.exclusive(table, seconds=HEAL_LOCK_SECONDS) as mine:
        if not mine or ctx.online.holds(table):
            return []
        ctx.online.ensure_table(table)
        if upto <= 1 or set(missing) <= {0}:
            # A new table (its creation and first insert), or every version applied but the
            # creation (which adds no rows): the applied marks, which live with the data, say
            # the rows are all there.
            if _replay(ctx, spec, table, missing):
                ctx.online.mark_synced(table)
        else:
            # Lost: restore the latest row per key in one pass, so a reader that hits a key
            # meanwhile reads its final value (replaying commit by commit would show older
            # rows on the way).
            rebuild(ctx, spec, drop=False)
    return missing


def _replay(
    ctx: StoreContext, spec: FeatureGroupSpec, table: OnlineTable, versions: list[int]
) -> bool:
    """Apply the rows of each version; False if one could not be replayed and a full
    rebuild (which sets the marker) ran instead."""
    for v in versions:
        added = ctx.offline.added_rows(spec.key, v)
        if added is None:  # the commit removed rows, or its files are gone: rebuild everything
            rebuild(ctx, spec)
            return False
        upsert_chunks(ctx, table, canonical_batch(spec, added), version=v)
    return True
