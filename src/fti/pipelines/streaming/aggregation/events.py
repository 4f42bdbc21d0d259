"""Decoded events in the two shapes the states take, and their rows in the events table.

An ``Event`` is one decoded record (key tuple, event time in µs, event id, value-column values);
an ``EventBatch`` holds many as numpy columns. Both turn into rows of the pipeline's events
table (the replay log a restarted stream reloads) and back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fti.definitions.aggregations import WindowSpec
from fti.definitions.fields import arrow_type
from fti.pipelines.streaming.aggregation.kernels import typed_array

__all__ = ["FLOATS", "Event", "EventBatch", "batch_table", "events_from_table", "events_table"]

FLOATS = {"float32", "float64"}


@dataclass(frozen=True, slots=True)
class Event:
    """One decoded event: key tuple, event time (µs), id, and values of the value columns."""

    key: tuple[Any, ...]
    et: int
    eid: Any
    values: tuple[Any, ...]


@dataclass
class EventBatch:
    """Decoded events as columns: key tuples, times (µs), ids, values and not-null masks."""

    keys: list[tuple[Any, ...]]
    et: np.ndarray
    eids: list[Any]
    values: list[np.ndarray]
    valid: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.eids)

    def take(self, idx: np.ndarray) -> EventBatch:
        ix = idx.tolist()
        return EventBatch(
            [self.keys[i] for i in ix],
            self.et[idx],
            [self.eids[i] for i in ix],
            [v[idx] for v in self.values],
            [m[idx] for m in self.valid],
        )

    @classmethod
    def from_events(cls, spec: WindowSpec, events: Sequence[Event]) -> EventBatch:
        values, valid = [], []
        for ci, c in enumerate(spec.value_columns):
            raw = [e.values[ci] for e in events]
            ok = np.fromiter((v is not None for v in raw), bool, len(raw))
            dtype = np.float64 if spec.columns[c] in FLOATS else np.int64
            arr = np.fromiter((0 if v is None else v for v in raw), dtype, len(raw))
            values.append(arr)
            valid.append(ok)
        et = np.fromiter((e.et for e in events), np.int64, len(events))
        return cls([e.key for e in events], et, [e.eid for e in events], values, valid)

    @classmethod
    def from_table(cls, spec: WindowSpec, table: pa.Table) -> EventBatch:
        """From an events table (key, event time, id and value columns; any extra ignored)."""
        key_cols = [table.column(k).to_pylist() for k in spec.keys]
        keys = list(zip(*key_cols, strict=True)) if key_cols else []
        et_col = table.column(spec.event_time)
        if not pa.types.is_integer(et_col.type):
            et_col = pc.cast(pc.cast(et_col, arrow_type("timestamp")), pa.int64())
        et = et_col.to_numpy().astype(np.int64, copy=False)
        values, valid = [], []
        for c in spec.value_columns:
            col = table.column(c)
            if pa.types.is_timestamp(col.type) or pa.types.is_boolean(col.type):
                col = pc.cast(col, pa.int64())
            ok = pc.is_valid(col).to_numpy(zero_copy_only=False)
            dtype = np.float64 if spec.columns[c] in FLOATS else np.int64
            arr = pc.fill_null(col, 0).to_numpy(zero_copy_only=False).astype(dtype, copy=False)
            values.append(arr)
            valid.append(np.asarray(ok, dtype=bool))
        return cls(keys, et, table.column(spec.event_id).to_pylist(), values, valid)

    def to_events(self) -> list[Event]:
        vals = [
            [x if ok else None for x, ok in zip(v.tolist(), m.tolist(), strict=True)]
            for v, m in zip(self.values, self.valid, strict=True)
        ]
        ets = self.et.tolist()
        return [
            Event(self.keys[i], ets[i], self.eids[i], tuple(col[i] for col in vals))
            for i in range(len(ets))
        ]


def batch_table(spec: WindowSpec, batches: Sequence[EventBatch]) -> pa.Table:
    """The events table rows (id, keys, event time, value columns) of some batches."""
    cols = spec.columns
    names = [spec.event_id, *spec.keys, spec.event_time, *spec.value_columns]
    types = [arrow_type(cols[c]) for c in (spec.event_id, *spec.keys)]
    tables = []
    for b in batches:
        arrays = [pa.array(b.eids, types[0])]
        if len(spec.keys) == 1:
            arrays.append(pa.array([k for (k,) in b.keys], types[1]))
        else:
            for i in range(len(spec.keys)):
                arrays.append(pa.array([key[i] for key in b.keys], types[1 + i]))
        arrays.append(pa.array(b.et, pa.int64()).cast(arrow_type("timestamp")))
        for ci, c in enumerate(spec.value_columns):
            arrays.append(typed_array(b.values[ci], ~b.valid[ci], arrow_type(cols[c])))
        tables.append(pa.Table.from_arrays(arrays, names=names))
    if not tables:
        schema = pa.schema(
            [
                (c, arrow_type(cols[c]) if c != spec.event_time else arrow_type("timestamp"))
                for c in names
            ]
        )
        return schema.empty_table()
    return pa.concat_tables(tables)


def events_table(spec: WindowSpec, events: Sequence[Event]) -> pa.Table:
    """The events table rows (id, keys, event time, value columns) of some events."""
    cols = spec.columns
    arrays = [pa.array([e.eid for e in events], arrow_type(cols[spec.event_id]))]
    names = [spec.event_id]
    for i, k in enumerate(spec.keys):
        arrays.append(pa.array([e.key[i] for e in events], arrow_type(cols[k])))
        names.append(k)
    ts = pa.array([e.et for e in events], pa.int64()).cast(arrow_type("timestamp"))
    arrays.append(ts)
    names.append(spec.event_time)
    for i, c in enumerate(spec.value_columns):
        values = [e.values[i] for e in events]
        if cols[c] == "timestamp":
            arrays.append(pa.array(values, pa.int64()).cast(arrow_type("timestamp")))
        else:
            arrays.append(pa.array(values, arrow_type(cols[c])))
        names.append(c)
    return pa.Table.from_arrays(arrays, names=names)


def events_from_table(spec: WindowSpec, table: pa.Table) -> list[Event]:
    """Rows of the events table (or any frame with the event columns) -> Events, in order."""
    et = pc.cast(table.column(spec.event_time), pa.int64()).to_pylist()
    eid = table.column(spec.event_id).to_pylist()
    keys = [table.column(k).to_pylist() for k in spec.keys]
    values = []
    for c in spec.value_columns:
        col = table.column(c)
        if spec.columns[c] == "timestamp":
            col = pc.cast(col, pa.int64())
        values.append(col.to_pylist())
    return [
        Event(tuple(k[i] for k in keys), et[i], eid[i], tuple(v[i] for v in values))
        for i in range(len(et))
    ]
