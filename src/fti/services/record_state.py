"""The lifecycle state of a registry record, kept in its body next to the definition.

- ``deprecated``: the object is kept and works, is hidden from lists (unless asked for) and
  warns (:class:`~fti.errors.DeprecatedWarning`) when it is opened.
- ``deleting``: a deletion has started (see :mod:`fti.services.deletion`). The record is set so
  *before* any file is removed and removed itself *after* the last one, so a record never
  points at missing files while it is usable: an interrupted deletion leaves a record that
  every read refuses, naming the call that finishes it.
- ``retired``: what is left of a deleted model or training dataset version, whose numbers are
  handed out by ``create_next``: the stub keeps the number taken, so lineage that names
  ``delays:3`` never comes to mean another model.

Services read these keys through :func:`check_usable` and :func:`listed`; whoever rewrites a
record body keeps them with :func:`carry`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fti.backends.registry import Record
from fti.errors import ConflictError, DeprecatedWarning, NotFoundError
from fti.services.context import StoreContext

__all__ = [
    "DELETING",
    "DEPRECATED",
    "RETIRED",
    "carry",
    "check_usable",
    "describe",
    "is_deprecated",
    "is_retired",
    "listed",
    "mark_deleting",
    "retire",
    "set_deprecated",
    "warn_if_deprecated",
]

DEPRECATED = "deprecated"
DELETING = "deleting"
RETIRED = "retired"
_KEYS = (DEPRECATED, DELETING, RETIRED)


def describe(kind: str, name: str, version: int, body: Mapping[str, Any] | None = None) -> str:
    """How messages name a record: "feature group 'weather' version 1"."""
    if kind == "training_dataset" and body is not None and "feature_view" in body:
        return (
            f"training dataset version {version} of feature view {body['feature_view']!r} "
            f"version {body['feature_view_version']}"
        )
    return f"{kind.replace('_', ' ')} {name!r} version {version}"


def _finish_call(kind: str, name: str, version: int, body: Mapping[str, Any]) -> str:
    if kind == "feature_group":
        return f"fs.delete_feature_group({name!r}, version={version})"
    if kind == "feature_view":
        return f"fs.delete_feature_view({name!r}, version={version})"
    if kind == "training_dataset":
        return (
            f"fs.delete_training_dataset({body.get('feature_view')!r}, "
            f"version={body.get('feature_view_version')}, training_dataset_version={version})"
        )
    if kind == "model":
        return f"fs.models.delete({name!r}, version={version})"
    return "the delete call again"


def listed(body: Mapping[str, Any], *, include_deprecated: bool = False) -> bool:
    """Whether a record shows in lists: never while deleting or once deleted, deprecated ones
    on request."""
    if body.get(DELETING) or body.get(RETIRED):
        return False
    return include_deprecated or not body.get(DEPRECATED)


def is_deprecated(ctx: StoreContext, kind: str, name: str, version: int) -> bool:
    """Whether a stored record is flagged deprecated."""
    rec = ctx.registry.get(kind, name, version)
    return rec is not None and bool(rec.body.get(DEPRECATED))


def check_usable(record: Record, *, warn: bool = True) -> None:
    """Refuse a record whose deletion started; warn (once per object and call site) if it is
    deprecated."""
    body = record.body
    what = describe(record.kind, record.name, record.version, body)
    if body.get(RETIRED):
        raise NotFoundError(
            f"The {what} was deleted (on {body[RETIRED].get('at', '?')[:19]}); its version "
            "number is not given out again."
        )
    if body.get(DELETING):
        finish = _finish_call(record.kind, record.name, record.version, body)
        raise ConflictError(
            f"The {what} is being deleted (or its deletion was interrupted) and can no longer "
            f"be used. Finish the deletion with {finish}."
        )
    if warn and body.get(DEPRECATED):
        note = body[DEPRECATED].get("reason") if isinstance(body[DEPRECATED], dict) else None
        warnings.warn(
            f"The {what} is deprecated{f' ({note})' if note else ''}; it may be deleted. "
            "Undeprecate it with .deprecate(False) if it is still needed.",
            DeprecatedWarning,
            stacklevel=4,
        )


def warn_if_deprecated(ctx: StoreContext, kind: str, name: str, version: int) -> None:
    """``check_usable`` for an object chosen without opening its record (a latest, a best)."""
    rec = ctx.registry.get(kind, name, version)
    if rec is not None:
        check_usable(rec)


def carry(old: Mapping[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new`` with the lifecycle state of ``old`` (for a body rewritten from its spec)."""
    return {**new, **{k: old[k] for k in _KEYS if k in old}}


def _get(ctx: StoreContext, kind: str, name: str, version: int) -> Record:
    rec = ctx.registry.get(kind, name, version)
    if rec is None:
        raise NotFoundError(f"The {describe(kind, name, version)} does not exist.")
    return rec


def set_deprecated(
    ctx: StoreContext, kind: str, name: str, version: int, deprecated: bool, reason: str = ""
) -> bool:
    """Set or clear the deprecated flag (compare-and-set, retried); returns the previous value.
    Each change is appended to the record's event log."""
    for _ in range(50):
        rec = _get(ctx, kind, name, version)
        check_usable(rec, warn=False)
        previous = bool(rec.body.get(DEPRECATED))
        if previous == deprecated and not reason:
            return previous
        body = dict(rec.body)
        if deprecated:
            body[DEPRECATED] = {"at": datetime.now(UTC).isoformat(), "reason": reason}
        else:
            body.pop(DEPRECATED, None)
        try:
            ctx.registry.update(kind, name, version, body, revision=rec.revision)
        except ConflictError:
            continue
        event = {"type": "deprecated" if deprecated else "undeprecated", "reason": reason}
        ctx.registry.add_event(kind, name, version, event)
        return previous
    raise ConflictError(f"The {describe(kind, name, version)} keeps changing; retry.")


def is_retired(record: Record | None) -> bool:
    return record is not None and bool(record.body.get(RETIRED))


def retire(ctx: StoreContext, record: Record) -> None:
    """Replace a deleted record's body by a stub that keeps its version number taken."""
    stub: dict[str, Any] = {
        RETIRED: {"at": datetime.now(UTC).isoformat()},
        "name": record.name,
        "version": record.version,
    }
    if record.kind == "training_dataset":  # what describe() names it by
        for key in ("feature_view", "feature_view_version"):
            if key in record.body:
                stub[key] = record.body[key]
    ctx.registry.update(record.kind, record.name, record.version, stub, revision=record.revision)


def mark_deleting(ctx: StoreContext, kind: str, name: str, version: int) -> Record | None:
    """Flag a record as being deleted (idempotent); None if it does not exist (or is retired)."""
    for _ in range(50):
        rec = ctx.registry.get(kind, name, version)
        if rec is None or is_retired(rec):
            return None
        if rec.body.get(DELETING):
            return rec
        body = {**rec.body, DELETING: {"at": datetime.now(UTC).isoformat()}}
        try:
            return ctx.registry.update(kind, name, version, body, revision=rec.revision)
        except ConflictError:
            continue
    raise ConflictError(f"The {describe(kind, name, version)} keeps changing; retry the delete.")
