"""``@fti.stream_pipeline``: declare a streaming feature pipeline (source, transformation,
windowed aggregations, target feature group)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from fti._internal.frames import from_arrow, to_arrow
from fti.definitions.aggregations import Aggregation, WindowSpec
from fti.errors import ValidationError
from fti.pipelines.streaming import batch, runtime
from fti.pipelines.streaming.aggregation import aggregate
from fti.pipelines.streaming.aggregation.decoding import Transform
from fti.pipelines.streaming.definition import StreamDefinition
from fti.store import context_of

if TYPE_CHECKING:
    from fti.backends.streams import StreamSource
    from fti.store import FeatureStore

__all__ = ["StreamPipeline", "stream_pipeline"]


@dataclass
class StreamPipeline(StreamDefinition):
    """A streaming feature pipeline. Build one with ``@fti.stream_pipeline(...)``."""

    def run(self, fs: FeatureStore, **kwargs: Any) -> runtime.RunReport:
        """Consume the source until stopped (SIGTERM/SIGINT) or a limit is hit.

        >>> transactions.run(fs, idle_timeout=5)                             # doctest: +SKIP
        """
        return runtime.run(self, fs, **kwargs)

    def aggregates_at(self, fs: FeatureStore, spine: Any, *, format: str = "pandas") -> Any:
        """Every aggregate strictly as of each spine row's time ``t`` (window ``(t - w, t]``,
        so windows expire between events), computed in DuckDB from the events table.

        ``spine`` holds the key columns and the event-time column. One row per spine row, in
        order. The stored rows instead hold the values as of each key's last event <= t.

        >>> card_activity.aggregates_at(fs, spine_df)                         # doctest: +SKIP
        """
        points = to_arrow(spine, what=f"the spine of {self.name!r}")
        events = self.events_group(fs).read(format="arrow")
        engine = context_of(fs).compute
        return from_arrow(aggregate(self.spec, events, points, engine=engine), format)

    def backfill(self, fs: FeatureStore, events: Any = None, **kwargs: Any) -> batch.BackfillResult:
        """Compute the aggregates in batch (DuckDB) over historical events and write them.

        >>> transactions.backfill(fs, pd.read_parquet("history.parquet"))     # doctest: +SKIP
        """
        return batch.backfill(self, fs, events, **kwargs)


def stream_pipeline(
    *,
    feature_group: str,
    key: Sequence[str],
    event_time: str,
    event_id: str,
    schema: Mapping[str, str],
    aggregations: Sequence[Aggregation],
    source: StreamSource | Callable[[], StreamSource] | None = None,
    version: int = 1,
    allowed_lateness: timedelta = timedelta(0),
    online: bool = True,
    ttl: timedelta | None = None,
    description: str = "",
    batch_size: int = 5_000,
    max_delay: timedelta = timedelta(milliseconds=100),
    checkpoint_interval: timedelta = timedelta(seconds=1),
) -> Callable[[Transform], StreamPipeline]:
    """Declare a streaming feature pipeline; the decorated function is its row-level
    transformation (it gets the raw record as a dict and returns a dict, or None to drop it).

    >>> @fti.stream_pipeline(
    ...     feature_group="card_activity", key=["card_id"], event_time="ts", event_id="tx_id",
    ...     schema={"card_id": "string", "tx_id": "string", "ts": "timestamp",
    ...             "amount": "float64"},
    ...     aggregations=[fti.Aggregation("amount", "sum", window=timedelta(hours=1))],
    ...     source=RedisStreamSource(stream="transactions"))
    ... def card_activity(event):
    ...     return event                                                     # doctest: +SKIP
    """
    columns = {str(k): str(v) for k, v in schema.items()}
    for name in (*key, event_time, event_id):
        if name not in columns:
            raise ValidationError(f"Column {name!r} is missing from schema={columns!r}.")
    if columns[event_time] != "timestamp":
        raise ValidationError(f"schema[{event_time!r}] must be 'timestamp'.")
    if not (columns[event_id] == "string" or columns[event_id].startswith("int")):
        raise ValidationError(f"schema[{event_id!r}] must be 'string' or an int dtype.")
    if batch_size < 1:
        raise ValidationError(f"The 'batch_size' parameter must be >= 1. Got {batch_size}.")
    spec = WindowSpec(
        keys=tuple(key),
        event_time=event_time,
        event_id=event_id,
        aggregations=tuple(aggregations),
        columns=columns,
        allowed_lateness=allowed_lateness,
    )

    def wrap(fn: Transform) -> StreamPipeline:
        p = StreamPipeline(
            name=feature_group,
            spec=spec,
            version=version,
            source=source,
            transform=fn,
            online=online,
            ttl=ttl,
            description=description or (fn.__doc__ or "").strip(),
            batch_size=batch_size,
            max_delay=max_delay,
            checkpoint_interval=checkpoint_interval,
        )
        p.__doc__ = fn.__doc__
        return p

    return wrap
