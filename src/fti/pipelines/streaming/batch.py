"""Backfill a streaming feature group from historical events, with the same definitions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from fti._internal.frames import to_arrow
from fti.errors import ValidationError
from fti.pipelines.streaming.aggregation import aggregate
from fti.pipelines.streaming.aggregation.events import events_table
from fti.pipelines.streaming.definition import StreamDefinition
from fti.store import context_of

if TYPE_CHECKING:
    from fti.services.ingestion import InsertReport
    from fti.store import FeatureStore

__all__ = ["BackfillResult", "backfill", "prepare_events"]


@dataclass(frozen=True)
class BackfillResult:
    """The computed aggregate rows and the insert that wrote them (None if not written)."""

    rows: pa.Table
    insert: InsertReport | None

    def __str__(self) -> str:
        return f"Backfilled {self.rows.num_rows} aggregate rows" + (
            f": {self.insert}" if self.insert else " (not written)"
        )


def prepare_events(pipeline: StreamDefinition, data: Any) -> pa.Table:
    """Raw historical records (any frame) -> typed events, through the pipeline's row-level
    transformation and the same decoding the stream applies. Undecodable rows raise."""
    table = to_arrow(data, what=f"the backfill of {pipeline.name!r}")
    events = []
    for i, row in enumerate(table.to_pylist()):
        try:
            ev = pipeline.prepare(row)
        except (ValueError, TypeError) as e:
            raise ValidationError(f"Backfill row {i} of {pipeline.name!r} is invalid: {e}") from e
        if ev is not None:
            events.append(ev)
    return events_table(pipeline.spec, events)


def backfill(
    pipeline: StreamDefinition,
    fs: FeatureStore,
    events: Any = None,
    *,
    write: bool = True,
) -> BackfillResult:
    """Aggregate ``events`` (a frame of raw records; default: the pipeline's own events table,
    deduplicated) in DuckDB and insert the rows into the feature group.

    The rows are exactly those the stream emits for the same events (one per key and distinct
    event time). A backfill does not seed a running stream's state.
    """
    if events is None:
        table = pipeline.events_group(fs).read(format="arrow")
    else:
        table = prepare_events(pipeline, events)
    rows = aggregate(pipeline.spec, table, engine=context_of(fs).compute)
    report = pipeline.feature_group(fs).insert(rows) if write and rows.num_rows else None
    return BackfillResult(rows, report)
