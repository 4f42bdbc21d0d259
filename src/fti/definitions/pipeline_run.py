"""Pipeline run records: what ran, with which parameters and code, and what it read and wrote.

A record holds the run id, the pipeline kind and function (``"file.py:func"``), the parameters,
the code version (git commit + dirty flag when the file is in a git work tree, and the sha256
of the source file), start and end time, status, error, and the inputs and outputs with their
exact versions (feature group table versions, training dataset and model versions, raw files).
A monolithic run also lists its steps, each with its own inputs and outputs. The record also
keeps its writer's ``host`` and ``pid``, so a reader on that host can tell a run that died.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fti._internal.liveness import effective_status

__all__ = ["RUNNING", "PipelineRun", "new_run_id"]

RUNNING = "running"
# Body keys with a field of their own; any other key is kept in ``PipelineRun.extra``.
_KNOWN = frozenset(
    {
        "id", "kind", "pipeline", "function", "parameters", "code_version", "started_at",
        "ended_at", "status", "error", "inputs", "outputs", "steps", "host", "pid",
    }
)  # fmt: skip


def new_run_id(now: datetime | None = None) -> str:
    """Sortable by start time: ``20130101T060000.000000Z-1a2b3c``."""
    now = now or datetime.now(UTC)
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%S.%fZ}-{secrets.token_hex(3)}"


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
        """A stored record; ``status`` is ``died`` for a running record whose writer on this
        host is gone."""
        ended = body.get("ended_at")
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
            extra={k: v for k, v in body.items() if k not in _KNOWN},
            result=result,
        )

    def __repr__(self) -> str:
        return (
            f"PipelineRun({self.id!r}, kind={self.kind!r}, pipeline={self.pipeline!r}, "
            f"status={self.status!r}, inputs={len(self.inputs)}, outputs={len(self.outputs)})"
        )
