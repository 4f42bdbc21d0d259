"""Drift statistics from the per-commit profiles (:mod:`fti.services.profiles`) instead of a scan.

A feature group stores, for each commit and UTC day of event time, mergeable profiles of its
columns. A drift window ``[start, end)`` of such a group splits into the whole UTC days inside it,
whose profiles are merged, and at most two partial days at its edges, which are scanned (one
DuckDB pass, as without sketches). What each statistic then is:

- rows, nulls (null or NaN), and so every null fraction: **exact** (profile counts add up);
- categorical counts: **exact**; strings from the frequent-items sketch only while it still
  holds every value with its exact count (up to ~750 distinct values a window), bools from
  their exact mean;
- numeric bins (PSI, and JS/Hellinger on numbers): the bin edges are the deciles of the
  reference's merged KLL sketch (k=200: each edge's rank is within ~1.3% of its decile), and
  each bin's share of a window comes from the sketch's CDF at the edges: within
  :data:`BIN_ERROR` (1.65%, the sketch's double-sided PMF bound at 99% confidence) of the
  exact share over the same edges. Runs flag such features ``approx: true``;
- KS, Wasserstein and mean shift read the values themselves: always a scan.

The sketches are used only where they describe exactly the rows a scan would read: the group
has an event time, the window holds at least one whole day, no commit removed rows
(``delete_rows``: the profiles describe rows written, so the profiled rows must add up to the
table's), no numeric feature holds ±inf (profiles count inf with NaN; the scan does not), and
every string feature's sketch is still exact. Otherwise the window is scanned. Set
``FTI_DRIFT_SKETCHES=0`` to always scan.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import datasketches as ds
import numpy as np
import pyarrow as pa

from fti.definitions.feature_group import FeatureGroupSpec
from fti.services import profiles
from fti.services.context import StoreContext
from fti.services.profile_sketches import KLL_K, ColumnProfile, merge_profiles

__all__ = ["BIN_ERROR", "Sketched", "bin_counts", "enabled", "merged_kll", "plan"]

_DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Each numeric bin's share of a window is within this of the exact share (KLL k=200, 99%).
BIN_ERROR = ds.kll_doubles_sketch(KLL_K).normalized_rank_error(True)


def enabled() -> bool:
    """False when ``FTI_DRIFT_SKETCHES=0``: every drift window is scanned."""
    flag = os.environ.get("FTI_DRIFT_SKETCHES", "1").strip().lower()
    return flag not in ("0", "false", "no", "off")


@dataclass(frozen=True)
class Sketched:
    """The whole-day part of a window, merged from profiles: rows, and per feature its merged
    profile (None: the column holds no value in those days); ``partial``: the ``[start, end)``
    event-time ranges of the partial days a scan must still read (of ``column``)."""

    rows: int
    column: str
    profiles: dict[str, ColumnProfile | None] = field(default_factory=dict)
    partial: list[tuple[datetime, datetime]] = field(default_factory=list)

    def partial_of(self, data: Any) -> Any:
        """``data`` (an Arrow dataset) filtered to the partial days (row groups outside them
        are skipped by their statistics)."""
        import pyarrow.dataset as pds  # not at import: it imports pandas (~0.3 s)

        t = pa.timestamp("us", tz="UTC")
        expr: Any = None
        for lo, hi in self.partial:
            part = (pds.field(self.column) >= pa.scalar(lo, t)) & (
                pds.field(self.column) < pa.scalar(hi, t)
            )
            expr = part if expr is None else expr | part
        return data.filter(expr)


def _day(t: datetime) -> int:
    return (t - _EPOCH) // _DAY


def _whole_days(
    bounds: tuple[datetime | None, datetime | None],
) -> tuple[int | None, int | None]:
    """First whole day and one past the last whole day of ``[start, end)`` (None: open)."""
    start, end = bounds
    lo = None if start is None else -(-(start - _EPOCH) // _DAY)
    hi = None if end is None else _day(end)
    return lo, hi


def _partial(
    bounds: tuple[datetime | None, datetime | None], lo: int | None, hi: int | None
) -> list[tuple[datetime, datetime]]:
    """The partial days at the window's edges, as ``[start, end)`` ranges."""
    start, end = bounds
    out: list[tuple[datetime, datetime]] = []
    if start is not None and lo is not None and _EPOCH + lo * _DAY > start:
        out.append((start, _EPOCH + lo * _DAY))
    if end is not None and hi is not None and _EPOCH + hi * _DAY < end:
        out.append((_EPOCH + hi * _DAY, end))
    return out


def _sketchable(p: ColumnProfile | None, kind: str) -> bool:
    if p is None:
        return True
    if kind == "numeric":
        return (
            p.kind in ("integer", "float")
            and p.non_finite == 0
            and (p.kll is not None or not p.count)
        )
    if p.kind == "integer":  # a bool column (0/1)
        return p.mean is not None or not p.count
    if p.kind != "string":
        return False
    if p.freq is None:
        return not p.count
    items = ds.frequent_strings_sketch.deserialize(p.freq).get_frequent_items(
        ds.frequent_items_error_type.NO_FALSE_NEGATIVES, 0
    )
    return sum(int(lo) for _v, _e, lo, _hi in items) == p.count


def plan(
    ctx: StoreContext,
    g: FeatureGroupSpec,
    version: int,
    table_rows: int,
    columns: Mapping[str, str],
    kinds: Mapping[str, str],
    bounds: tuple[datetime | None, datetime | None],
) -> Sketched | None:
    """The sketched part of one window of ``g`` at table ``version`` (``table_rows`` rows),
    for ``columns`` (feature -> column); None where a scan must read it all (see the module
    docstring)."""
    if not enabled() or not g.event_time:
        return None
    if any(c in g.primary_key for c in columns.values()):
        return None  # keys are not profiled (a view may select another group's key column)
    lo, hi = _whole_days(bounds)
    if lo is not None and hi is not None and hi <= lo:
        return None  # no whole day inside
    found = profiles.commit_profiles(ctx, g, version)
    whole = {e.table_version for e in found if e.day is None}
    per_commit = {
        (e.table_version, e.day): e.rows
        for e in found
        if e.day is None or e.table_version not in whole
    }
    if sum(per_commit.values()) != table_rows:
        return None  # rows were removed (or are not all profiled): only a scan is exact
    first = -(2**62) if lo is None else lo
    last = 2**62 if hi is None else hi
    days = [e for e in found if e.day is not None and first <= e.day < last]
    rows = sum({(e.table_version, e.day): e.rows for e in days}.values())
    merged: dict[str, ColumnProfile | None] = {}
    for feature, column in columns.items():
        parts = [e.profile for e in days if e.column == column and e.profile is not None]
        merged[feature] = merge_profiles(parts) if parts else None
        if not _sketchable(merged[feature], kinds[feature]):
            return None
    return Sketched(rows, g.event_time, merged, _partial(bounds, lo, hi))


def merged_kll(p: ColumnProfile | None, extra: np.ndarray) -> Any:
    """A KLL sketch of the whole days' values (``p``) and the partial days' ``extra`` values."""
    sketch = ds.kll_doubles_sketch(KLL_K)
    if p is not None and p.kll is not None:
        sketch.merge(ds.kll_doubles_sketch.deserialize(p.kll))
    values = np.sort(np.asarray(extra, dtype=np.float64))
    if len(values):
        sketch.update(np.require(values, np.float64, ["C", "W"]))
    return sketch


def bin_counts(
    p: ColumnProfile | None, kind: str, edges: list[float] | None
) -> tuple[int, dict[Any, int]]:
    """(non-null values, counts per bin or category) of the whole days' profile ``p``."""
    if p is None or not p.count:
        return 0, {}
    if kind == "numeric":
        assert edges is not None
        assert p.kll is not None
        if not edges:
            return p.count, {0: p.count}
        kll = ds.kll_doubles_sketch.deserialize(p.kll)
        cdf = [0.0, *kll.get_cdf(edges, True)[: len(edges)], 1.0]  # P(x <= edge)
        shares = np.diff(np.asarray(cdf))
        counts = {i: round(float(s) * p.count) for i, s in enumerate(shares)}
        return p.count, {k: c for k, c in counts.items() if c}
    if p.kind == "integer":  # bool: the exact share of true values
        trues = round((p.mean or 0.0) * p.count)
        return p.count, {k: c for k, c in (("true", trues), ("false", p.count - trues)) if c}
    assert p.freq is not None
    items = ds.frequent_strings_sketch.deserialize(p.freq).get_frequent_items(
        ds.frequent_items_error_type.NO_FALSE_NEGATIVES, 0
    )
    return p.count, {v: int(lo) for v, _e, lo, _hi in items if int(lo)}
