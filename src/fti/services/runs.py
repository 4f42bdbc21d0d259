"""Pipeline run records in the registry (kind ``"run"``, one record per run id, version 1):
start, finish, get, list.

A run is created ``running`` before its pipeline starts and finished with compare-and-set on the
revision it was created with (:class:`StartedRun`), so a record is written by one process only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fti._internal.liveness import writer
from fti.definitions.pipeline_run import RUNNING, PipelineRun, new_run_id
from fti.errors import NotFoundError, ValidationError
from fti.services.context import StoreContext

__all__ = ["KIND", "StartedRun", "finish", "get", "list_runs", "start"]

KIND = "run"


@dataclass(frozen=True)
class StartedRun:
    """A run record as this process wrote it: its id, stored body and revision (what
    :func:`finish` needs for its compare-and-set)."""

    name: str
    body: dict[str, Any]
    revision: int

    @property
    def run(self) -> PipelineRun:
        return PipelineRun.from_body(self.body)


def start(
    ctx: StoreContext,
    *,
    kind: str,
    pipeline: str,
    function: str,
    parameters: dict[str, Any],
    code_version: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> StartedRun:
    """Create the record (status ``running``) before the pipeline starts. ``parameters`` must
    be JSON values already."""
    started = datetime.now(UTC)
    body: dict[str, Any] = {
        "id": new_run_id(started),
        "kind": kind,
        "pipeline": pipeline,
        "function": function,
        "parameters": parameters,
        "code_version": code_version,
        "started_at": started.isoformat(),
        "ended_at": None,
        "status": RUNNING,
        "error": None,
        "inputs": [],
        "outputs": [],
        **writer(),  # host and pid: a reader on this host can tell a run that died
        **(extra or {}),
    }
    rec = ctx.registry.create(KIND, body["id"], 1, body)
    return StartedRun(rec.name, rec.body, rec.revision)


def finish(
    ctx: StoreContext,
    started: StartedRun,
    *,
    status: str,
    error: str | None,
    inputs: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
    steps: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> StartedRun:
    """Store the outcome (compare-and-set on the record written by :func:`start`)."""
    body = dict(started.body)
    body.update(
        status=status,
        error=error,
        ended_at=datetime.now(UTC).isoformat(),
        inputs=inputs,
        outputs=outputs,
        **({"steps": steps} if steps is not None else {}),
        **(extra or {}),
    )
    rec = ctx.registry.update(KIND, started.name, 1, body, revision=started.revision)
    return StartedRun(rec.name, rec.body, rec.revision)


def get(ctx: StoreContext, run_id: str) -> PipelineRun:
    """A run by id, or by a unique prefix of its id."""
    record = ctx.registry.get(KIND, run_id, 1)
    if record is not None:
        return PipelineRun.from_body(record.body)
    if not run_id:
        raise ValidationError("Give a run id, e.g. from 'fti runs list'.")
    matches = [r for r in ctx.registry.records(KIND) if r.name.startswith(run_id)]
    if len(matches) == 1:
        return PipelineRun.from_body(matches[0].body)
    if matches:
        raise ValidationError(
            f"Run id prefix {run_id!r} matches {len(matches)} runs "
            f"({', '.join(m.name for m in matches[:5])}, ...). Give more characters."
        )
    raise NotFoundError(f"Run {run_id!r} does not exist. List runs with 'fti runs list'.")


def list_runs(
    ctx: StoreContext,
    *,
    pipeline: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    limit: int | None = None,
) -> list[PipelineRun]:
    """Runs, newest first, optionally filtered."""
    runs = [PipelineRun.from_body(r.body) for r in ctx.registry.records(KIND)]
    runs = [
        r
        for r in runs
        if (pipeline is None or r.pipeline == pipeline)
        and (kind is None or r.kind == kind)
        and (status is None or r.status == status)
    ]
    runs.sort(key=lambda r: (r.started_at, r.id), reverse=True)
    return runs if limit is None else runs[:limit]
