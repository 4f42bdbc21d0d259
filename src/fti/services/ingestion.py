"""Insert a frame into a feature group: validate, commit offline, then update online."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from fti._internal.frames import to_arrow
from fti._internal.lineage_events import record_output
from fti._internal.progress import step_progress
from fti.backends.offline import SEQ
from fti.definitions.feature_group import FeatureGroupSpec
from fti.errors import ConflictError
from fti.services import compaction, feature_groups, materialization, profiles, validation
from fti.services.context import StoreContext
from fti.services.frame_validation import (
    check_column_names,
    infer_columns,
    missing_features,
    normalize_frame,
)
from fti.services.partial_rows import complete_rows
from fti.services.validation import ValidationReport

__all__ = ["InsertReport", "commit_staged", "insert", "next_sequence", "stage_online"]

_seq_lock = threading.Lock()
_last_seq = 0


def next_sequence(n: int) -> int:
    """Reserve ``n`` ingestion sequence numbers; returns the first.

    Sequences are wall-clock nanoseconds, made strictly increasing within the process, so a
    later insert (also from a later process on this clock) orders after an earlier one.
    """
    global _last_seq
    with _seq_lock:
        base = max(time.time_ns(), _last_seq + 1)
        _last_seq = base + max(n, 1) - 1
        return base


@dataclass(frozen=True)
class InsertReport:
    """What an insert did."""

    feature_group: str
    version: int
    rows: int
    offline_version: int | None
    online_rows_changed: int  # keys whose online row changed (the newest row per key is written)
    seconds: float
    message: str = ""
    compaction: compaction.CompactionReport | None = None  # the insert passed the file threshold
    validation: ValidationReport | None = None

    def __str__(self) -> str:
        checked = "" if self.validation is None else f"\n{self.validation}"
        if self.message:
            return self.message + checked
        online = (
            f", {self.online_rows_changed} online rows changed" if self.online_rows_changed else ""
        )
        compacted = "" if self.compaction is None else f"; {self.compaction}"
        return (
            f"Inserted {self.rows} rows into {self.feature_group} v{self.version} "
            f"(offline table version {self.offline_version}{online}) in {self.seconds:.3f}s"
            f"{compacted}"
            + checked
        )


def _ensure_schema(ctx: StoreContext, spec: FeatureGroupSpec, table: pa.Table) -> FeatureGroupSpec:
    """Infer missing columns from the frame and store them (compare-and-set, retried)."""
    for _ in range(5):
        columns = infer_columns(spec, table)
        if columns == spec.columns:
            return spec
        try:
            return feature_groups.set_columns(ctx, spec, columns, reason="schema_inferred")
        except ConflictError:
            spec = feature_groups.get_spec(ctx, spec.name, spec.version)
    raise ConflictError(f"Schema of feature group {spec.name!r} keeps changing; retry the insert.")


def _normalized(
    ctx: StoreContext, spec: FeatureGroupSpec, table: pa.Table, *, partial: bool = False
) -> tuple[pa.Table, FeatureGroupSpec]:
    """Validate a non-empty frame (inferring and storing a missing schema), complete the rows
    of a partial insert from the stored ones, and stamp each row with its ingestion order."""
    if spec.has_schema and not set(table.column_names) <= set(spec.column_names):
        # Columns this definition lacks may have been added by another process since it was
        # read (long-lived stream writers): ask the registry once, on the mismatch only.
        spec = feature_groups.get_spec(ctx, spec.name, spec.version)
    if not spec.has_schema or any(
        c not in spec.column_names for c in (*spec.primary_key, spec.event_time) if c
    ):
        # Validate the frame against the inferred schema before storing that schema.
        trial = spec.with_columns(infer_columns(spec, table))
        normalize_frame(trial, table, partial=partial)
        spec = _ensure_schema(ctx, spec, table)
    normalized = normalize_frame(spec, table, partial=partial)
    if partial:
        normalized = complete_rows(ctx, spec, normalized, missing_features(spec, table))
    n = normalized.num_rows
    base = next_sequence(n)
    normalized = normalized.append_column(
        pa.field(SEQ, pa.int64()), pa.array(np.arange(base, base + n, dtype=np.int64))
    )
    return normalized, spec


def insert(
    ctx: StoreContext, spec: FeatureGroupSpec, data: Any, *, partial: bool = False
) -> tuple[InsertReport, FeatureGroupSpec]:
    """Validate and write ``data``. Returns the report and the (possibly updated) spec.

    A frame must carry every feature column unless ``partial``: then the missing ones keep
    their stored values (see ``partial_rows``) and full rows are written."""
    started = time.perf_counter()
    table = to_arrow(data, what=f"the insert into {spec.name!r}")
    check_column_names(table, spec.name)
    if table.num_rows == 0:
        # An empty frame carries no values to type-check (pandas makes its columns float64).
        message = (
            f"Nothing to insert into {spec.name} v{spec.version}: the frame is empty. "
            "Nothing was written."
        )
        elapsed = time.perf_counter() - started
        return InsertReport(spec.name, spec.version, 0, None, 0, elapsed, message=message), spec
    normalized, spec = _normalized(ctx, spec, table, partial=partial)
    checked = validation.check(ctx, spec, normalized)  # may raise (reject) or set rows aside
    normalized = checked.rows
    n = normalized.num_rows
    if n == 0:  # every row was quarantined: nothing to commit
        checked.finish(ctx, spec, None)
        elapsed = time.perf_counter() - started
        message = f"Every row of the insert into {spec.name} v{spec.version} was quarantined."
        return InsertReport(
            spec.name, spec.version, 0, None, 0, elapsed, message, validation=checked.report
        ), spec
    total = n * (2 if spec.online else 1)
    with step_progress(f"Inserting into {spec.name} v{spec.version}", total) as progress:
        if spec.online:
            # Before the offline commit: an online table that cannot be made (a clash with a
            # table of another name) fails the insert with nothing written, instead of leaving
            # a commit the online store can never apply (and a group that no longer opens).
            ctx.online.ensure_table(feature_groups.online_table(spec))
        with ThreadPoolExecutor(2, thread_name_prefix="fti-insert") as pool:
            # The newest row per key and the commit's profile are computed while the offline
            # commit is written; the rows reach the online store only after that commit.
            pending: Future[pa.Table] | None = None
            if spec.online:
                pending = pool.submit(materialization.online_batch, ctx.compute, spec, normalized)
            profiled = pool.submit(profiles.prepare, spec, normalized)
            ctx.offline.create(spec.key, feature_groups.offline_schema(spec))
            version = ctx.offline.append(spec.key, normalized, metadata=checked.metadata)
            checked.finish(ctx, spec, version)
            record_output("feature_group", spec.name, spec.version, table_version=version)
            progress.advance(n, description=f"Writing {spec.name} v{spec.version} online")
            changed = 0
            if pending is not None:
                if ctx.online.gil_per_row:
                    # The profile's sketch updates hold the GIL, and an SQLite upsert gives it
                    # up for every row: run together, the upsert waits for the GIL a million
                    # times (10M rows: 12.4 s in all instead of 9). So it starts when they are
                    # done (a failed profile is raised below, after the online write).
                    wait([profiled])
                changed = materialization.upsert_chunks(
                    ctx,
                    feature_groups.online_table(spec),
                    pending.result(),
                    version=version,
                    on_chunk=progress.advance,
                    rows=n,
                    reduced=True,
                )
                materialization.catch_up(ctx, spec, upto=version)
            # After the online write (freshness first); a crash before it is healed lazily.
            profiles.record(ctx, spec, normalized, version, prepared=profiled.result())
    compacted = compaction.auto_compact(ctx, spec)
    report = InsertReport(
        spec.name,
        spec.version,
        n,
        version,
        changed,
        time.perf_counter() - started,
        compaction=compacted,
        validation=checked.report,
    )
    return report, spec


def stage_online(
    ctx: StoreContext, spec: FeatureGroupSpec, data: pa.Table
) -> tuple[pa.Table, int, FeatureGroupSpec]:
    """The online half of an insert, for streams: validate, stamp the ingestion order and
    upsert into the online store now; returns the stamped rows for ``commit_staged``.

    Until they are committed offline the online store is ahead of the offline table; a crash
    in between loses only rows a stream replays from its checkpoint (the same rows again).
    """
    check_column_names(data, spec.name)
    if data.num_rows == 0:
        return data, 0, spec
    normalized, spec = _normalized(ctx, spec, data)
    # A micro-batch is checked like an insert; its quarantined rows are kept at once (a
    # replayed batch is checked again), and its report has no table version yet.
    checked = validation.check(ctx, spec, normalized, staged=True)
    normalized = checked.rows
    checked.finish(ctx, spec, None)
    changed = 0
    if spec.online and normalized.num_rows:
        table_def = feature_groups.online_table(spec)
        ctx.online.ensure_table(table_def)
        changed = ctx.online.upsert(
            table_def, materialization.canonical_batch(spec, normalized), version=None
        )
    return normalized, changed, spec


def commit_staged(
    ctx: StoreContext, spec: FeatureGroupSpec, staged: list[pa.Table]
) -> InsertReport:
    """Append staged rows offline in one commit. The online store already holds them (with the
    same ingestion order), so that version is only marked as applied there."""
    started = time.perf_counter()
    tables = [t for t in staged if t.num_rows]
    if not tables:
        return InsertReport(spec.name, spec.version, 0, None, 0, 0.0, message="Nothing staged.")
    # Batches staged before and after a column was added differ in columns: the older ones
    # get it as null.
    rows = pa.concat_tables(tables, promote_options="default")
    ctx.offline.create(spec.key, feature_groups.offline_schema(spec))
    version = ctx.offline.append(spec.key, rows)
    profiles.record(ctx, spec, rows, version)
    record_output("feature_group", spec.name, spec.version, table_version=version)
    if spec.online:
        ctx.online.mark_applied(feature_groups.online_table(spec), [version])
        materialization.catch_up(ctx, spec, upto=version)
    compacted = compaction.auto_compact(ctx, spec)
    elapsed = time.perf_counter() - started
    return InsertReport(
        spec.name, spec.version, rows.num_rows, version, 0, elapsed, compaction=compacted
    )
