"""Streaming feature pipelines: windowed aggregations over Redis Streams / Kafka, written to a
feature group (online: latest, offline: every change), identical to their DuckDB backfill.

See ``pipeline`` (declaration), ``state`` (exact window state), ``runtime`` (exactly-once run
loop and checkpoints) and ``batch`` (backfill through the same definitions).
"""

from fti.pipelines.streaming.pipeline import StreamPipeline, stream_pipeline
from fti.pipelines.streaming.runtime import RunReport, statuses

__all__ = ["RunReport", "StreamPipeline", "statuses", "stream_pipeline"]
