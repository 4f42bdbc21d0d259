"""``@fti.stream_pipeline``: declare a streaming feature pipeline (source, transformation,
windowed aggregations, target feature group)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from fti.definitions.aggregations import Aggregation, WindowSpec
from fti.errors import ValidationError
from fti.pipelines.streaming.aggregation.vector_state import EventBatch
from fti.pipelines.streaming.aggregation.window_state import Event

if TYPE_CHECKING:
    from fti.backends.streams import StreamSource
    from fti.handles.feature_group import FeatureGroup
    from fti.store import FeatureStore

__all__ = ["StreamPipeline", "decode_batch", "decode_event", "stream_pipeline", "to_micros"]

Transform = Callable[[dict[str, Any]], Mapping[str, Any] | None]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TRUE = {"1", "true", "t", "yes", "y"}
_FALSE = {"0", "false", "f", "no", "n"}


def to_micros(value: Any) -> int:
    """An event time as int µs since the epoch: aware datetime, ISO-8601 string with an offset
    (or ``Z``), or an int (already µs)."""
    if isinstance(value, bool):
        raise ValidationError(f"Event time {value!r} is a bool, not a time.")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if value.lstrip("-").isdigit():
            return int(value)
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValidationError(
                f"Event time {value.isoformat()!r} has no timezone. Send an offset, e.g. "
                "'2024-01-01T00:00:00+00:00' or '...Z', or epoch microseconds."
            )
        return (value - _EPOCH) // timedelta(microseconds=1)
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        return to_micros(value.to_pydatetime())
    raise ValidationError(f"Event time {value!r} is not a datetime, ISO string or int µs.")


def _decode(dtype: str, value: Any, column: str) -> Any:
    if value is None or value == "":
        return None
    if dtype.startswith("int"):
        return int(value)
    if dtype.startswith("float"):
        f = float(value)
        if not math.isfinite(f):
            raise ValidationError(f"Column {column!r} is {f}; only finite numbers aggregate.")
        # Round like the stored column, so the stream and the backfill see the same value.
        return float(np.float32(f)) if dtype == "float32" else f
    if dtype == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ValidationError(f"Column {column!r}: {value!r} is not a bool.")
    if dtype == "string":
        return str(value)
    if dtype == "timestamp":
        return to_micros(value)
    raise ValidationError(f"Column {column!r} has dtype {dtype}, which streams do not decode.")


def _column(values: list[Any], dtype: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Decode one column of many records at once, as ``_decode`` would: (values, not-null),
    or None when some value needs the per-record path (it decides validity there)."""
    vals = [None if v == "" else v for v in values] if "" in values else values
    try:
        arr = pa.array(vals)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    kind = arr.type
    ok = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    try:
        if dtype == "timestamp":
            if pa.types.is_string(kind):
                arr = arr.cast(pa.timestamp("us", "UTC")).cast(pa.int64())
            elif not pa.types.is_int64(kind):
                return None
            out = arr.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        elif dtype.startswith("int"):
            if not (pa.types.is_string(kind) or pa.types.is_int64(kind)):
                return None
            out = arr.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        elif dtype.startswith("float"):
            if not (pa.types.is_string(kind) or pa.types.is_int64(kind) or kind == pa.float64()):
                return None
            out = arr.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
            if not np.isfinite(out).all():
                return None
            if dtype == "float32":
                out = out.astype(np.float32).astype(np.float64)
        elif dtype == "bool" and pa.types.is_boolean(kind):
            out = arr.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        else:
            return None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    return np.asarray(out), ok


def decode_batch(spec: WindowSpec, rows: Sequence[Mapping[str, Any]]) -> EventBatch | None:
    """Decode many records column by column (Arrow casts instead of per-value Python), with
    the same results as ``decode_event`` on each; None when some record needs that path
    (a missing key, id or time, a value Arrow does not parse the same way)."""
    cols = spec.columns
    key_cols = []
    for k in (*spec.keys, spec.event_id):
        vals = [r.get(k) for r in rows]
        if cols[k] == "string":
            if set(map(type, vals)) != {str} or "" in vals:
                return None  # a non-string or empty key: decided record by record
        elif cols[k].startswith("int"):
            decoded = _column(vals, "int64")
            if decoded is None or not decoded[1].all():
                return None
            vals = decoded[0].tolist()
        else:
            return None
        key_cols.append(vals)
    times = [r.get(spec.event_time) for r in rows]
    if None in times:
        return None
    et = _column(times, "timestamp")
    if et is None or not et[1].all():
        return None
    values, valid = [], []
    for c in spec.value_columns:
        decoded = _column([r.get(c) for r in rows], cols[c])
        if decoded is None:
            return None
        values.append(decoded[0])
        valid.append(decoded[1])
    keys = list(zip(*key_cols[:-1], strict=True))
    return EventBatch(keys, et[0], key_cols[-1], values, valid)


def decode_event(spec: WindowSpec, fields: Mapping[str, Any]) -> Event:
    """Raw fields (strings from Redis, JSON values from Kafka) -> a typed ``Event``."""
    cols = spec.columns
    key = []
    for k in spec.keys:
        v = _decode(cols[k], fields.get(k), k)
        if v is None:
            raise ValidationError(f"Event has no key column {k!r}: {dict(fields)!r}.")
        key.append(v)
    if fields.get(spec.event_time) in (None, ""):
        raise ValidationError(f"Event has no event time {spec.event_time!r}: {dict(fields)!r}.")
    et = to_micros(fields[spec.event_time])
    eid = _decode(cols[spec.event_id], fields.get(spec.event_id), spec.event_id)
    if eid is None:
        raise ValidationError(f"Event has no id {spec.event_id!r}: {dict(fields)!r}.")
    values = tuple(_decode(cols[c], fields.get(c), c) for c in spec.value_columns)
    return Event(tuple(key), et, eid, values)


@dataclass
class StreamPipeline:
    """A streaming feature pipeline. Build one with ``@fti.stream_pipeline(...)``."""

    name: str
    spec: WindowSpec
    version: int = 1
    source: StreamSource | Callable[[], StreamSource] | None = None
    transform: Transform | None = None
    online: bool = True
    ttl: timedelta | None = None
    description: str = ""
    batch_size: int = 5_000
    max_delay: timedelta = timedelta(milliseconds=100)
    checkpoint_interval: timedelta = timedelta(seconds=1)

    @property
    def checkpoint_name(self) -> str:
        """The registry record of this pipeline version's progress."""
        return f"{self.name}_v{self.version}"

    @property
    def events_name(self) -> str:
        """The feature group holding the deduplicated raw events (the replay log)."""
        return f"{self.name}_events"

    def feature_group(self, fs: FeatureStore) -> FeatureGroup:
        """The aggregate feature group (created on first use)."""
        return fs.feature_group(
            self.name,
            version=self.version,
            primary_key=list(self.spec.keys),
            event_time=self.spec.event_time,
            online=self.online,
            ttl=self.ttl,
            description=self.description or f"streaming aggregates of {self.name}",
            features={
                **{k: self.spec.columns[k] for k in self.spec.keys},
                self.spec.event_time: "timestamp",
                **self.spec.feature_dtypes(),
            },
        )

    def events_group(self, fs: FeatureStore) -> FeatureGroup:
        """The offline feature group of accepted events, keyed by event id (a name fti
        generates: users cannot create groups ending in ``_events``)."""
        from fti.definitions.feature_group import normalize_features
        from fti.handles import feature_group as handle
        from fti.services import feature_groups
        from fti.store import context_of

        s = self.spec
        ctx = context_of(fs)
        spec = feature_groups.get_or_create(
            ctx,
            self.events_name,
            version=self.version,
            primary_key=[s.event_id],
            event_time=s.event_time,
            online=False,
            ttl=feature_groups._UNSET,
            description=f"deduplicated events consumed by stream pipeline {self.name}",
            features=normalize_features(
                {
                    s.event_id: s.columns[s.event_id],
                    **{k: s.columns[k] for k in s.keys},
                    s.event_time: "timestamp",
                    **{c: s.columns[c] for c in s.value_columns},
                }
            ),
            generated=True,
        )
        return handle.FeatureGroup(ctx, spec)

    def prepare(self, fields: Mapping[str, Any]) -> Event | None:
        """Apply the row-level transformation, then decode; None if the transform drops it."""
        if self.transform is not None:
            out = self.transform(dict(fields))
            if out is None:
                return None
            fields = out
        return decode_event(self.spec, fields)

    def prepare_batch(self, records: Sequence[Mapping[str, Any]]) -> tuple[EventBatch, int]:
        """``prepare`` for many records: (the decoded events, how many were invalid). Columnar
        when every value decodes that way, else record by record."""
        rows: list[Mapping[str, Any]] = []
        invalid = 0
        transform = self.transform
        for fields in records:
            if transform is None:
                rows.append(fields)
                continue
            try:
                out = transform(dict(fields))
            except (ValueError, TypeError):
                invalid += 1
                continue
            if out is not None:
                rows.append(out)
        batch = decode_batch(self.spec, rows) if rows else None
        if batch is not None:
            return batch, invalid
        events = []
        for fields in rows:
            try:
                events.append(decode_event(self.spec, fields))
            except (ValueError, TypeError):
                invalid += 1
        return EventBatch.from_events(self.spec, events), invalid

    def open_source(self) -> StreamSource:
        if self.source is None:
            raise ValidationError(
                f"Stream pipeline {self.name!r} has no source. Pass source= to "
                "@fti.stream_pipeline or to run()."
            )
        return self.source() if callable(self.source) else self.source

    def run(self, fs: FeatureStore, **kwargs: Any) -> Any:
        """Consume the source until stopped (SIGTERM/SIGINT) or a limit is hit.

        >>> transactions.run(fs, idle_timeout=5)                             # doctest: +SKIP
        """
        from fti.pipelines.streaming.runtime import run

        return run(self, fs, **kwargs)

    def aggregates_at(self, fs: FeatureStore, spine: Any, *, format: str = "pandas") -> Any:
        """Every aggregate strictly as of each spine row's time ``t`` (window ``(t - w, t]``,
        so windows expire between events), computed in DuckDB from the events table.

        ``spine`` holds the key columns and the event-time column. One row per spine row, in
        order. The stored rows instead hold the values as of each key's last event <= t.

        >>> card_activity.aggregates_at(fs, spine_df)                         # doctest: +SKIP
        """
        from fti._internal.frames import from_arrow, to_arrow
        from fti.pipelines.streaming.aggregation.duckdb_backfill import aggregate

        points = to_arrow(spine, what=f"the spine of {self.name!r}")
        events = self.events_group(fs).read(format="arrow")
        return from_arrow(aggregate(self.spec, events, points), format)

    def backfill(self, fs: FeatureStore, events: Any = None, **kwargs: Any) -> Any:
        """Compute the aggregates in batch (DuckDB) over historical events and write them.

        >>> transactions.backfill(fs, pd.read_parquet("history.parquet"))     # doctest: +SKIP
        """
        from fti.pipelines.streaming.batch import backfill

        return backfill(self, fs, events, **kwargs)


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
