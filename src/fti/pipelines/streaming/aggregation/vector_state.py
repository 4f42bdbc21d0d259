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
* rebuilt after each batch's inserts, O(n) each (``vector_query.WindowQuery``): prefix sums of
  the non-null count, of the value and of its square (a window's count/sum/sum of squares is a
  difference of two prefixes, exact in int64 — guarded, see below); a forward fill of the last
  non-null position (``last``); and for ``min``/``max`` a block decomposition
  (``kernels.RangeExtremes``): the extreme of each block of 32 events and a sparse table over
  those, so a range is two lookups for its whole blocks plus a masked 32-wide reduction for each
  of its two edge blocks.

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

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from fti.definitions.aggregations import WindowSpec
from fti.pipelines.streaming.aggregation.decoding import Transform, prepare_batch
from fti.pipelines.streaming.aggregation.events import FLOATS, Event, EventBatch, batch_table
from fti.pipelines.streaming.aggregation.kernels import I64_MIN, limb_count, search, split_limbs
from fti.pipelines.streaming.aggregation.state import Ingested
from fti.pipelines.streaming.aggregation.vector_query import ColumnNeeds, WindowQuery
from fti.pipelines.streaming.aggregation.window_state import WindowState

__all__ = ["VectorState"]

_INTS = {"int8", "int16", "int32", "int64", "bool", "timestamp"}
_GUARD = 1 << 62
_MAX_LIMBS = 12  # values spanning more binary orders of magnitude use the big-integer state


class VectorState:
    """Exact sliding-window state of one streaming feature group, in numpy columns."""

    def __init__(self, spec: WindowSpec, *, watermark: int | None = None) -> None:
        self.spec = spec
        self._fallback: WindowState | None = None
        self._watermark = watermark
        cols = spec.value_columns
        self._columns = cols
        self._needs = needs = ColumnNeeds.of(spec)
        self._float, self._summed, self._squared = needs.is_float, needs.summed, needs.squared
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
        self._query: WindowQuery | None = None  # rebuilt after inserts and evictions
        self._pending: np.ndarray = np.empty(0, np.int64)  # positions emitted next
        self._ooo: list[tuple[np.ndarray, np.ndarray]] = []  # (kid, t) of out-of-order inserts

    @staticmethod
    def supports(spec: WindowSpec) -> bool:
        """Whether this state computes every aggregation of ``spec`` (numeric columns, no
        ``count_distinct``, no ``stddev`` of floats); ``new_state`` decides with it."""
        for a in spec.aggregations:
            dtype = spec.columns[a.column]
            if dtype not in _INTS and dtype not in FLOATS:
                return False
            if a.fn == "count_distinct":
                return False
            if a.fn == "stddev" and dtype in FLOATS:
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
        """Events at or below this time are no longer needed by any future emission."""
        if self._fallback is not None:
            return self._fallback.horizon
        if self.watermark is None:
            return None
        return self.watermark - self.spec.lateness_us - self.spec.max_window_us

    @property
    def size(self) -> int:
        """Events held."""
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
            before[0] = I64_MIN if self.watermark is None else self.watermark
            before[1:] = et[:-1]
            np.maximum.accumulate(before, out=before)
            has = before != I64_MIN
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

    def ingest(self, records: Sequence[Mapping[str, Any]], transform: Transform | None) -> Ingested:
        """Decode column by column, admit and emit (see ``AggregationState``)."""
        batch, invalid = prepare_batch(self.spec, transform, records)
        accepted, dups, late = self.admit_batch(batch)
        rows = self.emit(accepted)
        return Ingested(batch_table(self.spec, [accepted]), rows, dups, late, invalid)

    def restore(self, events: pa.Table) -> int:
        """Reload checkpointed events-table rows (no late check; duplicates by id dropped)."""
        return self.load(EventBatch.from_table(self.spec, events))

    def load(self, batch: EventBatch) -> int:
        """Reload events (no late check; duplicates by id are dropped); how many were new."""
        if self._fallback is not None:
            return self._fallback.load(batch.to_events())
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
                wide = e_lo is not None and e_hi is not None and limb_count(e_lo, e_hi) > _MAX_LIMBS
                bound = 0 if total < (1 << 32) and not wide else _GUARD
            else:
                bound = total * self._max_abs[ci] ** (2 if self._squared[ci] else 1)
            if bound >= _GUARD:
                self._to_fallback(b, emit=emit)
                return
        # Insertion points: after every old event of the key with (time, id) <= the new one.
        seg_lo = np.searchsorted(self.kid, kids, "left")
        seg_hi = np.searchsorted(self.kid, kids, "right")
        pos = search(self.et, seg_lo, seg_hi, et, right=True)
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
        self._query = None
        if emit:
            final = pos + np.arange(m, dtype=np.int64)
            self._pending = np.concatenate([self._pending, final])
            ooo = ~in_order
            if ooo.any():
                self._ooo.append((kids[ooo], et[ooo]))

    def _insert_limbs(self, ci: int, pos: np.ndarray, x: np.ndarray) -> None:
        emin, emax = self._emin[ci], self._emax[ci]
        layout = (0, 1) if emin is None or emax is None else (emin, limb_count(emin, emax))
        if layout != self._limb_base[ci]:  # a new base or more limbs: redo the old events
            old = np.where(self.ok[ci], self.val[ci], 0.0)
            self._limb_vals[ci] = split_limbs(old, *layout)
            self._limb_base[ci] = layout
        new = split_limbs(x, *layout)
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
        ws.load(self._retained().to_events())
        events = extra.to_events()
        ws.load(events)
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
    def emit(self, accepted: EventBatch | list[Event] | None = None) -> pa.Table:
        """The feature rows to write for the events admitted since the last ``emit``."""
        if self._fallback is not None:
            if isinstance(accepted, EventBatch):
                accepted = accepted.to_events()
            return self._fallback.emit(accepted or [])
        if self._query is None:
            self._query = WindowQuery(
                self.spec, self._needs, self.kid, self.et, list(self.val), list(self.ok),
                self._limb_base, self._limb_vals,
            )  # fmt: skip
        table = self._query.rows(self._points(), self._key_list)
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
            lo = search(et, seg_lo, seg_hi, start, right=False)
            hi = search(et, seg_lo, seg_hi, ts + span, right=False)
            lengths = np.maximum(hi - lo, 0)
            if lengths.sum():
                offsets = np.repeat(lo - np.cumsum(lengths) + lengths, lengths)
                parts.append(offsets + np.arange(int(lengths.sum()), dtype=np.int64))
        pos = np.unique(np.concatenate(parts))
        if not len(pos):
            return pos
        # Move each position to the last event with the same key and time.
        seg_hi = np.searchsorted(kid, kid[pos], "right")
        return np.unique(search(et, pos, seg_hi, et[pos], right=True) - 1)

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
        self._query = None
