"""Stream checkpoints: where a streaming feature pipeline is, so a restart resumes there.

One record per pipeline version (named ``<pipeline>_v<version>``): the source positions that
were committed, the version of the events table holding the events accepted so far, the
watermark and the counters, plus what ``fti stream status`` shows (status, source, throughput,
lag, the writer's host and pid, ...), which is kept in ``details``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fti._internal.liveness import effective_status

__all__ = ["StreamCheckpoint"]

_FIELDS = ("positions", "events_version", "watermark", "counters")


@dataclass(frozen=True)
class StreamCheckpoint:
    """A pipeline's checkpoint. ``revision`` is the registry's compare-and-set counter: a save
    fails if another process saved since this one was read."""

    name: str
    positions: dict[str, str] = field(default_factory=dict)
    events_version: int | None = None
    watermark: int | None = None
    counters: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    revision: int = field(default=0, compare=False)

    @property
    def status(self) -> str:
        """The stored status, ``died`` for a running pipeline whose process on this host is
        gone, "" before the first run."""
        return effective_status(self.details)

    @classmethod
    def from_body(cls, name: str, body: dict[str, Any], *, revision: int = 0) -> StreamCheckpoint:
        version = body.get("events_version")
        watermark = body.get("watermark")
        return cls(
            name=name,
            positions=dict(body.get("positions") or {}),
            events_version=None if version is None else int(version),
            watermark=None if watermark is None else int(watermark),
            counters=dict(body.get("counters") or {}),
            details={k: v for k, v in body.items() if k not in _FIELDS},
            revision=revision,
        )

    def to_body(self) -> dict[str, Any]:
        """The stored form. ``events_version`` and ``watermark`` are written once set (a new
        checkpoint holds only positions and counters, as fti has always written it)."""
        body: dict[str, Any] = {"positions": dict(self.positions), "counters": dict(self.counters)}
        if self.events_version is not None:
            body["events_version"] = self.events_version
        if self.watermark is not None:
            body["watermark"] = self.watermark
        body.update(self.details)
        return body
