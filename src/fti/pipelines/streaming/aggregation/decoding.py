"""Raw stream records -> typed events: the pipeline's row-level transformation, then decoding
by the window spec's column types, record by record or column by column (the same results)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from fti.definitions.aggregations import WindowSpec
from fti.errors import ValidationError
from fti.pipelines.streaming.aggregation.events import Event, EventBatch

__all__ = [
    "Transform",
    "decode_batch",
    "decode_event",
    "prepare_batch",
    "prepare_event",
    "to_micros",
]

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


def prepare_event(
    spec: WindowSpec, transform: Transform | None, fields: Mapping[str, Any]
) -> Event | None:
    """Apply the row-level transformation, then decode; None if the transform drops it."""
    if transform is not None:
        out = transform(dict(fields))
        if out is None:
            return None
        fields = out
    return decode_event(spec, fields)


def prepare_batch(
    spec: WindowSpec, transform: Transform | None, records: Sequence[Mapping[str, Any]]
) -> tuple[EventBatch, int]:
    """``prepare_event`` for many records: (the decoded events, how many were invalid).
    Columnar when every value decodes that way, else record by record."""
    rows: list[Mapping[str, Any]] = []
    invalid = 0
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
    batch = decode_batch(spec, rows) if rows else None
    if batch is not None:
        return batch, invalid
    events = []
    for fields in rows:
        try:
            events.append(decode_event(spec, fields))
        except (ValueError, TypeError):
            invalid += 1
    return EventBatch.from_events(spec, events), invalid
