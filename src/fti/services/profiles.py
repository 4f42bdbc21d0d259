"""Statistics of every commit: a profile per commit, merged into any window without rescanning.

After each offline commit of a feature group, :func:`record` stores a profile of the rows that
commit *wrote* (see :mod:`fti.services.profile_sketches`), keyed to the table version, in a small
Delta table next to the group's offline table (``<offline table>__profiles``; sketches as binary
columns). A commit whose rows span several UTC days gets one profile per day plus one for the
whole commit; a commit within one day gets just its day's profile. :func:`statistics` merges:

- the whole table, or the table ``as of`` a table version (``version=``): one profile per commit;
- an event-time window ``[start, end)``: the day profiles inside it. A window is rounded *out*
  to whole UTC days (the result says which window it covers and whether it was rounded), so
  the statistics are exact for the rows of those days, never a guess about part of a day.

The data commit is the truth. A profile of a table version the query does not reach is ignored;
a commit without a profile (a crash between the two writes, ``FTI_PROFILES=0``, a write by
another tool) is profiled from the rows it added, in one pass, by the next :func:`statistics`
call, and stored. Two processes that heal the same commit store the same profile twice: one is
used. Commits that removed rows (``delete_rows``) are not subtracted: profiles describe the rows
written, including rows later corrected or deleted.

Set ``FTI_PROFILES=0`` to skip profiling at insert time (e.g. to measure its cost).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from fti.definitions.feature_group import FeatureGroupSpec
from fti.errors import NotFoundError, ValidationError
from fti.services import profile_store
from fti.services.context import StoreContext
from fti.services.profile_sketches import ColumnProfile, merge_profiles, summarize
from fti.services.profile_store import Entry

__all__ = ["Statistics", "commit_profiles", "enabled", "record", "statistics"]

log = logging.getLogger(__name__)

_DAY_US = 86_400 * 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def enabled() -> bool:
    """False when ``FTI_PROFILES=0``: inserts then store no profile (healed lazily on read)."""
    return os.environ.get("FTI_PROFILES", "1").strip().lower() not in ("0", "false", "no", "off")


def prepare(spec: FeatureGroupSpec, rows: pa.Table) -> pa.Table | None:
    """The profile rows of ``rows``, before their commit exists (table version -1, set by
    :func:`record`); None when profiling is off or fails (the commit is then healed lazily).

    Pure computation on an immutable table: an insert runs it in a thread while its offline
    commit is written (the Parquet encoding releases the GIL; the sketch updates hold it)."""
    if not enabled():
        return None
    try:
        return profile_store.profile_rows(spec, rows, -1)
    except Exception:
        log.warning(
            "Could not profile an insert into %s v%s", spec.name, spec.version, exc_info=True
        )
        return None


def record(
    ctx: StoreContext,
    spec: FeatureGroupSpec,
    rows: pa.Table,
    version: int,
    *,
    prepared: pa.Table | None = None,
) -> None:
    """Store the profile of the rows commit ``version`` wrote (``prepared`` by :func:`prepare`,
    else computed now), keyed to it.

    Runs after the data commit and never fails it: a commit left without a profile is profiled
    by the next ``statistics()`` call.
    """
    if not enabled():
        return
    try:
        if prepared is None:
            prepared = profile_store.profile_rows(spec, rows, version)
        stored = prepared.set_column(
            0, "table_version", pa.array([version] * prepared.num_rows, pa.int64())
        )
        if version == 1:
            # Table version 0 is the creation commit (fti creates offline tables empty): its
            # marker goes with the first insert's profile, so no statistics() call has to
            # heal it (a read of the commit and a write of the profile table).
            created = profile_store.profile_rows(spec, rows.slice(0, 0), 0)
            stored = pa.concat_tables([created, stored])
        profile_store.append(ctx, spec, stored)
    except Exception:
        log.warning(
            "Could not store the profile of %s v%s table version %s; the next statistics() "
            "call computes it.",
            spec.name,
            spec.version,
            version,
            exc_info=True,
        )


@dataclass(frozen=True)
class Statistics:
    """Merged statistics of a feature group's rows: ``fg.statistics(...)``.

    ``features`` maps a column to its statistics: ``count`` (non-null), ``nulls``, ``min``,
    ``max``; numeric columns ``mean``, ``stddev`` (population), ``quantiles`` (p01 … p99 from a
    KLL sketch) and ``rank_error`` (each quantile's true rank is within this of its nominal
    rank); ``distinct`` (HyperLogLog estimate with 95% bounds; not for floats); strings ``top``
    (frequent items with bounds, ``top_error_bound``).
    """

    feature_group: str
    version: int
    table_version: int | None
    rows: int
    commits: int
    start: datetime | None
    end: datetime | None
    rounded: bool
    features: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __getitem__(self, feature: str) -> dict[str, Any]:
        return self.features[feature]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable (datetimes as ISO 8601)."""
        return {
            "feature_group": self.feature_group,
            "version": self.version,
            "table_version": self.table_version,
            "rows": self.rows,
            "commits": self.commits,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "rounded": self.rounded,
            "features": self.features,
        }


def _day_bounds(
    start: datetime | None, end: datetime | None
) -> tuple[int | None, int | None, bool]:
    """First day and one-past-last day of ``[start, end)`` rounded out, and whether it was."""
    for what, value in (("start", start), ("end", end)):
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise ValidationError(
                f"statistics({what}={value!r}) must be a timezone-aware datetime, e.g. "
                "datetime(2024, 1, 1, tzinfo=timezone.utc)."
            )
    if start is not None and end is not None and end <= start:
        raise ValidationError(
            f"statistics(start={start.isoformat()}, end={end.isoformat()}): start must be "
            "before end."
        )
    rounded = False
    lo = hi = None
    if start is not None:
        us = (start - _EPOCH) // timedelta(microseconds=1)
        lo, rest = divmod(us, _DAY_US)
        rounded |= rest != 0
    if end is not None:
        us = (end - _EPOCH) // timedelta(microseconds=1)
        hi = -(-us // _DAY_US)
        rounded |= us % _DAY_US != 0
    return lo, hi, rounded


def _heal(ctx: StoreContext, spec: FeatureGroupSpec, found: list[Entry], upto: int) -> list[Entry]:
    """Profile the commits up to ``upto`` that have none, from the rows they added."""
    have = {e.table_version for e in found}
    missing = [v for v in range(upto + 1) if v not in have]
    if not missing:
        return found
    parts: list[pa.Table] = []
    for v in missing:
        added = ctx.offline.added_rows(spec.key, v)
        parts.append(profile_store.profile_rows(spec, added, v))
    profile_store.append(ctx, spec, pa.concat_tables(parts))
    mine = profile_store.owner(spec) + "-"
    return [e for e in profile_store.entries(ctx, spec) if e.profile_id.startswith(mine)]


def _dedupe(found: list[Entry]) -> list[Entry]:
    """One profile per table version (two processes healing one commit store two equal ones)."""
    keep: dict[int, str] = {}
    for e in found:
        if e.table_version not in keep or e.profile_id < keep[e.table_version]:
            keep[e.table_version] = e.profile_id
    return [e for e in found if keep[e.table_version] == e.profile_id]


def commit_profiles(ctx: StoreContext, spec: FeatureGroupSpec, upto: int) -> list[Entry]:
    """The column profiles of every commit of ``spec`` up to table version ``upto`` (commits
    without one are profiled now), one per commit, bucket and column (drift monitors merge
    them too)."""
    mine = profile_store.owner(spec) + "-"
    found = [e for e in profile_store.entries(ctx, spec) if e.profile_id.startswith(mine)]
    found = _heal(ctx, spec, found, upto)
    # A profile of a version beyond the one asked for (or not yet visible) is ignored.
    return [e for e in _dedupe(found) if e.table_version <= upto and e.column is not None]


def statistics(
    ctx: StoreContext,
    spec: FeatureGroupSpec,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    version: int | None = None,
    features: list[str] | None = None,
) -> Statistics:
    """Merge commit profiles into statistics of the table, a table version or a window."""
    windowed = start is not None or end is not None
    if windowed and not spec.event_time:
        raise ValidationError(
            f"Feature group {spec.name!r} has no event time, so statistics(start=, end=) has no "
            "window to cut; call statistics() without start and end."
        )
    lo, hi, rounded = _day_bounds(start, end)
    if features is not None:
        unknown = [f for f in features if f not in spec.column_names]
        if unknown:
            raise ValidationError(
                f"statistics(features=...) names unknown columns {unknown} of feature group "
                f"{spec.name!r}; its columns are {list(spec.column_names)}."
            )
    latest = ctx.offline.version(spec.key) if ctx.offline.exists(spec.key) else None
    if version is not None and (latest is None or not 0 <= version <= latest):
        raise NotFoundError(
            f"Feature group {spec.name!r} v{spec.version} has no table version {version}; the "
            f"latest is {latest}. Pass a table version from an insert report (offline_version)."
        )
    upto = latest if version is None else version
    found = [] if upto is None else commit_profiles(ctx, spec, upto)
    if windowed:
        first = -(2**62) if lo is None else lo
        last = 2**62 if hi is None else hi
        selected = [e for e in found if e.day is not None and first <= e.day < last]
    else:
        # A commit's whole-commit profile if it has one, else its one day (or timeless) one.
        whole = {e.table_version for e in found if e.day is None}
        selected = [e for e in found if e.day is None or e.table_version not in whole]
    buckets = {(e.table_version, e.day): e.rows for e in selected}
    return Statistics(
        feature_group=spec.name,
        version=spec.version,
        table_version=upto,
        rows=sum(buckets.values()),
        commits=len({e.table_version for e in selected}),
        start=None if lo is None else _EPOCH + timedelta(days=lo),
        end=None if hi is None else _EPOCH + timedelta(days=hi),
        rounded=windowed and rounded,
        features=_merge(selected, features),
    )


def _merge(selected: list[Entry], features: list[str] | None) -> dict[str, dict[str, Any]]:
    by_column: dict[str, list[ColumnProfile]] = {}
    for e in selected:
        if e.column is None or e.profile is None:
            continue
        if features is None or e.column in features:
            by_column.setdefault(e.column, []).append(e.profile)
    out = {name: summarize(merge_profiles(parts)) for name, parts in by_column.items()}
    for name in features or []:
        out.setdefault(name, {"kind": "other", "count": 0, "nulls": 0})
    return out
