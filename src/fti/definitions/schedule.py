"""Cron schedules: a pipeline (or a drift monitor) run at every tick of a cron expression.

A schedule names a pipeline (``FILE.py:FUNC``), a cron expression, parameters and a cursor:
the last tick it ran. A monitor's schedule names the monitor instead (``monitor``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from croniter import croniter

__all__ = ["Schedule"]


@dataclass(frozen=True)
class Schedule:
    """A stored schedule; ``last_tick`` is the cursor (the latest tick already run)."""

    name: str
    function: str
    cron: str
    parameters: dict[str, Any]
    catch_up: bool
    enabled: bool
    created_at: datetime
    last_tick: datetime
    pipeline: str = field(default="", compare=False)  # the pipeline's (or monitor's) name
    kind: str = field(default="", compare=False)  # the pipeline kind, or "monitor"
    monitor: str | None = field(default=None, compare=False)  # a drift monitor's schedule

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Schedule:
        monitor = body.get("monitor")
        return cls(
            name=body["name"],
            function=body["function"],
            cron=body["cron"],
            parameters=dict(body.get("parameters", {})),
            catch_up=bool(body.get("catch_up", True)),
            enabled=bool(body.get("enabled", True)),
            created_at=datetime.fromisoformat(body["created_at"]),
            last_tick=datetime.fromisoformat(body["last_tick"]),
            pipeline=str(body.get("pipeline", "")),
            kind=str(body.get("kind", "")),
            monitor=None if not monitor else str(monitor),
        )

    def to_body(self) -> dict[str, Any]:
        """The stored form (the key order of the records fti has always written)."""
        body: dict[str, Any] = {
            "name": self.name,
            "function": self.function,
            "pipeline": self.pipeline,
            "kind": self.kind,
        }
        if self.monitor is not None:
            body["monitor"] = self.monitor
        body.update(
            cron=self.cron,
            parameters=dict(self.parameters),
            catch_up=self.catch_up,
            enabled=self.enabled,
            created_at=self.created_at.isoformat(),
            last_tick=self.last_tick.isoformat(),
        )
        return body

    def ticks(self, now: datetime) -> list[datetime]:
        """Cron ticks in ``(last_tick, now]``, oldest first."""
        it = croniter(self.cron, self.last_tick)
        out: list[datetime] = []
        while True:
            t = it.get_next(datetime)
            if t > now:
                return out
            out.append(t)

    def next_tick(self, after: datetime) -> datetime:
        t: datetime = croniter(self.cron, max(after, self.last_tick)).get_next(datetime)
        return t

    def previous_tick(self, tick: datetime) -> datetime:
        t: datetime = croniter(self.cron, tick).get_prev(datetime)
        return t
