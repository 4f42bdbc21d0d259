"""Cron schedules in the registry (kind ``"schedule"``) and the leases that keep one run per
pipeline active (kind ``"lock"``).

A schedule's cursor moves by compare-and-set (:func:`advance`), so two schedulers never both
move it past a tick. A lease is a record per pipeline naming its holder and expiry; taking,
renewing and releasing it are compare-and-set on the record's revision, so of two schedulers
one wins and the other is told the pipeline is busy. A lease whose holder died expires and is
taken over. Stored bodies keep every key they had: an update changes only what it names.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fti.definitions.schedule import Schedule
from fti.errors import ConflictError, NotFoundError
from fti.services.context import StoreContext

__all__ = [
    "KIND",
    "LOCK_KIND",
    "Lease",
    "acquire_lease",
    "advance",
    "create",
    "delete",
    "find",
    "get",
    "lease_name",
    "list_schedules",
    "release_lease",
    "renew_lease",
]

KIND = "schedule"
LOCK_KIND = "lock"
_ADVANCE_ATTEMPTS = 10


def create(ctx: StoreContext, schedule: Schedule) -> Schedule:
    """Store a new schedule; ConflictError if one of that name exists."""
    try:
        record = ctx.registry.create(KIND, schedule.name, 1, schedule.to_body())
    except ConflictError:
        raise ConflictError(
            f"Schedule {schedule.name!r} already exists. Remove it first ('fti schedule remove "
            f"{schedule.name}') or pick another name."
        ) from None
    return Schedule.from_body(record.body)


def find(ctx: StoreContext, name: str) -> Schedule | None:
    """The schedule ``name``, or None."""
    record = ctx.registry.get(KIND, name, 1)
    return None if record is None else Schedule.from_body(record.body)


def get(ctx: StoreContext, name: str) -> Schedule:
    """The schedule ``name``; NotFoundError naming the existing ones."""
    found = find(ctx, name)
    if found is None:
        raise NotFoundError(
            f"Schedule {name!r} does not exist. Existing: {[s.name for s in list_schedules(ctx)]}."
        )
    return found


def list_schedules(ctx: StoreContext) -> list[Schedule]:
    """Every schedule, by name."""
    return [Schedule.from_body(r.body) for r in ctx.registry.records(KIND)]


def delete(ctx: StoreContext, name: str) -> None:
    """Remove a schedule (NotFoundError if there is none)."""
    get(ctx, name)
    ctx.registry.delete(KIND, name, 1)


def advance(ctx: StoreContext, name: str, tick: datetime) -> Schedule | None:
    """Move the cursor to ``tick`` (compare-and-set, re-read when the schedule was edited
    meanwhile); None if the schedule was removed."""
    for _ in range(_ADVANCE_ATTEMPTS):
        record = ctx.registry.get(KIND, name, 1)
        if record is None:
            return None
        body = {**record.body, "last_tick": tick.isoformat()}
        try:
            updated = ctx.registry.update(KIND, name, 1, body, revision=record.revision)
        except ConflictError:
            continue
        return Schedule.from_body(updated.body)
    raise ConflictError(f"Schedule {name!r} keeps changing; cannot move its cursor.")


def lease_name(function: str) -> str:
    """The lease record's name for a pipeline (``FILE.py:FUNC``, resolved path)."""
    return "pipeline_" + hashlib.sha256(function.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Lease:
    """A lease held by this process: the stored record's name, body and revision."""

    name: str
    body: dict[str, Any]
    revision: int

    @property
    def holder(self) -> str | None:
        holder = self.body.get("holder")
        return None if holder is None else str(holder)


def acquire_lease(
    ctx: StoreContext,
    function: str,
    *,
    holder: str,
    schedule: str,
    now: datetime,
    expires_at: datetime,
) -> Lease:
    """Take the pipeline's lease; ConflictError if another holder has a live one or took it
    first (the message says which)."""
    name = lease_name(function)
    body = {
        "function": function,
        "holder": holder,
        "schedule": schedule,
        "acquired_at": now.isoformat(),
        "expires_at": expires_at.isoformat(),
    }
    record = ctx.registry.get(LOCK_KIND, name, 1)
    if record is not None:
        held_by = record.body.get("holder")
        expires = record.body.get("expires_at")
        if held_by and expires and datetime.fromisoformat(expires) > now:
            raise ConflictError(f"pipeline busy (held by {held_by})")
    try:
        if record is None:
            record = ctx.registry.create(LOCK_KIND, name, 1, body)
        else:
            record = ctx.registry.update(LOCK_KIND, name, 1, body, revision=record.revision)
    except ConflictError:
        raise ConflictError("another scheduler took the pipeline first") from None
    return Lease(record.name, record.body, record.revision)


def renew_lease(ctx: StoreContext, lease: Lease, expires_at: datetime) -> Lease:
    """Extend a held lease; ConflictError if it was taken over after it expired."""
    body = {**lease.body, "expires_at": expires_at.isoformat()}
    record = ctx.registry.update(LOCK_KIND, lease.name, 1, body, revision=lease.revision)
    return Lease(record.name, record.body, record.revision)


def release_lease(ctx: StoreContext, lease: Lease) -> None:
    """Free a held lease. One taken over after it expired is left to its new holder."""
    body = {**lease.body, "holder": None, "expires_at": None, "run": None}
    with contextlib.suppress(ConflictError):
        ctx.registry.update(LOCK_KIND, lease.name, 1, body, revision=lease.revision)
