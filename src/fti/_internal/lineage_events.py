"""Lineage events: what a pipeline run read and wrote, reported from any layer.

Services call :func:`record_input` / :func:`record_output` when they read or write a versioned
object (a feature group table version, a training dataset, a model). The calls land in the
recorder of the run that is executing in the current context (``contextvars``), so lower layers
report lineage without importing ``fti.pipelines``. Outside a run they do nothing.

>>> with recording() as rec:
...     record_output("feature_group", "weather", 1, table_version=3)
>>> rec.outputs
[{'kind': 'feature_group', 'name': 'weather', 'version': 1, 'table_version': 3}]
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fti.errors import NotFoundError

__all__ = [
    "LineageRecorder",
    "active",
    "record_input",
    "record_input_file",
    "record_output",
    "recording",
]


@dataclass
class LineageRecorder:
    """The inputs and outputs one run (or one step of a run) reported, in order, deduplicated."""

    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)

    def add(self, direction: str, entry: dict[str, Any]) -> None:
        target = self.inputs if direction == "input" else self.outputs
        if entry not in target:
            target.append(entry)


_current: ContextVar[LineageRecorder | None] = ContextVar("fti_lineage_recorder", default=None)


def active() -> LineageRecorder | None:
    """The recorder of the run executing in this context, if any."""
    return _current.get()


@contextmanager
def recording() -> Iterator[LineageRecorder]:
    """Collect lineage events reported inside the ``with`` block (nested blocks stack)."""
    recorder = LineageRecorder()
    token = _current.set(recorder)
    try:
        yield recorder
    finally:
        _current.reset(token)


def _entry(kind: str, name: str, version: int | None, detail: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "name": name, "version": version, **detail}


def record_input(kind: str, name: str, version: int | None, **detail: Any) -> None:
    """Report that the current run read ``kind`` ``name`` ``version`` (no-op outside a run).

    ``detail`` must be JSON-serializable (e.g. ``table_version=5`` for a feature group).
    """
    recorder = _current.get()
    if recorder is not None:
        recorder.add("input", _entry(kind, name, version, detail))


def record_output(kind: str, name: str, version: int | None, **detail: Any) -> None:
    """Report that the current run wrote ``kind`` ``name`` ``version`` (no-op outside a run)."""
    recorder = _current.get()
    if recorder is not None:
        recorder.add("output", _entry(kind, name, version, detail))


def record_input_file(path: str | os.PathLike[str]) -> str:
    """Declare a raw input file of the current run: records its path, sha256 and size.

    An ``s3://bucket/key`` URL is recorded with the object's ETag and size (and its sha256 when
    the writer stored one as object metadata, as fti's artifact store does) without downloading
    it; the return value is then that sha256, else the ETag.

    Returns the sha256 (hex). Works outside a run too (then only the hash is computed), so a
    pipeline can call it unconditionally.

    >>> fti.record_input_file("data/flights.csv")                            # doctest: +SKIP
    """
    if str(path).startswith("s3://"):
        # An object: its ETag (and the sha256 its writer recorded, if any) from a HEAD request.
        from fti._internal.s3_location import S3Location, object_facts

        facts = object_facts(str(path))
        record_input("file", S3Location.parse(str(path)).uri(), None, **facts)
        return str(facts.get("sha256") or facts["etag"])
    p = Path(path).resolve()
    if not p.is_file():
        raise NotFoundError(
            f"Input file {str(path)!r} does not exist (resolved to {str(p)!r}). "
            "Pass the path of an existing file."
        )
    digest = hashlib.sha256()
    with p.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    sha = digest.hexdigest()
    record_input("file", str(p), None, sha256=sha, size=p.stat().st_size)
    return sha
