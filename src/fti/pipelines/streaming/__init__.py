"""Streaming feature pipelines: windowed aggregations over Redis Streams / Kafka, written to a
feature group (online: latest, offline: every change), identical to their DuckDB backfill.

See ``definition`` (what a stream pipeline is), ``aggregation`` (the window states behind one
Protocol, and the DuckDB backfill), ``runtime`` (exactly-once run loop and checkpoints),
``batch`` (backfill through the same definitions) and ``pipeline`` (``@fti.stream_pipeline``
and the verbs). Imports run one way: definition <- runtime, batch <- pipeline.
"""

from fti.pipelines.streaming.pipeline import StreamPipeline, stream_pipeline
from fti.pipelines.streaming.runtime import RunReport, statuses

__all__ = ["RunReport", "StreamPipeline", "statuses", "stream_pipeline"]
