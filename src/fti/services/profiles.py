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

import itertools
import logging
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fti.backends.offline import SEQ
from fti.definitions.feature_group import FeatureGroupSpec
from fti.errors import NotFoundError, ValidationError
from fti.services.context import StoreContext
from fti.services.profile_sketches import (
    ColumnProfile,
    column_kind,
    merge_profiles,
    profile_column,
    summarize,
)

__all__ = [
    "SCHEMA",
    "Statistics",
    "enabled",
    "profile_rows",
    "profile_table",
    "record",
    "statistics",
    "table_profile",
]

log = logging.getLogger(__name__)

_DAY_US = 86_400 * 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: One row per (commit, bucket, column). ``day`` is days since 1970-01-01 UTC, null for the
#: whole-commit profile of a commit spanning several days. A commit that added no rows (schema
#: change) or removed rows gets one marker row with a null ``column`` and kind ``empty`` or
#: ``removed``.
SCHEMA = pa.schema(
    [
        ("table_version", pa.int64()),
        ("profile_id", pa.string()),
        ("day", pa.int64()),
        ("rows", pa.int64()),
        ("column", pa.string()),
        ("kind", pa.string()),
        ("count", pa.int64()),
        ("nulls", pa.int64()),
        ("non_finite", pa.int64()),
        ("min", pa.float64()),
        ("max", pa.float64()),
        ("min_text", pa.string()),
        ("max_text", pa.string()),
        ("mean", pa.float64()),
        ("m2", pa.float64()),
        ("kll", pa.binary()),
        ("hll", pa.binary()),
        ("freq", pa.binary()),
    ]
)
_PROFILE_FIELDS = SCHEMA.names[5:]


def enabled() -> bool:
    """False when ``FTI_PROFILES=0``: inserts then store no profile (healed lazily on read)."""
    return os.environ.get("FTI_PROFILES", "1").strip().lower() not in ("0", "false", "no", "off")


def profile_table(spec: FeatureGroupSpec) -> str:
    """The offline table holding ``spec``'s commit profiles."""
    return f"{spec.key}__profiles"


def table_profile(table: pa.Table, *, skip: tuple[str, ...] = ()) -> dict[str, ColumnProfile]:
    """Profile every column of ``table`` (but ``skip`` and the ingestion order)."""
    return {
        name: profile_column(col, column_kind(col.type))
        for name, col in zip(table.column_names, table.columns, strict=True)
        if name != SEQ and name not in skip
    }


def _rows_of(
    version: int, pid: str, day: int | None, n: int, profiles: dict[str, ColumnProfile]
) -> list[dict[str, Any]]:
    return [
        {
            "table_version": version,
            "profile_id": pid,
            "day": day,
            "rows": n,
            "column": name,
            **{f: getattr(p, f) for f in _PROFILE_FIELDS},
        }
        for name, p in profiles.items()
    ]


def _marker(version: int, pid: str, kind: str) -> dict[str, Any]:
    return {"table_version": version, "profile_id": pid, "rows": 0, "kind": kind}


def _days(spec: FeatureGroupSpec, rows: pa.Table) -> np.ndarray | None:
    if not spec.event_time or spec.event_time not in rows.column_names:
        return None
    ts = rows.column(spec.event_time)
    us = ts.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy()
    days: np.ndarray = np.floor_divide(us, _DAY_US)
    return days


def profile_rows(spec: FeatureGroupSpec, rows: pa.Table, version: int) -> pa.Table:
    """The profile rows (see :data:`SCHEMA`) of commit ``version``, which added ``rows``."""
    pid = uuid.uuid4().hex
    if rows.num_rows == 0:
        return pa.Table.from_pylist([_marker(version, pid, "empty")], schema=SCHEMA)
    skip = tuple(spec.primary_key)  # keys are identities, not features to describe
    days = _days(spec, rows)
    out: list[dict[str, Any]] = []
    if days is None:
        out = _rows_of(version, pid, None, rows.num_rows, table_profile(rows, skip=skip))
    elif days.min() == days.max():
        out = _rows_of(version, pid, int(days[0]), rows.num_rows, table_profile(rows, skip=skip))
    else:
        order = np.argsort(days, kind="stable")
        sorted_days = days[order]
        cuts = np.flatnonzero(np.diff(sorted_days)) + 1
        bounds = [0, *cuts.tolist(), len(order)]
        ordered = rows.take(pa.array(order))
        per_day: list[dict[str, ColumnProfile]] = []
        for lo, hi in itertools.pairwise(bounds):
            part = table_profile(ordered.slice(lo, hi - lo), skip=skip)
            per_day.append(part)
            out += _rows_of(version, pid, int(sorted_days[lo]), hi - lo, part)
        total = {name: merge_profiles([p[name] for p in per_day]) for name in per_day[0]}
        out += _rows_of(version, pid, None, rows.num_rows, total)
    return pa.Table.from_pylist(out, schema=SCHEMA)


def record(ctx: StoreContext, spec: FeatureGroupSpec, rows: pa.Table, version: int) -> None:
    """Store the profile of commit ``version`` (after the data commit; never fails it)."""
    if not enabled():
        return
    try:
        table = profile_table(spec)
        ctx.offline.create(table, SCHEMA)
        ctx.offline.append(table, profile_rows(spec, rows, version))
    except Exception:  # the data is committed; the next statistics() call heals the profile
        log.warning(
            "Could not store the profile of %s v%s table version %s; it will be computed on "
            "the next statistics() call.",
            spec.name,
            spec.version,
            version,
            exc_info=True,
        )


def _load(ctx: StoreContext, spec: FeatureGroupSpec) -> pa.Table:
    table = profile_table(spec)
    if not ctx.offline.exists(table):
        return SCHEMA.empty_table()
    dataset, _ = ctx.offline.dataset(table)
    return dataset.to_table()


def _dedupe(profiles: pa.Table) -> pa.Table:
    """One profile per table version (healing twice stores two equal ones)."""
    if profiles.num_rows == 0:
        return profiles
    ids = profiles.group_by(["table_version", "profile_id"]).aggregate([])
    keep: dict[int, str] = {}
    for v, pid in zip(
        ids.column("table_version").to_pylist(), ids.column("profile_id").to_pylist(), strict=True
    ):
        if v not in keep or pid < keep[v]:
            keep[v] = pid
    if len(keep) == ids.num_rows:
        return profiles
    return profiles.filter(pc.is_in(profiles.column("profile_id"), pa.array(list(keep.values()))))


def _heal(ctx: StoreContext, spec: FeatureGroupSpec, profiles: pa.Table, upto: int) -> pa.Table:
    """Profile the commits up to ``upto`` that have none, from the rows they added."""
    have = set(pc.unique(profiles.column("table_version")).to_pylist())
    missing = [v for v in range(upto + 1) if v not in have]
    if not missing:
        return profiles
    parts: list[pa.Table] = []
    for v in missing:
        added = ctx.offline.added_rows(spec.key, v)
        if added is None:
            parts.append(pa.Table.from_pylist([_marker(v, uuid.uuid4().hex, "removed")], SCHEMA))
        else:
            parts.append(
                profile_rows(
                    spec, added.drop_columns([SEQ]) if SEQ in added.column_names else added, v
                )
            )
    healed = pa.concat_tables(parts)
    table = profile_table(spec)
    ctx.offline.create(table, SCHEMA)
    ctx.offline.append(table, healed)
    return pa.concat_tables([profiles, healed])


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
    rounded = False
    lo = hi = None
    for what, value in (("start", start), ("end", end)):
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise ValidationError(
                f"statistics({what}={value!r}) must be a timezone-aware datetime, e.g. "
                "datetime(2024, 1, 1, tzinfo=timezone.utc)."
            )
    if start is not None:
        us = (start - _EPOCH) // timedelta(microseconds=1)
        lo = us // _DAY_US
        rounded |= us % _DAY_US != 0
    if end is not None:
        us = (end - _EPOCH) // timedelta(microseconds=1)
        hi = -(-us // _DAY_US)
        rounded |= us % _DAY_US != 0
    return lo, hi, rounded


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
    if start is not None and end is not None and end <= start:
        raise ValidationError(
            f"statistics(start={start.isoformat()}, end={end.isoformat()}): start must be "
            "before end."
        )
    if features is not None:
        unknown = [f for f in features if f not in spec.column_names]
        if unknown:
            raise ValidationError(
                f"statistics(features=...) names unknown columns {unknown} of feature group "
                f"{spec.name!r}; its columns are {list(spec.column_names)}."
            )
    latest = ctx.offline.version(spec.key) if ctx.offline.exists(spec.key) else None
    if version is not None and (latest is None or version > latest or version < 0):
        raise NotFoundError(
            f"Feature group {spec.name!r} v{spec.version} has no table version {version}; the "
            f"latest is {latest}. Pass a table version from an insert report (offline_version)."
        )
    upto = latest if version is None else version
    profiles = SCHEMA.empty_table()
    if upto is not None:
        profiles = _dedupe(_heal(ctx, spec, _load(ctx, spec), upto))
        profiles = profiles.filter(pc.less_equal(profiles.column("table_version"), upto))
    profiles = profiles.filter(pc.is_valid(profiles.column("column")))
    day = profiles.column("day")
    if windowed:
        mask = pc.is_valid(day)
        if lo is not None:
            mask = pc.and_(mask, pc.greater_equal(day, lo))
        if hi is not None:
            mask = pc.and_(mask, pc.less(day, hi))
        selected = profiles.filter(mask)
    else:
        # A commit's whole-commit profile if it has one, else its single day (or no-time) one.
        multi = pc.unique(profiles.filter(pc.is_null(day)).column("table_version"))
        in_multi = pc.is_in(profiles.column("table_version"), multi)
        selected = profiles.filter(pc.or_(pc.is_null(day), pc.invert(in_multi)))
    result = _merge(selected, features)
    return Statistics(
        feature_group=spec.name,
        version=spec.version,
        table_version=upto,
        rows=_row_count(selected),
        commits=len(pc.unique(selected.column("table_version"))),
        start=None if lo is None else _EPOCH + timedelta(days=lo),
        end=None if hi is None else _EPOCH + timedelta(days=hi),
        rounded=windowed and rounded,
        features=result,
    )


def _row_count(selected: pa.Table) -> int:
    if selected.num_rows == 0:
        return 0
    buckets = selected.group_by(["table_version", "day"]).aggregate([("rows", "max")])
    return int(pc.sum(buckets.column("rows_max")).as_py() or 0)


def _merge(selected: pa.Table, features: list[str] | None) -> dict[str, dict[str, Any]]:
    by_column: dict[str, list[ColumnProfile]] = {}
    columns = {f: selected.column(f).to_pylist() for f in _PROFILE_FIELDS}
    for i, name in enumerate(selected.column("column").to_pylist()):
        if features is not None and name not in features:
            continue
        by_column.setdefault(name, []).append(
            ColumnProfile(**{f: columns[f][i] for f in _PROFILE_FIELDS})
        )
    out = {name: summarize(merge_profiles(parts)) for name, parts in by_column.items()}
    for name in features or []:
        out.setdefault(name, {"kind": "other", "count": 0, "nulls": 0})
    return out
