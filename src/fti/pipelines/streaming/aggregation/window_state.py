"""The aggregation state of a running stream: per key, the deduplicated events still inside
some window, and the rows to (re-)emit after each micro-batch.

Emission rule. The feature group gets one row per key and *distinct event time* ``t`` of that
key's events, holding every aggregate over ``(t - window, t]``. When a batch adds events to a
key, every already-emitted time those events fall into the window of (``t_new <= t <
t_new + max_window``) is emitted again: a row with the same key and event time and a later
ingestion order is a correction, so out-of-order events still end with the exact values.

Representation. Per key: the events sorted by ``(event_time, event_id)``; prefix sums of the
non-null count, the exact sum and the exact sum of squares per value column (so ``count``,
``sum``, ``mean`` and ``stddev`` of any window are O(1) differences, exact because they are
integers); ``last`` scans back from the window's end; ``min``, ``max`` and ``count_distinct``
use *tiles* — partials per time bucket of ``tile_us`` (default: 1/16 of the smallest window)
— merging one partial per interior tile and scanning only the events of the two edge tiles.
Windows stay exact at microsecond resolution; tiles only make them cheap.

Retention. Events at or below ``watermark - allowed_lateness`` are late (counted, not applied),
so no later emission can look further back than ``watermark - allowed_lateness - max_window``;
older events and their ids are evicted. An id seen again inside the horizon is a duplicate.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from fti.definitions.aggregations import Partial, WindowSpec, exact_int, finalize, value_scale
from fti.definitions.fields import arrow_type
from fti.pipelines.streaming.aggregation.decoding import Transform, prepare_event
from fti.pipelines.streaming.aggregation.events import Event, events_from_table, events_table
from fti.pipelines.streaming.aggregation.state import Ingested

__all__ = ["WindowState"]

_SWEEP_EVERY = 64  # batches between full sweeps of idle keys


@dataclass
class _KeyEvents:
    order: list[tuple[int, Any]] = field(default_factory=list)  # (et, eid), sorted
    ets: list[int] = field(default_factory=list)  # parallel to order, for bisect on time
    rows: list[tuple[Any, ...]] = field(default_factory=list)  # values, parallel
    # Prefix sums per value column (length n + 1): non-null count, exact sum, exact sum of
    # squares. A window's count/sum/sumsq is a difference of two prefixes: O(1), exact.
    cnt: list[list[int]] = field(default_factory=list)
    sums: list[list[int]] = field(default_factory=list)
    sqs: list[list[int]] = field(default_factory=list)
    # Tiles (time buckets of ``tile_us``) holding min/max/distinct partials per value column,
    # so a window scans its two edge tiles' events plus one partial per interior tile.
    tile_ids: list[int] = field(default_factory=list)
    tiles: dict[int, list[Partial]] = field(default_factory=dict)
    # Suffix maxima / minima per value column: (order keys, values), values monotone. A window
    # ending at the key's newest event (the usual case) reads its max/min with one bisect.
    mx: list[tuple[list[tuple[int, Any]], list[Any]]] = field(default_factory=list)
    mn: list[tuple[list[tuple[int, Any]], list[Any]]] = field(default_factory=list)


class WindowState:
    """Exact sliding-window state of one streaming feature group."""

    def __init__(self, spec: WindowSpec, *, watermark: int | None = None) -> None:
        self.spec = spec
        self.watermark = watermark
        self._keys: dict[tuple[Any, ...], _KeyEvents] = {}
        self._seen: dict[Any, int] = {}  # event id -> event time
        self._columns = spec.value_columns
        self._scales = [value_scale(spec.columns[c]) for c in self._columns]
        summed = {a.column for a in spec.aggregations if a.fn in ("sum", "mean", "stddev")}
        self._summed = [c in summed for c in self._columns]
        distinct = {a.column for a in spec.aggregations if a.fn == "count_distinct"}
        self._distinct = [c in distinct for c in self._columns]
        # Aggregations grouped by (column index, window) so each slice is scanned once.
        groups: dict[tuple[int, int, int], list[int]] = {}
        for i, a in enumerate(spec.aggregations):
            key = (self._columns.index(a.column), a.window_us, a.hop_us)
            groups.setdefault(key, []).append(i)
        self._groups = groups
        self._batches = 0
        tiled = {"min", "max", "count_distinct"}
        self._tiled = [
            any(a.column == c and a.fn in tiled for a in spec.aggregations) for c in self._columns
        ]
        self._need_last = [
            any(a.column == c and a.fn == "last" for a in spec.aggregations) for c in self._columns
        ]
        self.tile_us = spec.tile_us
        self._rows: dict[tuple[tuple[Any, ...], int], list[Any]] = {}  # emitted this batch
        self._out_of_order: list[Event] = []

    # ------------------------------------------------------------------ admission
    @property
    def horizon(self) -> int | None:
        """Events at or below this time are no longer needed by any future emission."""
        if self.watermark is None:
            return None
        return self.watermark - self.spec.lateness_us - self.spec.max_window_us

    def is_late(self, et: int) -> bool:
        return self.watermark is not None and et <= self.watermark - self.spec.lateness_us

    def _insert(self, ev: Event) -> bool:
        """Add an event; True if it is now its key's newest (greatest (time, id))."""
        ke = self._keys.get(ev.key)
        ncol = len(self._columns)
        if ke is None:
            ke = self._keys[ev.key] = _KeyEvents(
                cnt=[[0] for _ in range(ncol)],
                sums=[[0] for _ in range(ncol)],
                sqs=[[0] for _ in range(ncol)],
                mx=[([], []) for _ in range(ncol)],
                mn=[([], []) for _ in range(ncol)],
            )
        pos = bisect.bisect_right(ke.order, (ev.et, ev.eid))
        ke.order.insert(pos, (ev.et, ev.eid))
        ke.ets.insert(pos, ev.et)
        ke.rows.insert(pos, ev.values)
        n = len(ke.rows)
        for ci in range(ncol):
            cnt, sums, sqs = ke.cnt[ci], ke.sums[ci], ke.sqs[ci]
            cnt.append(0)
            sums.append(0)
            sqs.append(0)
            summed, scale = self._summed[ci], self._scales[ci]
            # Recompute prefixes from the insertion point (O(1) for in-order events).
            for i in range(pos, n):
                v = ke.rows[i][ci]
                if v is None:
                    cnt[i + 1], sums[i + 1], sqs[i + 1] = cnt[i], sums[i], sqs[i]
                    continue
                cnt[i + 1] = cnt[i] + 1
                if summed:
                    x = exact_int(v, scale)
                    sums[i + 1] = sums[i] + x
                    sqs[i + 1] = sqs[i] + x * x
        for ci in range(ncol):
            if self._tiled[ci]:
                _push_extremes(ke, ci, (ev.et, ev.eid), ev.values[ci])
        if any(self._tiled):
            tid = ev.et // self.tile_us
            parts = ke.tiles.get(tid)
            if parts is None:
                parts = ke.tiles[tid] = [Partial() for _ in range(ncol)]
                bisect.insort(ke.tile_ids, tid)
            for ci in range(ncol):
                if self._tiled[ci]:
                    parts[ci].add(ev.et, ev.eid, ev.values[ci], None, distinct=self._distinct[ci])
        self._seen[ev.eid] = ev.et
        return pos == n - 1

    def admit(self, events: Iterable[Event]) -> tuple[list[Event], int, int]:
        """Apply events in delivery order; returns (accepted, duplicates, late)."""
        accepted: list[Event] = []
        dups = late = 0
        for ev in events:
            if ev.eid in self._seen:
                dups += 1
                continue
            if self.is_late(ev.et):
                late += 1
                continue
            if self._insert(ev):
                # The key's newest event: its row is a suffix query, cheap to compute now. A
                # later event of this batch at the same time overwrites it (same dict key).
                self._rows[(ev.key, ev.et)] = self.values_at(ev.key, ev.et)
            else:
                self._out_of_order.append(ev)  # re-emit its range in emit()
            accepted.append(ev)
            if self.watermark is None or ev.et > self.watermark:
                self.watermark = ev.et
        return accepted, dups, late

    def ingest(self, records: Sequence[Mapping[str, Any]], transform: Transform | None) -> Ingested:
        """Decode record by record, admit and emit (see ``AggregationState``)."""
        decoded: list[Event] = []
        invalid = 0
        for fields in records:
            try:
                ev = prepare_event(self.spec, transform, fields)
            except (ValueError, TypeError):
                invalid += 1  # counted and reported in `fti stream status`
                continue
            if ev is not None:
                decoded.append(ev)
        accepted, dups, late = self.admit(decoded)
        rows = self.emit(accepted)
        return Ingested(events_table(self.spec, accepted), rows, dups, late, invalid)

    def restore(self, events: pa.Table) -> int:
        """Reload checkpointed events-table rows (no late check; duplicates by id dropped)."""
        return self.load(events_from_table(self.spec, events))

    def load(self, events: Iterable[Event]) -> int:
        """Reload events (no late check; duplicates by id are dropped); how many were new."""
        n = 0
        for ev in events:
            if ev.eid not in self._seen:
                self._insert(ev)
                n += 1
        return n

    # ------------------------------------------------------------------ emission
    def mark(self, points: Iterable[tuple[tuple[Any, ...], int]]) -> None:
        """Owe rows for these (key, time) points at the next ``emit``."""
        for key, t in points:
            self._rows[(key, t)] = self.values_at(key, t)

    def affected(self, accepted: Iterable[Event]) -> dict[tuple[Any, ...], list[int]]:
        """Per key, the sorted distinct event times whose aggregates changed."""
        new: dict[tuple[Any, ...], set[int]] = {}
        for ev in accepted:
            new.setdefault(ev.key, set()).add(ev.et)
        span = self.spec.max_window_us
        out: dict[tuple[Any, ...], list[int]] = {}
        for key, times in new.items():
            ets = self._keys[key].ets
            hit: set[int] = set(times)
            end = -1  # merge [t, t + span) ranges, scanning each stored time at most once
            for t in sorted(times):
                lo = bisect.bisect_left(ets, max(t, end))
                hi = bisect.bisect_left(ets, t + span)
                hit.update(ets[lo:hi])
                end = max(end, t + span)
            out[key] = sorted(hit)
        return out

    def values_at(self, key: tuple[Any, ...], t: int) -> list[Any]:
        """Every aggregate of ``key`` over ``(t - window, t]``, in declaration order."""
        ke = self._keys.get(key)
        out: list[Any] = [None] * len(self.spec.aggregations)
        for (ci, window, hop), idxs in self._groups.items():
            p = Partial()
            end = t - t % hop if hop else t  # hopping/tumbling: the last boundary <= t
            if ke is not None:
                self._window(ke, ci, end - window, end, p)
            for i in idxs:
                out[i] = finalize(self.spec.aggregations[i].fn, p, self._scales[ci])
        return out

    def _window(self, ke: _KeyEvents, ci: int, start: int, t: int, p: Partial) -> None:
        """Fill ``p`` with column ``ci`` over events in ``(start, t]``."""
        ets = ke.ets
        lo = bisect.bisect_right(ets, start)
        hi = bisect.bisect_right(ets, t)
        p.count = ke.cnt[ci][hi] - ke.cnt[ci][lo]
        p.sum = ke.sums[ci][hi] - ke.sums[ci][lo]
        p.sumsq = ke.sqs[ci][hi] - ke.sqs[ci][lo]
        rows = ke.rows
        if self._need_last[ci]:
            for j in range(hi - 1, lo - 1, -1):
                v = rows[j][ci]
                if v is not None:
                    et, eid = ke.order[j]
                    p.last = (et, eid, v)
                    break
        if not self._tiled[ci]:
            return
        distinct = self._distinct[ci]
        if lo == hi:
            return
        if not distinct:
            # The extreme of the suffix starting at ``lo`` is the window's extreme when it sits
            # before ``hi`` (always true for a window ending at the newest event).
            start_key = ke.order[lo]
            end_key = ke.order[hi] if hi < len(ets) else None
            found: list[Any] = []
            for keys, vals in (ke.mx[ci], ke.mn[ci]):
                i = bisect.bisect_left(keys, start_key)
                if i == len(keys):
                    found.append(None)  # no non-null value from lo on
                elif end_key is None or keys[i] < end_key:
                    found.append(vals[i])
                else:
                    break
            if len(found) == 2:
                p.max, p.min = found
                return
        size = self.tile_us
        first = (start + size) // size  # first tile starting after ``start``
        end = (t + 1) // size  # tiles before ``end`` finish at or before ``t``
        spans = [(lo, hi)]
        if first < end:
            a = bisect.bisect_left(ke.tile_ids, first)
            b = bisect.bisect_left(ke.tile_ids, end)
            for tid in ke.tile_ids[a:b]:
                part = ke.tiles[tid][ci]
                if part.count:
                    _merge_extremes(p, part, distinct=distinct)
            spans = [
                (lo, bisect.bisect_left(ets, first * size)),
                (bisect.bisect_left(ets, end * size), hi),
            ]
        for a_, b_ in spans:
            for j in range(a_, b_):
                v = rows[j][ci]
                if v is None:
                    continue
                if p.min is None or v < p.min:
                    p.min = v
                if p.max is None or v > p.max:
                    p.max = v
                if distinct:
                    if p.distinct is None:
                        p.distinct = set()
                    p.distinct.add(v)

    def emit(self, accepted: list[Event]) -> pa.Table:
        """The feature rows to write for the events admitted since the last ``emit``."""
        rows = self._rows
        for key, ts in self.affected(self._out_of_order).items():
            for t in ts:
                rows[(key, t)] = self.values_at(key, t)
        spec = self.spec
        keys_out: list[list[Any]] = [[] for _ in spec.keys]
        times: list[int] = []
        feats: list[list[Any]] = [[] for _ in spec.aggregations]
        for (key, t), values in rows.items():
            for i, k in enumerate(key):
                keys_out[i].append(k)
            times.append(t)
            for i, v in enumerate(values):
                feats[i].append(v)
        self._rows = {}
        self._out_of_order = []
        self._batches += 1
        self.evict(accepted if self._batches % _SWEEP_EVERY else None)
        return self._table(keys_out, times, feats)

    def _table(
        self, keys_out: list[list[Any]], times: list[int], feats: list[list[Any]]
    ) -> pa.Table:
        spec = self.spec
        arrays = [
            pa.array(col, arrow_type(spec.columns[k]))
            for k, col in zip(spec.keys, keys_out, strict=True)
        ]
        arrays.append(pa.array(times, pa.int64()).cast(arrow_type("timestamp")))
        dtypes = spec.feature_dtypes()
        for a, col in zip(spec.aggregations, feats, strict=True):
            arrays.append(pa.array(col, arrow_type(dtypes[a.output])))
        names = [*spec.keys, spec.event_time, *(a.output for a in spec.aggregations)]
        return pa.Table.from_arrays(arrays, names=names)

    # ------------------------------------------------------------------ eviction
    def evict(self, touched: Iterable[Event] | None = None) -> None:
        """Drop events (and ids) at or below the horizon: of touched keys, or of all keys."""
        horizon = self.horizon
        if horizon is None:
            return
        keys = self._keys.keys() if touched is None else {ev.key for ev in touched}
        for key in list(keys):
            ke = self._keys.get(key)
            if ke is None:
                continue
            n = bisect.bisect_right(ke.ets, horizon)
            if n:
                for _, eid in ke.order[:n]:
                    self._seen.pop(eid, None)
                del ke.order[:n], ke.ets[:n], ke.rows[:n]
                for prefixes in (ke.cnt, ke.sums, ke.sqs):
                    for col in prefixes:
                        del col[:n]  # differences of prefixes stay valid
                if ke.order:
                    for order_keys, vals in (*ke.mx, *ke.mn):
                        i = bisect.bisect_left(order_keys, ke.order[0])
                        del order_keys[:i], vals[:i]
                # A tile reaching down to the horizon is never inside a future window.
                m = bisect.bisect_right(ke.tile_ids, horizon // self.tile_us)
                for tid in ke.tile_ids[:m]:
                    del ke.tiles[tid]
                del ke.tile_ids[:m]
            if not ke.ets:
                del self._keys[key]

    @property
    def size(self) -> int:
        """Events held."""
        return len(self._seen)


def _merge_extremes(p: Partial, part: Partial, *, distinct: bool) -> None:
    if p.min is None or part.min < p.min:
        p.min = part.min
    if p.max is None or part.max > p.max:
        p.max = part.max
    if distinct and part.distinct:
        if p.distinct is None:
            p.distinct = set(part.distinct)
        else:
            p.distinct |= part.distinct


def _push_extremes(ke: _KeyEvents, ci: int, order_key: tuple[int, Any], v: Any) -> None:
    """Insert a value (at any position) into the suffix maxima and minima of column ``ci``."""
    if v is None:
        return
    for (keys, vals), better in ((ke.mx[ci], operator.ge), (ke.mn[ci], operator.le)):
        i = bisect.bisect_left(keys, order_key)
        if i < len(vals) and better(vals[i], v):
            continue  # a later value is at least as extreme: v is never a suffix's extreme
        j = i
        while j > 0 and better(v, vals[j - 1]):
            j -= 1  # earlier values v beats are no longer extremes of any suffix
        del keys[j:i], vals[j:i]
        keys.insert(j, order_key)
        vals.insert(j, v)
