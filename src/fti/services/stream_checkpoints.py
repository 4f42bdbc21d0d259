"""Stream checkpoints in the registry (kind ``"stream_checkpoint"``, one record per pipeline
version, version 1): open, save by compare-and-set, list, delete.

A save fails with ConflictError if another process saved since this one read the checkpoint:
two runners of one pipeline cannot both move its positions.
"""

from __future__ import annotations

from typing import Any

from fti._internal.liveness import effective_status
from fti.definitions.stream_checkpoint import StreamCheckpoint
from fti.errors import ConflictError
from fti.services.context import StoreContext

__all__ = ["KIND", "delete", "find", "list_checkpoints", "open_checkpoint", "save", "statuses"]

KIND = "stream_checkpoint"


def open_checkpoint(ctx: StoreContext, name: str) -> StreamCheckpoint:
    """The checkpoint ``name``, created empty (no positions, no counters) on first use."""
    rec = ctx.registry.get(KIND, name, 1)
    if rec is None:
        try:
            rec = ctx.registry.create(KIND, name, 1, StreamCheckpoint(name).to_body())
        except ConflictError:  # created by another process meanwhile
            rec = ctx.registry.get(KIND, name, 1)
    if rec is None:  # created and deleted again meanwhile: start empty, as a new one would
        return open_checkpoint(ctx, name)
    return StreamCheckpoint.from_body(name, rec.body, revision=rec.revision)


def find(ctx: StoreContext, name: str) -> StreamCheckpoint | None:
    """The checkpoint ``name``, or None."""
    rec = ctx.registry.get(KIND, name, 1)
    if rec is None:
        return None
    return StreamCheckpoint.from_body(name, rec.body, revision=rec.revision)


def save(ctx: StoreContext, checkpoint: StreamCheckpoint, **changes: Any) -> StreamCheckpoint:
    """Store ``checkpoint`` with ``changes`` applied (``positions=``, ``events_version=``,
    ``watermark=``, ``counters=`` or any detail such as ``status=``), compare-and-set on the
    revision it was read with; returns the stored checkpoint (with its new revision)."""
    body = {**checkpoint.to_body(), **changes}
    try:
        rec = ctx.registry.update(KIND, checkpoint.name, 1, body, revision=checkpoint.revision)
    except ConflictError as e:
        raise ConflictError(
            f"The checkpoint of stream pipeline {checkpoint.name!r} was changed by another "
            "process: is a second `fti stream run` of it running? Stop it and restart."
        ) from e
    return StreamCheckpoint.from_body(checkpoint.name, rec.body, revision=rec.revision)


def list_checkpoints(ctx: StoreContext) -> list[StreamCheckpoint]:
    """Every pipeline's checkpoint, by name."""
    return [
        StreamCheckpoint.from_body(r.name, r.body, revision=r.revision)
        for r in ctx.registry.records(KIND)
    ]


def statuses(ctx: StoreContext) -> list[dict[str, Any]]:
    """What ``fti stream status`` lists: each checkpoint record with the pipeline's name and its
    effective status (``died`` for a running pipeline whose process on this host is gone)."""
    return [
        {"pipeline": r.name, **r.body, "status": effective_status(r.body)}
        for r in ctx.registry.records(KIND)
    ]


def delete(ctx: StoreContext, name: str) -> None:
    """Forget a pipeline's checkpoint (its feature groups are kept)."""
    ctx.registry.delete(KIND, name, 1)
