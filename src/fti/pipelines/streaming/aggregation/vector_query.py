"""Window queries over the columnar state: built once after a batch's inserts, O(n) per
value column, then every emitted row's windows cost O(1) (counts, exact sums, last) or
O(log n) (min/max through ``RangeExtremes``).

Per value column: prefix sums of the non-null count, of the value and of its square (a
window's count/sum/sum of squares is a difference of two prefixes, exact in int64 while the
state's guard holds); for summed float columns the prefix sums of each 31-bit limb; a forward
fill of the last non-null position (``last``); and block extremes for ``min``/``max``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from fti.definitions.aggregations import Partial, WindowSpec, finalize
from fti.definitions.fields import arrow_type
from fti.pipelines.streaming.aggregation.events import FLOATS
from fti.pipelines.streaming.aggregation.kernels import (
    I64_MAX,
    I64_MIN,
    LIMB,
    RangeExtremes,
    search,
    typed_array,
)

__all__ = ["ColumnNeeds", "WindowQuery"]


@dataclass(frozen=True)
class ColumnNeeds:
    """Per value column (in ``spec.value_columns`` order), what its aggregations need; and
    the aggregations grouped by (column index, window, hop) so each window is bounded once."""

    is_float: list[bool]
    summed: list[bool]
    squared: list[bool]
    need_max: list[bool]
    need_min: list[bool]
    need_last: list[bool]
    groups: dict[tuple[int, int, int], list[int]]

    @classmethod
    def of(cls, spec: WindowSpec) -> ColumnNeeds:
        cols = spec.value_columns
        fns = {c: {a.fn for a in spec.aggregations if a.column == c} for c in cols}
        groups: dict[tuple[int, int, int], list[int]] = {}
        for i, a in enumerate(spec.aggregations):
            groups.setdefault((cols.index(a.column), a.window_us, a.hop_us), []).append(i)
        return cls(
            is_float=[spec.columns[c] in FLOATS for c in cols],
            summed=[bool(fns[c] & {"sum", "mean", "stddev"}) for c in cols],
            squared=["stddev" in fns[c] for c in cols],
            need_max=["max" in fns[c] for c in cols],
            need_min=["min" in fns[c] for c in cols],
            need_last=["last" in fns[c] for c in cols],
            groups=groups,
        )


class WindowQuery:
    """Prefix structures over the retained events' columns (sorted by key id, event time,
    event id), answering every aggregation's window for many emitted positions at once."""

    def __init__(
        self,
        spec: WindowSpec,
        needs: ColumnNeeds,
        kid: np.ndarray,
        et: np.ndarray,
        val: list[np.ndarray],
        oks: list[np.ndarray],
        limb_base: list[tuple[int, int] | None],
        limb_vals: list[list[np.ndarray]],
    ) -> None:
        self.spec, self.needs = spec, needs
        self.kid, self.et, self.val = kid, et, val
        self._dtypes = spec.feature_dtypes()
        n = len(et)
        self._cnt, self._sum, self._sq, self._last = [], [], [], []
        self._limb_sums: dict[int, tuple[int, list[np.ndarray]]] = {}
        self._max: list[RangeExtremes | None] = []
        self._min: list[RangeExtremes | None] = []
        zero = np.zeros(1, np.int64)
        for ci in range(len(val)):
            ok, v = oks[ci], val[ci]
            nulls = n - int(np.count_nonzero(ok))
            if nulls:
                self._cnt.append(np.concatenate([zero, np.cumsum(ok, dtype=np.int64)]))
            else:
                self._cnt.append(np.arange(n + 1, dtype=np.int64))
            if self.needs.summed[ci] and self.needs.is_float[ci]:
                x = v if nulls == 0 else np.where(ok, v, 0.0)
                self._sum.append(zero)
                self._sq.append(zero)
                layout = limb_base[ci] or (0, 1)
                self._limb_sums[ci] = (
                    layout[0],
                    [np.concatenate([zero, np.cumsum(a, dtype=np.int64)]) for a in limb_vals[ci]]
                    if limb_vals[ci]
                    else [np.zeros(n + 1, np.int64)],
                )
            elif self.needs.summed[ci]:
                x = v if nulls == 0 else np.where(ok, v, 0)
                self._sum.append(np.concatenate([zero, np.cumsum(x, dtype=np.int64)]))
                if self.needs.squared[ci]:
                    self._sq.append(np.concatenate([zero, np.cumsum(x * x, dtype=np.int64)]))
                else:
                    self._sq.append(zero)
            else:
                self._sum.append(zero)
                self._sq.append(zero)
            if self.needs.need_last[ci]:
                idx = np.where(ok, np.arange(n, dtype=np.int64), -1)
                self._last.append(np.maximum.accumulate(idx) if n else idx)
            else:
                self._last.append(zero)
            low, high = (-np.inf, np.inf) if self.needs.is_float[ci] else (I64_MIN, I64_MAX)
            self._max.append(
                RangeExtremes(v if nulls == 0 else np.where(ok, v, low), np.maximum, low)
                if self.needs.need_max[ci]
                else None
            )
            self._min.append(
                RangeExtremes(v if nulls == 0 else np.where(ok, v, high), np.minimum, high)
                if self.needs.need_min[ci]
                else None
            )

    def rows(self, points: np.ndarray, key_list: list[tuple[Any, ...]]) -> pa.Table:
        """The feature rows of the events at ``points``: keys, event time, every aggregate."""
        spec = self.spec
        kid, et = self.kid[points], self.et[points]
        seg_lo = np.searchsorted(self.kid, kid, "left")
        outputs: list[pa.Array | None] = [None] * len(spec.aggregations)
        for (ci, window, hop), idxs in self.needs.groups.items():
            if hop:
                end = et - np.mod(et, hop)
                hi = search(self.et, seg_lo, points + 1, end, right=True)
            else:
                end, hi = et, points + 1
            lo = search(self.et, seg_lo, hi, end - window, right=True)
            lo = np.minimum(lo, hi)
            cnt = self._cnt[ci][hi] - self._cnt[ci][lo]
            empty = cnt == 0
            totals: list[int] | None = None  # exact float sums, shared by sum and mean
            for i in idxs:
                fn = spec.aggregations[i].fn
                if fn in ("sum", "mean") and self.needs.is_float[ci]:
                    if totals is None:
                        totals = self._exact_totals(ci, lo, hi)
                    out_type = arrow_type(self._dtypes[spec.aggregations[i].output])
                    outputs[i] = self._float_result(fn, ci, totals, cnt, out_type)
                else:
                    outputs[i] = self._finish(fn, ci, lo, hi, cnt, empty, i)
        keys = [key_list[k] for k in kid.tolist()]
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
            return typed_array(res, empty, out_type)
        if fn == "last":
            j = self._last[ci][np.maximum(hi - 1, 0)]
            hit = (hi > lo) & (j >= lo)
            res = np.where(hit, self.val[ci][np.maximum(j, 0)], 0)
            return typed_array(res, ~hit, out_type)
        raise AssertionError(fn)

    def _exact_totals(self, ci: int, lo: np.ndarray, hi: np.ndarray) -> list[int]:
        """Per window, the exact sum of a float column divided by ``2**base``: the limb
        differences recombined into one Python integer."""
        _base, prefixes = self._limb_sums[ci]
        diffs: list[list[int]] = [(p[hi] - p[lo]).tolist() for p in reversed(prefixes)]
        totals = diffs[0]
        for d in diffs[1:]:
            totals = [(t << LIMB) + x for t, x in zip(totals, d, strict=True)]
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
