"""Where commit profiles live: a small Delta table per feature group, read through a cache.

``<offline table>__profiles`` holds one row per (commit, bucket, column) (see :data:`SCHEMA`).
A process reads it once and then only the profile commits added since (the offline store's
``added_rows``), so ``fg.statistics`` merges from memory after the first call.
"""

from __future__ import annotations

import itertools
import threading
import uuid
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from fti.backends.offline import SEQ
from fti.definitions.feature_group import FeatureGroupSpec
from fti.services.context import StoreContext
from fti.services.profile_sketches import (
    ColumnProfile,
    column_kind,
    merge_profiles,
    profile_column,
)

__all__ = [
    "SCHEMA",
    "Entry",
    "append",
    "decode_profiles",
    "entries",
    "owner",
    "profile_rows",
    "profile_table",
    "table_profile",
    "whole_table_rows",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: One row per (commit, bucket, column). ``profile_id`` is ``<owner>-<uuid>`` (see
#: :func:`owner`). ``day`` is days since 1970-01-01 UTC, null for the whole-commit profile of a
#: commit spanning several days. A commit that added no rows (schema change) or removed rows
#: gets one marker row with a null ``column`` and kind ``empty`` or ``removed``.
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


def owner(spec: FeatureGroupSpec) -> str:
    """What ties a profile to this incarnation of the group (its creation time, in µs): a group
    deleted and created again under the same name and version starts its table versions anew,
    so the profiles of the old one must not count. Profile ids start with it."""
    return str((spec.created_at - _EPOCH) // timedelta(microseconds=1))


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
    # Arrow's cast to date32 floors to the UTC day (negative instants included), ~20x faster
    # than numpy's int64 floor division of the microseconds.
    utc = ts.cast(pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us"))
    days: np.ndarray = utc.cast(pa.date32()).cast(pa.int32()).to_numpy()
    return days


def _per_day(
    rows: pa.Table, skip: tuple[str, ...], order: np.ndarray, bounds: list[int]
) -> list[dict[str, ColumnProfile]]:
    """The profile of each day's rows, ``order`` being a stable sort of the rows by day and
    ``bounds`` the start of each day in it (and the end).

    One column at a time, put in day order into one reused buffer: numeric columns without
    nulls are scattered by numpy (``out[position] = values``: reading in row order and writing
    one run per day is cache-friendly, several times faster than gathering ``values[order]``,
    which jumps through memory for every row); other columns are taken by Arrow."""
    n = len(order)
    position = np.empty(n, np.int64)
    position[order] = np.arange(n, dtype=np.int64)
    buffers: dict[np.dtype[Any], np.ndarray] = {}
    days: list[dict[str, ColumnProfile]] = [{} for _ in range(len(bounds) - 1)]
    for name, col in zip(rows.column_names, rows.columns, strict=True):
        if name == SEQ or name in skip:
            continue
        typ = col.type
        kind = column_kind(typ)
        plain = pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_timestamp(typ)
        if plain and not col.null_count:
            values = (col.cast(pa.int64()) if pa.types.is_timestamp(typ) else col).to_numpy()
            out = buffers.get(values.dtype)
            if out is None:
                out = buffers[values.dtype] = np.empty(n, values.dtype)
            out[position] = values
            ordered: pa.Array = pa.array(out)
            if pa.types.is_timestamp(typ):
                ordered = ordered.cast(typ)
        else:
            ordered = col.take(pa.array(order)).combine_chunks()
        for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
            days[i][name] = profile_column(pa.chunked_array([ordered.slice(lo, hi - lo)]), kind)
    return days


def whole_table_rows(table: pa.Table, version: int) -> pa.Table:
    """Profile rows of a whole table in one bucket (e.g. a training dataset split)."""
    n = table.num_rows
    return pa.Table.from_pylist(
        _rows_of(version, uuid.uuid4().hex, None, n, table_profile(table)), schema=SCHEMA
    )


def decode_profiles(table: pa.Table) -> dict[str, ColumnProfile]:
    """Column -> profile, from the rows :func:`whole_table_rows` made."""
    return {e.column: e.profile for e in _decode(table) if e.column and e.profile}


def profile_rows(spec: FeatureGroupSpec, rows: pa.Table | None, version: int) -> pa.Table:
    """The profile rows (see :data:`SCHEMA`) of commit ``version``, which added ``rows``
    (None: the commit also removed rows, and gets a ``removed`` marker)."""
    pid = f"{owner(spec)}-{uuid.uuid4().hex}"
    if rows is None:
        return pa.Table.from_pylist([_marker(version, pid, "removed")], schema=SCHEMA)
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
        low = int(days.min())
        if int(days.max()) - low < 2**16:
            # Day offsets fit 16 bits: numpy's stable sort of them is a radix sort, O(n), and
            # the days' sizes are counted, not read off the sorted days.
            offsets = (days - low).astype(np.uint16)
            order = np.argsort(offsets, kind="stable")
            counts = np.bincount(offsets)
            present = np.flatnonzero(counts)
            bounds = [0, *np.cumsum(counts[present]).tolist()]
            day_numbers = (present + low).tolist()
        else:
            order = np.argsort(days, kind="stable")
            sorted_days = days[order]
            cuts = np.flatnonzero(np.diff(sorted_days)) + 1
            bounds = [0, *cuts.tolist(), len(order)]
            day_numbers = sorted_days[bounds[:-1]].tolist()
        per_day = _per_day(rows, skip, order, bounds)
        for (lo, hi), day, part in zip(
            itertools.pairwise(bounds), day_numbers, per_day, strict=True
        ):
            out += _rows_of(version, pid, int(day), hi - lo, part)
        total = {name: merge_profiles([p[name] for p in per_day]) for name in per_day[0]}
        out += _rows_of(version, pid, None, rows.num_rows, total)
    return pa.Table.from_pylist(out, schema=SCHEMA)


#: Every this many profile commits, the profile table is compacted and checkpointed, so a
#: process's first ``statistics()`` opens a few files and a short log, not one per commit.
COMPACT_EVERY = 16


def append(ctx: StoreContext, spec: FeatureGroupSpec, rows: pa.Table) -> None:
    """Store profile rows (one atomic commit of the profile table)."""
    table = profile_table(spec)
    ctx.offline.create(table, SCHEMA)
    version = ctx.offline.append(table, rows)
    if version > 0 and version % COMPACT_EVERY == 0:
        ctx.offline.compact(table)


@dataclass(frozen=True)
class Entry:
    """One stored profile row, decoded."""

    table_version: int
    profile_id: str
    day: int | None
    rows: int
    column: str | None
    profile: ColumnProfile | None


def _decode(table: pa.Table) -> list[Entry]:
    cols = {name: table.column(name).to_pylist() for name in SCHEMA.names}
    out: list[Entry] = []
    for i in range(table.num_rows):
        column = cols["column"][i]
        profile = (
            None if column is None else ColumnProfile(**{f: cols[f][i] for f in _PROFILE_FIELDS})
        )
        out.append(
            Entry(
                cols["table_version"][i],
                cols["profile_id"][i],
                cols["day"][i],
                cols["rows"][i] or 0,
                column,
                profile,
            )
        )
    return out


# Profiles never change once written: per store and profile table, what was read and up to
# which version of the profile table.
_cache: weakref.WeakKeyDictionary[StoreContext, dict[str, tuple[int, list[Entry]]]] = (
    weakref.WeakKeyDictionary()
)
_cache_lock = threading.Lock()


def entries(ctx: StoreContext, spec: FeatureGroupSpec) -> list[Entry]:
    """Every stored profile row of ``spec`` (cached; only new profile commits are read)."""
    table = profile_table(spec)
    if not ctx.offline.exists(table):
        return []
    latest = ctx.offline.version(table)
    with _cache_lock:
        cached = _cache.get(ctx, {}).get(table)
    if cached is not None and cached[0] == latest:
        return cached[1]
    found: list[Entry] | None = None
    if cached is not None and cached[0] < latest:
        found = list(cached[1])
        for v in range(cached[0] + 1, latest + 1):
            added = ctx.offline.added_rows(table, v)
            if added is None:  # rewritten (e.g. compacted): read it whole
                found = None
                break
            found += _decode(added)
    if found is None:
        dataset, latest = ctx.offline.dataset(table, version=latest)
        found = _decode(dataset.to_table())
    with _cache_lock:
        _cache.setdefault(ctx, {})[table] = (latest, found)
    return found
