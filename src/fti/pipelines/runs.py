"""Run records: every pipeline run, stored in the registry as kind ``"run"``.

A record holds the run id, the pipeline kind and function (``"file.py:func"``), the parameters,
the code version (git commit + dirty flag when the file is in a git work tree, and the sha256
of the source file), start and end time, status, error, and the inputs and outputs with their
exact versions (feature group table versions, training dataset and model versions, raw files).
A monolithic run also lists its steps, each with its own inputs and outputs.
"""

from __future__ import annotations

import hashlib
import secrets
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti._internal.liveness import effective_status, writer
from fti.backends.registry import Record
from fti.errors import NotFoundError, ValidationError
from fti.services.lineage_graph import RUN_KIND

if TYPE_CHECKING:
    from fti.services.context import StoreContext

__all__ = [
    "PipelineRun",
    "code_version",
    "finish_run",
    "get_run",
    "jsonable",
    "list_runs",
    "new_run_id",
    "start_run",
]

_GIT_TIMEOUT = 5.0


def new_run_id(now: datetime | None = None) -> str:
    """Sortable by start time: ``20130101T060000.000000Z-1a2b3c``."""
    now = now or datetime.now(UTC)
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%S.%fZ}-{secrets.token_hex(3)}"


def jsonable(value: Any) -> Any:
    """A JSON-friendly form of a parameter value (ISO strings for times)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            ["git", *args],  # noqa: S607 - git from PATH, like any developer tool
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_version(source: str | None) -> dict[str, Any]:
    """Git commit and dirty flag of the work tree holding ``source``, and the file's sha256."""
    out: dict[str, Any] = {"git_commit": None, "git_dirty": None, "source_sha256": None}
    if not source:
        return out
    path = Path(source)
    if path.is_file():
        out["source_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    folder = path.parent if path.parent.is_dir() else None
    if folder is None:
        return out
    commit = _git(["rev-parse", "HEAD"], folder)
    if commit:
        out["git_commit"] = commit
        status = _git(["status", "--porcelain", "--untracked-files=no"], folder)
        out["git_dirty"] = None if status is None else bool(status)
    return out


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class PipelineRun:
    """One recorded run. ``result`` is what the function returned (this process only)."""

    id: str
    kind: str
    pipeline: str
    function: str
    parameters: dict[str, Any]
    code_version: dict[str, Any]
    started_at: datetime
    ended_at: datetime | None
    status: str
    error: str | None
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    steps: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    result: Any = field(default=None, compare=False)

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def seconds(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    @classmethod
    def from_body(cls, body: dict[str, Any], result: Any = None) -> PipelineRun:
        ended = body.get("ended_at")
        known = {
            "id", "kind", "pipeline", "function", "parameters", "code_version", "started_at",
            "ended_at", "status", "error", "inputs", "outputs", "steps", "host", "pid",
        }  # fmt: skip
        return cls(
            id=body["id"],
            kind=body["kind"],
            pipeline=body["pipeline"],
            function=body["function"],
            parameters=dict(body.get("parameters", {})),
            code_version=dict(body.get("code_version", {})),
            started_at=datetime.fromisoformat(body["started_at"]),
            ended_at=datetime.fromisoformat(ended) if ended else None,
            status=effective_status(body),
            error=body.get("error"),
            inputs=list(body.get("inputs", [])),
            outputs=list(body.get("outputs", [])),
            steps=list(body.get("steps", [])),
            extra={k: v for k, v in body.items() if k not in known},
            result=result,
        )

    def __repr__(self) -> str:
        return (
            f"PipelineRun({self.id!r}, kind={self.kind!r}, pipeline={self.pipeline!r}, "
            f"status={self.status!r}, inputs={len(self.inputs)}, outputs={len(self.outputs)})"
        )


def start_run(
    ctx: StoreContext,
    *,
    kind: str,
    pipeline: str,
    function: str,
    parameters: dict[str, Any],
    source: str | None,
    extra: dict[str, Any] | None = None,
) -> Record:
    """Create the record (status ``running``) before the pipeline starts."""
    started = datetime.now(UTC)
    body: dict[str, Any] = {
        "id": new_run_id(started),
        "kind": kind,
        "pipeline": pipeline,
        "function": function,
        "parameters": jsonable(parameters),
        "code_version": code_version(source),
        "started_at": started.isoformat(),
        "ended_at": None,
        "status": "running",
        "error": None,
        "inputs": [],
        "outputs": [],
        **writer(),  # host and pid: a reader on this host can tell a run that died
        **(extra or {}),
    }
    return ctx.registry.create(RUN_KIND, body["id"], 1, body)


def finish_run(
    ctx: StoreContext,
    record: Record,
    *,
    status: str,
    error: str | None,
    inputs: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
    steps: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> Record:
    """Store the outcome (compare-and-set on the record written by :func:`start_run`)."""
    body = dict(record.body)
    body.update(
        status=status,
        error=error,
        ended_at=_now(),
        inputs=inputs,
        outputs=outputs,
        **({"steps": steps} if steps is not None else {}),
        **(extra or {}),
    )
    return ctx.registry.update(RUN_KIND, record.name, 1, body, revision=record.revision)


def get_run(ctx: StoreContext, run_id: str) -> PipelineRun:
    """A run by id, or by a unique prefix of its id."""
    record = ctx.registry.get(RUN_KIND, run_id, 1)
    if record is not None:
        return PipelineRun.from_body(record.body)
    if not run_id:
        raise ValidationError("Give a run id, e.g. from 'fti runs list'.")
    matches = [r for r in ctx.registry.records(RUN_KIND) if r.name.startswith(run_id)]
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
    runs = [PipelineRun.from_body(r.body) for r in ctx.registry.records(RUN_KIND)]
    runs = [
        r
        for r in runs
        if (pipeline is None or r.pipeline == pipeline)
        and (kind is None or r.kind == kind)
        and (status is None or r.status == status)
    ]
    runs.sort(key=lambda r: (r.started_at, r.id), reverse=True)
    return runs if limit is None else runs[:limit]
