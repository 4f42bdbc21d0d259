"""The columnar (numpy) stream state: the same exact windows as ``WindowState``, per batch.

``WindowState`` does its work event by event in Python. This state keeps every retained event
in flat numpy arrays sorted by ``(key id, event time, event id)`` and handles a micro-batch
with a fixed number of vectorised passes, so its cost per event does not grow with the number
of aggregations. The emitted rows are the same (``tests/unit/test_aggregations.py`` runs both
states against the plain-Python oracle).

Representation (``n`` retained events):

* ``kid, et, ex`` (int64): key id (keys are numbered on first sight), event time (µs), and the
  index of the event id in a Python list; a key's events are one contiguous *segment*;
* per value column ``val`` (int64 for int/bool/timestamp columns, float64 for floats) and
  ``ok`` (not null);
* rebuilt after each batch's inserts, O(n) each: prefix sums of the non-null count, of the
  value and of its square (a window's count/sum/sum of squares is a difference of two prefixes,
  exact in int64 — guarded, see below); a forward fill of the last non-null position
  (``last``); and for ``min``/``max`` a block decomposition: the extreme of each block of 32
  events and a sparse table over those, so a range is two lookups for its whole blocks plus a
  masked 32-wide reduction for each of its two edge blocks.

Per batch: ids are checked against the ids seen (duplicates), lateness against the running
watermark (vectorised), the accepted events are sorted and inserted with ``np.insert`` at
positions found by a binary search inside each key's segment (all keys at once), and the rows
to emit are found exactly as ``WindowState`` does: every accepted event's own ``(key, time)``,
plus, for an event inserted before newer events of its key, every distinct time of that key in
``[t, t + max window)``. Each row's window bounds are two more segment searches.

Float sums are exact too: each value ``M * 2**e`` (53-bit ``M``) is kept as the integer
``M * 2**(e - base)`` (``base``: the smallest exponent seen) split into signed 31-bit limbs, one
int64 column per limb with its own prefix sums; a window's limb differences are recombined into
one Python integer per emitted row and divided once (correctly rounded, like ``finalize``).

Limits (``VectorState.supports``): numeric value columns only, no ``count_distinct``, no
``stddev`` of float columns (those stay in ``WindowState``'s big integers). Integer sums are
exact while ``n * max|x|**2 < 2**62``, float sums while the values span at most 12 limbs (about
300 binary orders of magnitude); beyond either, the state converts itself into a
``WindowState`` holding the same events, once.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fti.definitions.aggregations import Partial, WindowSpec, finalize
from fti.definitions.fields import arrow_type
from fti.pipelines.streaming.aggregation.window_state import Event, WindowState

__all__ = ["EventBatch", "VectorState", "batch_table", "new_state"]

_INTS = {"int8", "int16", "int32", "int64", "bool", "timestamp"}
_FLOATS = {"float32", "float64"}
_BLOCK = 32
_I64_MIN = np.iinfo(np.int64).min
_I64_MAX = np.iinfo(np.int64).max
_GUARD = 1 << 62
_LIMB = 31  # bits per limb of an exact float sum
_MAX_LIMBS = 12  # values spanning more binary orders of magnitude use the big-integer state


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
            dtype = np.float64 if spec.columns[c] in _FLOATS else np.int64
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
            dtype = np.float64 if spec.columns[c] in _FLOATS else np.int64
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
            arrays.append(_typed(b.values[ci], ~b.valid[ci], arrow_type(cols[c])))
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


def new_state(spec: WindowSpec, *, watermark: int | None = None) -> VectorState | WindowState:
    """The columnar state when it supports the aggregations, else the Python one.
    ``FTI_STREAM_STATE=python`` forces the Python state (for comparisons)."""
    if VectorState.supports(spec) and os.environ.get("FTI_STREAM_STATE", "") != "python":
        return VectorState(spec, watermark=watermark)
    return WindowState(spec, watermark=watermark)


class _Extremes:
    """Range min or max over a fixed array: per-block extremes and a sparse table over them
    for the whole blocks of a range, masked 32-wide reductions for its two edge blocks."""

    def __init__(self, values: np.ndarray, op: np.ufunc, fill: Any) -> None:
        n = len(values)
        nb = max(1, -(-n // _BLOCK))
        padded = np.full(nb * _BLOCK, fill, dtype=values.dtype)
        padded[:n] = values
        self.op, self.fill = op, fill
        self.padded = padded
        table = [op.reduce(padded.reshape(nb, _BLOCK), axis=1)]
        width = 1
        while 2 * width <= nb:
            prev = table[-1]
            table.append(op(prev[: len(prev) - width], prev[width:]))
            width *= 2
        self.table = table

    def _within(self, block: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """The extreme over ``[lo, hi)`` clipped to one block per query."""
        idx = (block * _BLOCK)[:, None] + np.arange(_BLOCK)
        inside = (idx >= lo[:, None]) & (idx < hi[:, None])
        out: np.ndarray = self.op.reduce(np.where(inside, self.padded[idx], self.fill), axis=1)
        return out

    def query(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """The extreme over ``[lo, hi)`` per pair (``hi > lo``)."""
        if not len(lo):
            return np.empty(0, dtype=self.padded.dtype)
        bl, bh = lo // _BLOCK, (hi - 1) // _BLOCK
        out = self._within(bl, lo, hi)  # the first block's part (all of it if bl == bh)
        diff = np.flatnonzero(bl != bh)
        if len(diff):
            d_hi, b = hi[diff], bh[diff]
            res = self.op(out[diff], self._within(b, b * _BLOCK, d_hi))  # the last block's
            a = bl[diff] + 1  # whole blocks [a, b)
            inner = b > a
            if inner.any():
                ia, ib = a[inner], b[inner]
                k = np.floor(np.log2(ib - ia)).astype(np.int64)
                part = np.empty(len(ia), dtype=res.dtype)
                for level in np.unique(k).tolist():
                    sel = k == level
                    row = self.table[level]
                    part[sel] = self.op(row[ia[sel]], row[ib[sel] - (1 << level)])
                res[inner] = self.op(res[inner], part)
            out[diff] = res
        return out


class VectorState:
    """Exact sliding-window state of one streaming feature group, in numpy columns."""

    def __init__(self, spec: WindowSpec, *, watermark: int | None = None) -> None:
        self.spec = spec
        self._fallback: WindowState | None = None
        self._watermark = watermark
        cols = spec.value_columns
        self._columns = cols
        self._float = [spec.columns[c] in _FLOATS for c in cols]
        fns = {c: {a.fn for a in spec.aggregations if a.column == c} for c in cols}
        self._summed = [bool(fns[c] & {"sum", "mean", "stddev"}) for c in cols]
        self._squared = ["stddev" in fns[c] for c in cols]
        self._need_max = ["max" in fns[c] for c in cols]
        self._need_min = ["min" in fns[c] for c in cols]
        self._need_last = ["last" in fns[c] for c in cols]
        groups: dict[tuple[int, int, int], list[int]] = {}
        for i, a in enumerate(spec.aggregations):
            groups.setdefault((cols.index(a.column), a.window_us, a.hop_us), []).append(i)
        self._groups = groups
        self._dtypes = spec.feature_dtypes()
        self._kid_of: dict[tuple[Any, ...], int] = {}
        self._key_list: list[tuple[Any, ...]] = []
        # Event id -> its number, and back. Dicts of str/int only are not tracked by the
        # garbage collector (a list of a million ids would be scanned at every full collection).
        self._seen: dict[Any, int] = {}
        self._eids: dict[int, Any] = {}
        self._next_ex = 0
        self.kid = np.empty(0, np.int64)
        self.et = np.empty(0, np.int64)
        self.ex = np.empty(0, np.int64)
        self.val = [np.empty(0, np.float64 if f else np.int64) for f in self._float]
        self.ok = [np.empty(0, bool) for _ in cols]
        self._max_abs = [0] * len(cols)
        # Float columns that are summed: the binary exponent range seen (values = M * 2**e).
        self._emin: list[int | None] = [None] * len(cols)
        self._emax: list[int | None] = [None] * len(cols)
        # Their values as signed 31-bit limbs of M * 2**(e - base), per event (kept in step with
        # the other columns; recomputed only when the base or the number of limbs changes).
        self._limb_base: list[tuple[int, int] | None] = [None] * len(cols)
        self._limb_vals: list[list[np.ndarray]] = [[] for _ in cols]
        self._derived_ok = False
        self._pending: np.ndarray = np.empty(0, np.int64)  # positions emitted next
        self._ooo: list[tuple[np.ndarray, np.ndarray]] = []  # (kid, t) of out-of-order inserts

    @staticmethod
    def supports(spec: WindowSpec) -> bool:
        for a in spec.aggregations:
            dtype = spec.columns[a.column]
            if dtype not in _INTS and dtype not in _FLOATS:
                return False
            if a.fn == "count_distinct":
                return False
            if a.fn == "stddev" and dtype in _FLOATS:
                return False  # exact sums of squares of floats: the big-integer state
        return True

    # ------------------------------------------------------------------ admission
    @property
    def watermark(self) -> int | None:
        """The greatest event time accepted (checkpointed by the runtime)."""
        if self._fallback is not None:
            return self._fallback.watermark
        return self._watermark

    @watermark.setter
    def watermark(self, value: int | None) -> None:
        if self._fallback is not None:
            self._fallback.watermark = value
        self._watermark = value

    @property
    def horizon(self) -> int | None:
        if self._fallback is not None:
            return self._fallback.horizon
        if self.watermark is None:
            return None
        return self.watermark - self.spec.lateness_us - self.spec.max_window_us

    @property
    def size(self) -> int:
        return self._fallback.size if self._fallback is not None else len(self._seen)

    def admit(self, events: Iterable[Event]) -> tuple[list[Event], int, int]:
        """The ``WindowState`` interface (a list of ``Event``)."""
        batch = EventBatch.from_events(self.spec, list(events))
        accepted, dups, late = self.admit_batch(batch)
        return accepted.to_events(), dups, late

    def admit_batch(self, batch: EventBatch) -> tuple[EventBatch, int, int]:
        """Apply a batch in delivery order; returns (accepted events, duplicates, late)."""
        if self._fallback is not None:
            acc, dups, late = self._fallback.admit(batch.to_events())
            return EventBatch.from_events(self.spec, acc), dups, late
        n = len(batch)
        et = batch.et
        # The watermark an event is checked against: the greatest time delivered before it
        # (duplicates and late events never raise it, so including them changes nothing).
        late_mask = np.zeros(n, bool)
        if n:
            before = np.empty(n, np.int64)
            before[0] = _I64_MIN if self.watermark is None else self.watermark
            before[1:] = et[:-1]
            np.maximum.accumulate(before, out=before)
            has = before != _I64_MIN
            late_mask = has & (et <= np.where(has, before, 0) - self.spec.lateness_us)
        seen, ids = self._seen, self._eids
        keep = np.zeros(n, bool)
        dups = late = 0
        late_list = late_mask.tolist()
        first = nxt = self._next_ex
        for i, eid in enumerate(batch.eids):
            if eid in seen:
                dups += 1
            elif late_list[i]:
                late += 1
            else:
                seen[eid] = nxt  # event numbers, in delivery order
                ids[nxt] = eid
                nxt += 1
                keep[i] = True
        self._next_ex = nxt
        accepted = batch.take(np.flatnonzero(keep)) if nxt - first < n else batch
        if len(accepted):
            top = int(accepted.et.max())
            if self.watermark is None or top > self.watermark:
                self.watermark = top
            self._insert(accepted, np.arange(first, nxt, dtype=np.int64), emit=True)
        return accepted, dups, late

    def restore(self, events: Iterable[Event]) -> int:
        return self.restore_batch(EventBatch.from_events(self.spec, list(events)))

    def restore_batch(self, batch: EventBatch) -> int:
        """Reload checkpointed events (no late check; duplicates by id are dropped)."""
        if self._fallback is not None:
            return self._fallback.restore(batch.to_events())
        keep = np.zeros(len(batch), bool)
        seen, ids = self._seen, self._eids
        first = nxt = self._next_ex
        for i, eid in enumerate(batch.eids):
            if eid not in seen:
                seen[eid] = nxt
                ids[nxt] = eid
                nxt += 1
                keep[i] = True
        self._next_ex = nxt
        if nxt > first:
            self._insert(batch.take(np.flatnonzero(keep)), np.arange(first, nxt), emit=False)
        return nxt - first

    def _insert(self, b: EventBatch, ex: np.ndarray, *, emit: bool) -> None:
        """Insert events (already registered under the event numbers ``ex``)."""
        m = len(b)
        kid_of, key_list = self._kid_of, self._key_list
        found = list(map(kid_of.get, b.keys))
        if None in found:
            for i, k in enumerate(found):
                if k is None:
                    key = b.keys[i]
                    k = kid_of.get(key)
                    if k is None:
                        k = kid_of[key] = len(key_list)
                        key_list.append(key)
                    found[i] = k
        delivered = np.array(found, dtype=np.int64)
        order = np.lexsort((b.et, delivered))
        kids, et = delivered[order], b.et[order]
        if m > 1 and ((kids[1:] == kids[:-1]) & (et[1:] == et[:-1])).any():
            order = np.lexsort((np.array(b.eids), b.et, delivered))  # equal times: by event id
            kids, et = delivered[order], b.et[order]
        ex = ex[order]
        vals = [v[order] for v in b.values]
        oks = [o[order] for o in b.valid]
        # Guard the int64 prefix sums: |sum| <= n * max|x| and sum of squares <= n * max|x|^2.
        # Floats: the limbs must span the exponents seen (at most _MAX_LIMBS of 31 bits).
        for ci in range(len(self._columns)):
            if self._summed[ci] and m:
                v = vals[ci][oks[ci]]
                if self._float[ci]:
                    v = v[v != 0]
                    if len(v):
                        e = np.frexp(v)[1].astype(np.int64) - 53
                        lo_e, hi_e = int(e.min()), int(e.max())
                        old_lo, old_hi = self._emin[ci], self._emax[ci]
                        self._emin[ci] = lo_e if old_lo is None else min(old_lo, lo_e)
                        self._emax[ci] = hi_e if old_hi is None else max(old_hi, hi_e)
                elif len(v):
                    self._max_abs[ci] = max(self._max_abs[ci], int(np.abs(v).max()))
        total = len(self.et) + m
        for ci in range(len(self._columns)):
            if not self._summed[ci]:
                continue
            if self._float[ci]:
                e_lo, e_hi = self._emin[ci], self._emax[ci]
                wide = e_lo is not None and e_hi is not None and _limbs(e_lo, e_hi) > _MAX_LIMBS
                bound = 0 if total < (1 << 32) and not wide else _GUARD
            else:
                bound = total * self._max_abs[ci] ** (2 if self._squared[ci] else 1)
            if bound >= _GUARD:
                self._to_fallback(b, emit=emit)
                return
        # Insertion points: after every old event of the key with (time, id) <= the new one.
        seg_lo = np.searchsorted(self.kid, kids, "left")
        seg_hi = np.searchsorted(self.kid, kids, "right")
        pos = _search(self.et, seg_lo, seg_hi, et, right=True)
        if len(self.et):
            prev = self.et[np.maximum(pos - 1, 0)]
            for j in np.flatnonzero((pos > seg_lo) & (prev == et)).tolist():
                p, lo = int(pos[j]), int(seg_lo[j])  # equal times: order by event id (rare)
                eid = self._eids[int(ex[j])]
                while p > lo and self.et[p - 1] == et[j] and self._eids[self.ex[p - 1]] > eid:
                    p -= 1
                pos[j] = p
        in_order = pos == seg_hi
        if len(self._pending):  # positions noted earlier shift by the inserts before them
            self._pending = self._pending + np.searchsorted(pos, self._pending, "right")
        self.kid = np.insert(self.kid, pos, kids)
        self.et = np.insert(self.et, pos, et)
        self.ex = np.insert(self.ex, pos, ex)
        for ci in range(len(self._columns)):
            if self._summed[ci] and self._float[ci]:
                self._insert_limbs(ci, pos, np.where(oks[ci], vals[ci], 0.0))
            self.val[ci] = np.insert(self.val[ci], pos, vals[ci])
            self.ok[ci] = np.insert(self.ok[ci], pos, oks[ci])
        self._derived_ok = False
        if emit:
            final = pos + np.arange(m, dtype=np.int64)
            self._pending = np.concatenate([self._pending, final])
            ooo = ~in_order
            if ooo.any():
                self._ooo.append((kids[ooo], et[ooo]))

    def _insert_limbs(self, ci: int, pos: np.ndarray, x: np.ndarray) -> None:
        emin, emax = self._emin[ci], self._emax[ci]
        layout = (0, 1) if emin is None or emax is None else (emin, _limbs(emin, emax))
        if layout != self._limb_base[ci]:  # a new base or more limbs: redo the old events
            old = np.where(self.ok[ci], self.val[ci], 0.0)
            self._limb_vals[ci] = _split_limbs(old, *layout)
            self._limb_base[ci] = layout
        new = _split_limbs(x, *layout)
        self._limb_vals[ci] = [
            np.insert(a, pos, b) for a, b in zip(self._limb_vals[ci], new, strict=True)
        ]

    def _to_fallback(self, extra: EventBatch, *, emit: bool) -> None:
        """Hand every retained event (and ``extra``) to an exact big-integer ``WindowState``,
        with the rows this batch still owes marked for its next ``emit``."""
        ws = WindowState(self.spec, watermark=self.watermark)
        points = self._points()
        owed = list(
            zip(
                [self._key_list[k] for k in self.kid[points].tolist()],
                self.et[points].tolist(),
                strict=True,
            )
        )
        ws.restore(self._retained().to_events())
        events = extra.to_events()
        ws.restore(events)
        if emit:
            owed += [(key, t) for key, ts in ws.affected(events).items() for t in ts]
        ws.mark(owed)
        self._fallback = ws
        self._seen = {}
        self._pending = np.empty(0, np.int64)
        self._ooo = []
        self.kid = self.et = self.ex = np.empty(0, np.int64)  # the arrays are no longer used
        self.val = [v[:0] for v in self.val]
        self.ok = [o[:0] for o in self.ok]
        self._limb_vals = [[] for _ in self._limb_vals]
        self._eids = {}

    def _retained(self) -> EventBatch:
        return EventBatch(
            [self._key_list[k] for k in self.kid.tolist()],
            self.et,
            [self._eids[i] for i in self.ex.tolist()],
            list(self.val),
            list(self.ok),
        )

    # ------------------------------------------------------------------ emission
    def emit(self, accepted: Any = None) -> pa.Table:
        """The feature rows to write for the events admitted since the last ``emit``."""
        if self._fallback is not None:
            if isinstance(accepted, EventBatch):
                accepted = accepted.to_events()
            return self._fallback.emit(accepted if isinstance(accepted, list) else [])
        points = self._points()
        table = self._rows(points)
        self._pending = np.empty(0, np.int64)
        self._ooo = []
        self._evict()
        return table

    def _points(self) -> np.ndarray:
        """Positions of the (key, time) rows to emit: the last event of each (key, time)."""
        kid, et = self.kid, self.et
        parts = [self._pending]
        span = self.spec.max_window_us
        for kids, ts in self._ooo:
            # Merge each key's [t, t + span) ranges (sorted by key then time), then expand.
            start = ts.copy()
            same = np.zeros(len(ts), bool)
            same[1:] = kids[1:] == kids[:-1]
            prev_end = np.empty(len(ts), np.int64)
            prev_end[1:] = ts[:-1] + span
            start[same] = np.maximum(ts[same], prev_end[same])
            seg_lo = np.searchsorted(kid, kids, "left")
            seg_hi = np.searchsorted(kid, kids, "right")
            lo = _search(et, seg_lo, seg_hi, start, right=False)
            hi = _search(et, seg_lo, seg_hi, ts + span, right=False)
            lengths = np.maximum(hi - lo, 0)
            if lengths.sum():
                offsets = np.repeat(lo - np.cumsum(lengths) + lengths, lengths)
                parts.append(offsets + np.arange(int(lengths.sum()), dtype=np.int64))
        pos = np.unique(np.concatenate(parts))
        if not len(pos):
            return pos
        # Move each position to the last event with the same key and time.
        seg_hi = np.searchsorted(kid, kid[pos], "right")
        return np.unique(_search(et, pos, seg_hi, et[pos], right=True) - 1)

    def _derive(self) -> None:
        if self._derived_ok:
            return
        n = len(self.et)
        self._cnt, self._sum, self._sq, self._last = [], [], [], []
        self._limb_sums: dict[int, tuple[int, list[np.ndarray]]] = {}
        self._max: list[_Extremes | None] = []
        self._min: list[_Extremes | None] = []
        zero = np.zeros(1, np.int64)
        for ci in range(len(self._columns)):
            ok, v = self.ok[ci], self.val[ci]
            nulls = n - int(np.count_nonzero(ok))
            if nulls:
                self._cnt.append(np.concatenate([zero, np.cumsum(ok, dtype=np.int64)]))
            else:
                self._cnt.append(np.arange(n + 1, dtype=np.int64))
            if self._summed[ci] and self._float[ci]:
                x = v if nulls == 0 else np.where(ok, v, 0.0)
                self._sum.append(zero)
                self._sq.append(zero)
                layout = self._limb_base[ci] or (0, 1)
                self._limb_sums[ci] = (
                    layout[0],
                    [
                        np.concatenate([zero, np.cumsum(a, dtype=np.int64)])
                        for a in self._limb_vals[ci]
                    ]
                    if self._limb_vals[ci]
                    else [np.zeros(n + 1, np.int64)],
                )
            elif self._summed[ci]:
                x = v if nulls == 0 else np.where(ok, v, 0)
                self._sum.append(np.concatenate([zero, np.cumsum(x, dtype=np.int64)]))
                if self._squared[ci]:
                    self._sq.append(np.concatenate([zero, np.cumsum(x * x, dtype=np.int64)]))
                else:
                    self._sq.append(zero)
            else:
                self._sum.append(zero)
                self._sq.append(zero)
            if self._need_last[ci]:
                idx = np.where(ok, np.arange(n, dtype=np.int64), -1)
                self._last.append(np.maximum.accumulate(idx) if n else idx)
            else:
                self._last.append(zero)
            low, high = (-np.inf, np.inf) if self._float[ci] else (_I64_MIN, _I64_MAX)
            self._max.append(
                _Extremes(v if nulls == 0 else np.where(ok, v, low), np.maximum, low)
                if self._need_max[ci]
                else None
            )
            self._min.append(
                _Extremes(v if nulls == 0 else np.where(ok, v, high), np.minimum, high)
                if self._need_min[ci]
                else None
            )
        self._derived_ok = True

    def _rows(self, points: np.ndarray) -> pa.Table:
        spec = self.spec
        self._derive()
        kid, et = self.kid[points], self.et[points]
        seg_lo = np.searchsorted(self.kid, kid, "left")
        outputs: list[pa.Array | None] = [None] * len(spec.aggregations)
        for (ci, window, hop), idxs in self._groups.items():
            if hop:
                end = et - np.mod(et, hop)
                hi = _search(self.et, seg_lo, points + 1, end, right=True)
            else:
                end, hi = et, points + 1
            lo = _search(self.et, seg_lo, hi, end - window, right=True)
            lo = np.minimum(lo, hi)
            cnt = self._cnt[ci][hi] - self._cnt[ci][lo]
            empty = cnt == 0
            totals: list[int] | None = None  # exact float sums, shared by sum and mean
            for i in idxs:
                fn = spec.aggregations[i].fn
                if fn in ("sum", "mean") and self._float[ci]:
                    if totals is None:
                        totals = self._exact_totals(ci, lo, hi)
                    out_type = arrow_type(self._dtypes[spec.aggregations[i].output])
                    outputs[i] = self._float_result(fn, ci, totals, cnt, out_type)
                else:
                    outputs[i] = self._finish(fn, ci, lo, hi, cnt, empty, i)
        keys = [self._key_list[k] for k in kid.tolist()]
        arrays = [
            pa.array([k[j] for k in keys], arrow_type(spec.columns[name]))
            for j, name in enumerate(spec.keys)
        ]
        arrays.append(pa.array(et, pa.int64()).cast(arrow_type("timestamp")))
        arrays += [a for a in outputs if a is not None]
        names = [*spec.keys, spec.event_time, *(a.output for a in spec.aggregations)]
        return pa.Table.from_arrays(arrays, names=names)

    def _finish(
        self,
        fn: str,
        ci: int,
        lo: np.ndarray,
        hi: np.ndarray,
        cnt: np.ndarray,
        empty: np.ndarray,
        i: int,
    ) -> pa.Array:
        out_type = arrow_type(self._dtypes[self.spec.aggregations[i].output])
        if fn == "count":
            return pa.array(cnt, out_type)
        if fn in ("sum", "mean", "stddev"):
            s = self._sum[ci][hi] - self._sum[ci][lo]
            if fn == "sum":
                return pa.array(s, pa.int64(), mask=empty).cast(out_type)
            if fn == "mean":
                safe = np.where(empty, 1, cnt)
                mean = s / safe
                big = np.flatnonzero(np.abs(s) > (1 << 53))
                for j in big.tolist():  # beyond 2**53 a float64 sum is not exact
                    mean[j] = int(s[j]) / int(cnt[j])
                return pa.array(mean, out_type, mask=empty)
            q = self._sq[ci][hi] - self._sq[ci][lo]
            values: list[float | None] = []
            for n_, s_, q_ in zip(cnt.tolist(), s.tolist(), q.tolist(), strict=True):
                p = Partial()
                p.count, p.sum, p.sumsq = n_, s_, q_
                values.append(finalize("stddev", p, 0))
            return pa.array(values, out_type)
        if fn in ("min", "max"):
            ext = (self._max if fn == "max" else self._min)[ci]
            assert ext is not None
            res = np.zeros(len(lo), dtype=self.val[ci].dtype)
            some = ~empty
            res[some] = ext.query(lo[some], hi[some])
            return _typed(res, empty, out_type)
        if fn == "last":
            j = self._last[ci][np.maximum(hi - 1, 0)]
            hit = (hi > lo) & (j >= lo)
            res = np.where(hit, self.val[ci][np.maximum(j, 0)], 0)
            return _typed(res, ~hit, out_type)
        raise AssertionError(fn)

    def _exact_totals(self, ci: int, lo: np.ndarray, hi: np.ndarray) -> list[int]:
        """Per window, the exact sum of a float column divided by ``2**base``: the limb
        differences recombined into one Python integer."""
        _base, prefixes = self._limb_sums[ci]
        diffs: list[list[int]] = [(p[hi] - p[lo]).tolist() for p in reversed(prefixes)]
        totals = diffs[0]
        for d in diffs[1:]:
            totals = [(t << _LIMB) + x for t, x in zip(totals, d, strict=True)]
        return totals

    def _float_result(
        self, fn: str, ci: int, totals: list[int], cnt: np.ndarray, out_type: pa.DataType
    ) -> pa.Array:
        """Float sum or mean from exact totals, rounded once (int / int is correctly rounded
        in CPython, as in the big-integer state's ``finalize``)."""
        base = self._limb_sums[ci][0]
        counts = cnt.tolist()
        values: list[float | None]
        if fn == "sum":
            if base >= 0:
                values = [
                    float(t << base) if n else None for t, n in zip(totals, counts, strict=True)
                ]
            else:
                den = 1 << -base
                values = [t / den if n else None for t, n in zip(totals, counts, strict=True)]
        elif base >= 0:
            values = [(t << base) / n if n else None for t, n in zip(totals, counts, strict=True)]
        else:
            values = [t / (n << -base) if n else None for t, n in zip(totals, counts, strict=True)]
        return pa.array(values, out_type)

    # ------------------------------------------------------------------ eviction
    def _evict(self) -> None:
        horizon = self.horizon
        if horizon is None or not len(self.et):
            return
        drop = self.et <= horizon
        n_drop = int(np.count_nonzero(drop))
        if not n_drop:
            return
        seen, eids = self._seen, self._eids
        for i in self.ex[drop].tolist():
            seen.pop(eids.pop(i), None)
        keep = ~drop
        self.kid, self.et, self.ex = self.kid[keep], self.et[keep], self.ex[keep]
        self.val = [v[keep] for v in self.val]
        self.ok = [o[keep] for o in self.ok]
        self._limb_vals = [[a[keep] for a in limbs] for limbs in self._limb_vals]
        self._derived_ok = False


def _typed(values: np.ndarray, null: np.ndarray, out_type: pa.DataType) -> pa.Array:
    base = pa.float64() if values.dtype.kind == "f" else pa.int64()
    return pa.array(values, base, mask=null).cast(out_type)


def _search(
    et: np.ndarray, lo: np.ndarray, hi: np.ndarray, target: np.ndarray, *, right: bool
) -> np.ndarray:
    """Per query, the first index in ``[lo, hi)`` whose time is ``> target`` (``right``) or
    ``>= target``; ``hi`` if none. All queries at once: one vectorised bisection."""
    lo = lo.copy()
    if not len(lo) or not len(et):
        return lo
    hi = np.maximum(hi, lo)
    steps = math.ceil(math.log2(int((hi - lo).max()) + 1)) + 1
    for _ in range(steps):
        active = lo < hi
        if not active.any():
            break
        mid = (lo + hi) >> 1
        at = et[np.minimum(mid, len(et) - 1)]
        go = (at <= target) if right else (at < target)
        go &= active
        stay = active & ~go
        lo = np.where(go, mid + 1, lo)
        hi = np.where(stay, mid, hi)
    return lo


def _limbs(emin: int, emax: int) -> int:
    """How many limbs hold ``M * 2**(e - emin)`` for 53-bit mantissas and exponents in range."""
    return -(-(emax - emin + 53) // _LIMB)


def _split_limbs(x: np.ndarray, base: int, count: int) -> list[np.ndarray]:
    """Each finite float ``x = M * 2**e`` (|M| < 2**53) as the exact integer ``M * 2**(e -
    base)``, split into ``count`` signed 31-bit limbs (int64; their prefix sums stay exact for
    up to 2**32 events)."""
    frac, exp = np.frexp(x)
    mant = np.ldexp(frac, 53).astype(np.int64)  # exact: 53 significant bits at most
    shift = np.where(mant != 0, exp.astype(np.int64) - 53 - base, 0)
    sign = np.sign(mant)
    mag = np.abs(mant).astype(np.uint64)
    mask = np.uint64((1 << _LIMB) - 1)
    limbs = []
    for k in range(count):
        d = shift - _LIMB * k  # where the mantissa's lowest bit falls relative to limb k
        up = np.left_shift(mag, np.clip(d, 0, _LIMB).astype(np.uint64)) & mask
        down = np.right_shift(mag, np.clip(-d, 0, 63).astype(np.uint64)) & mask
        limb = np.where(d >= _LIMB, 0, np.where(d >= 0, up, np.where(d > -64, down, 0)))
        limbs.append(limb.astype(np.int64) * sign)
    return limbs
