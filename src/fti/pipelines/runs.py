"""Run records of pipelines: what the runner writes before and after a pipeline runs.

The record (:class:`~fti.definitions.pipeline_run.PipelineRun`) is stored by
:mod:`fti.services.runs`; this module adds what only the pipelines layer knows: the code
version of the pipeline's source file (git commit, dirty flag, sha256) and JSON-friendly
parameter values.
"""

from __future__ import annotations

import hashlib
import subprocess
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.definitions.pipeline_run import PipelineRun, new_run_id
from fti.services import runs
from fti.services.runs import StartedRun

if TYPE_CHECKING:
    from fti.services.context import StoreContext

__all__ = [
    "PipelineRun",
    "StartedRun",
    "code_version",
    "finish_run",
    "get_run",
    "jsonable",
    "list_runs",
    "new_run_id",
    "start_run",
]

_GIT_TIMEOUT = 5.0


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


def start_run(
    ctx: StoreContext,
    *,
    kind: str,
    pipeline: str,
    function: str,
    parameters: dict[str, Any],
    source: str | None,
    extra: dict[str, Any] | None = None,
) -> StartedRun:
    """Create the record (status ``running``) before the pipeline starts."""
    return runs.start(
        ctx,
        kind=kind,
        pipeline=pipeline,
        function=function,
        parameters=jsonable(parameters),
        code_version=code_version(source),
        extra=extra,
    )


#: Store a run's outcome (compare-and-set on the record written by :func:`start_run`).
finish_run = runs.finish


#: A run by id, or by a unique prefix of its id.
get_run = runs.get
#: Runs, newest first, optionally filtered by pipeline, kind and status.
list_runs = runs.list_runs
