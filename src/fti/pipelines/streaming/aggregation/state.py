"""The one interface of a stream's aggregation state, which both engines implement.

``WindowState`` (per key, in Python, exact big integers; every aggregation and column type)
and ``VectorState`` (numpy columns, per micro-batch; numeric columns) emit the same rows for
the same events; ``new_state`` picks one for a spec. The runtime sees only this Protocol:

* ``ingest`` turns one micro-batch of raw records into the accepted events (rows of the events
  table, checkpointed later) and the aggregate rows to write;
* ``restore`` reloads checkpointed events after a restart;
* ``watermark`` is what a checkpoint stores, ``horizon`` how far back a restore must read.

``admit`` and ``emit`` are the same step for already decoded ``Event`` objects (what the
property tests drive against a plain-Python oracle).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import pyarrow as pa

from fti.definitions.aggregations import WindowSpec
from fti.pipelines.streaming.aggregation.decoding import Transform
from fti.pipelines.streaming.aggregation.events import Event

__all__ = ["AggregationState", "Ingested"]


@dataclass(frozen=True)
class Ingested:
    """What one micro-batch did: the accepted events (events-table rows), the aggregate rows
    to write (new and corrected), and how many records were duplicates, late or invalid."""

    events: pa.Table
    rows: pa.Table
    duplicates: int
    late: int
    invalid: int

    @property
    def accepted(self) -> int:
        """Events applied to the state."""
        return int(self.events.num_rows)


@runtime_checkable
class AggregationState(Protocol):
    """Exact sliding-window state of one streaming feature group."""

    spec: WindowSpec

    @property
    def watermark(self) -> int | None:
        """The greatest event time accepted (checkpointed by the runtime)."""
        ...

    @property
    def horizon(self) -> int | None:
        """Events at or below this time are no longer needed by any future emission."""
        ...

    @property
    def size(self) -> int:
        """Events held."""
        ...

    def ingest(self, records: Sequence[Mapping[str, Any]], transform: Transform | None) -> Ingested:
        """Transform and decode raw records, drop duplicates and late events, apply the rest
        and return the rows to write. Undecodable records are counted, not raised."""
        ...

    def restore(self, events: pa.Table) -> int:
        """Reload checkpointed events-table rows (no late check; duplicates by id dropped);
        returns how many were loaded."""
        ...

    def admit(self, events: Iterable[Event]) -> tuple[list[Event], int, int]:
        """Apply decoded events in delivery order; returns (accepted, duplicates, late)."""
        ...

    def emit(self, accepted: list[Event]) -> pa.Table:
        """The feature rows to write for the events admitted since the last ``emit``."""
        ...
