"""Numpy kernels of the columnar state: segment bisection, range extremes and exact float
limbs. Every function works on whole arrays of queries at once."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = [
    "I64_MAX",
    "I64_MIN",
    "LIMB",
    "RangeExtremes",
    "limb_count",
    "search",
    "split_limbs",
    "typed_array",
]

_BLOCK = 32
I64_MIN = np.iinfo(np.int64).min
I64_MAX = np.iinfo(np.int64).max
LIMB = 31  # bits per limb of an exact float sum


class RangeExtremes:
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


def typed_array(values: np.ndarray, null: np.ndarray, out_type: pa.DataType) -> pa.Array:
    base = pa.float64() if values.dtype.kind == "f" else pa.int64()
    return pa.array(values, base, mask=null).cast(out_type)


def search(
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


def limb_count(emin: int, emax: int) -> int:
    """How many limbs hold ``M * 2**(e - emin)`` for 53-bit mantissas and exponents in range."""
    return -(-(emax - emin + 53) // LIMB)


def split_limbs(x: np.ndarray, base: int, count: int) -> list[np.ndarray]:
    """Each finite float ``x = M * 2**e`` (|M| < 2**53) as the exact integer ``M * 2**(e -
    base)``, split into ``count`` signed 31-bit limbs (int64; their prefix sums stay exact for
    up to 2**32 events)."""
    frac, exp = np.frexp(x)
    mant = np.ldexp(frac, 53).astype(np.int64)  # exact: 53 significant bits at most
    shift = np.where(mant != 0, exp.astype(np.int64) - 53 - base, 0)
    sign = np.sign(mant)
    mag = np.abs(mant).astype(np.uint64)
    mask = np.uint64((1 << LIMB) - 1)
    limbs = []
    for k in range(count):
        d = shift - LIMB * k  # where the mantissa's lowest bit falls relative to limb k
        up = np.left_shift(mag, np.clip(d, 0, LIMB).astype(np.uint64)) & mask
        down = np.right_shift(mag, np.clip(-d, 0, 63).astype(np.uint64)) & mask
        limb = np.where(d >= LIMB, 0, np.where(d >= 0, up, np.where(d > -64, down, 0)))
        limbs.append(limb.astype(np.int64) * sign)
    return limbs
