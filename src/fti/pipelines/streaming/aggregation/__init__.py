"""Windowed aggregation of a streaming feature group: one state interface, two engines, and
the DuckDB backfill that computes the same windows in batch.

* ``state`` — ``AggregationState``, the Protocol the runtime uses, and ``Ingested``;
* ``window_state`` — ``WindowState``: per key, in Python, exact big integers, every aggregation;
* ``vector_state`` — ``VectorState``: numpy columns, one micro-batch at a time (numeric columns;
  window queries in ``vector_query``, array kernels in ``kernels``);
* ``events`` — ``Event`` / ``EventBatch`` and their rows in the events table (the replay log);
* ``decoding`` — raw records -> events, through the pipeline's row-level transformation;
* ``duckdb_backfill`` — the same windows in batch, for backfills and ``aggregates_at``.

``new_state`` chooses the engine for a spec; nothing else branches on the implementation.
"""

from __future__ import annotations

import os

from fti.definitions.aggregations import WindowSpec
from fti.pipelines.streaming.aggregation.duckdb_backfill import aggregate
from fti.pipelines.streaming.aggregation.events import Event, EventBatch
from fti.pipelines.streaming.aggregation.state import AggregationState, Ingested
from fti.pipelines.streaming.aggregation.vector_state import VectorState
from fti.pipelines.streaming.aggregation.window_state import WindowState

__all__ = [
    "AggregationState",
    "Event",
    "EventBatch",
    "Ingested",
    "VectorState",
    "WindowState",
    "aggregate",
    "new_state",
]


def new_state(spec: WindowSpec, *, watermark: int | None = None) -> AggregationState:
    """The columnar state when it supports the aggregations, else the Python one.
    ``FTI_STREAM_STATE=python`` forces the Python state (for comparisons)."""
    if VectorState.supports(spec) and os.environ.get("FTI_STREAM_STATE", "") != "python":
        return VectorState(spec, watermark=watermark)
    return WindowState(spec, watermark=watermark)
