"""Cron schedules for pipelines, stored in the registry, with catch-up and one active run per
pipeline.

A schedule (registry kind ``"schedule"``) names a pipeline (``FILE.py:FUNC``), a cron
expression, parameters and a cursor: the last tick it ran. :meth:`Scheduler.run_due` runs every
tick in ``(cursor, now]`` in order (catch-up after downtime), each as one recorded run; a
pipeline with ``start``/``end`` parameters gets the window ``[previous tick, tick)``.

At most one run per pipeline is active at a time, across processes: before running, a
scheduler takes a lease on the pipeline (registry kind ``"lock"``, compare-and-set on the
record's revision) and renews it while the run lasts. A second scheduler finds the lease held
and skips; a lease whose holder died expires and is taken over.

>>> fti.pipelines.scheduler.add_schedule(fs, "hourly_weather", "flows.py:weather",
...                                      cron="0 * * * *")                  # doctest: +SKIP
>>> Scheduler(fs).run_due()                                                 # doctest: +SKIP
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter

from fti._internal.names import check_identifier
from fti.definitions.schedule import Schedule
from fti.errors import ConflictError, FtiError, ValidationError
from fti.pipelines.loader import load_pipeline, split_ref
from fti.pipelines.runner import bind, run_pipeline
from fti.pipelines.runs import PipelineRun, jsonable
from fti.services import monitoring, schedules
from fti.services.schedules import KIND as SCHEDULE_KIND
from fti.services.schedules import LOCK_KIND, Lease
from fti.store import FeatureStore, context_of

__all__ = [
    "LOCK_KIND",
    "SCHEDULE_KIND",
    "Schedule",
    "Scheduler",
    "add_schedule",
    "get_schedule",
    "list_schedules",
    "remove_schedule",
]


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValidationError(
            f"now={now!r} is naive. Make it timezone-aware, e.g. datetime.now(timezone.utc)."
        )
    return now.astimezone(UTC)


def add_schedule(
    fs: FeatureStore,
    name: str,
    function: str,
    *,
    cron: str,
    params: dict[str, Any] | None = None,
    catch_up: bool = True,
    now: datetime | None = None,
) -> Schedule:
    """Store a schedule; the first tick is the first cron time after ``now``.

    The pipeline is loaded and its parameters checked now, so a typo fails here, not at 3 am.
    """
    check_identifier(name, what="schedule")
    if not croniter.is_valid(cron):
        raise ValidationError(
            f"Invalid cron expression {cron!r}. Use five fields: minute hour day month weekday, "
            "e.g. '0 * * * *' (hourly) or '30 6 * * *' (daily at 06:30 UTC)."
        )
    path, func = split_ref(function)
    pipeline = load_pipeline(function)
    window = {
        k: datetime(2000, 1, 1, tzinfo=UTC) + timedelta(hours=i)
        for i, k in enumerate(("start", "end"))
        if k in pipeline.parameters
    }
    bind(pipeline, fs, dict(params or {}), **window)  # raises on unknown/missing parameters
    now = _aware(now or datetime.now(UTC))
    schedule = Schedule(
        name=name,
        function=f"{path.resolve()}:{func}",
        cron=cron,
        parameters=jsonable(dict(params or {})),
        catch_up=catch_up,
        enabled=True,
        created_at=now,
        last_tick=now,
        pipeline=pipeline.name,
        kind=pipeline.kind,
    )
    return schedules.create(context_of(fs), schedule)


def get_schedule(fs: FeatureStore, name: str) -> Schedule:
    """The schedule ``name``; NotFoundError naming the existing ones."""
    return schedules.get(context_of(fs), name)


def list_schedules(fs: FeatureStore) -> list[Schedule]:
    """Every schedule, by name."""
    return schedules.list_schedules(context_of(fs))


def remove_schedule(fs: FeatureStore, name: str) -> None:
    """Remove a schedule (its past runs are kept)."""
    schedules.delete(context_of(fs), name)


class _Lease:
    """A pipeline's lease (:mod:`fti.services.schedules`), renewed by a background thread while
    held."""

    def __init__(self, scheduler: Scheduler, lease: Lease) -> None:
        self._scheduler = scheduler
        self._lease = lease
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        interval = max(self._scheduler.lease.total_seconds() / 3, 0.05)
        ctx = context_of(self._scheduler.fs)
        while not self._stop.wait(interval):
            with self._mutex:
                try:
                    self._lease = schedules.renew_lease(ctx, self._lease, self._scheduler.expiry())
                except ConflictError:
                    return  # taken over after expiry; nothing left to renew

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        with self._mutex:
            schedules.release_lease(context_of(self._scheduler.fs), self._lease)


class Scheduler:
    """Runs due schedules. ``clock`` returns the current time (a fake one in tests).

    >>> Scheduler(fs).loop()                                                  # doctest: +SKIP
    """

    def __init__(
        self,
        fs: FeatureStore,
        *,
        clock: Callable[[], datetime] | None = None,
        lease: timedelta = timedelta(minutes=10),
        holder: str | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.fs = fs
        self.clock = clock or (lambda: datetime.now(UTC))
        self.lease = lease
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._say = on_event or (lambda _msg: None)

    def expiry(self) -> datetime:
        return _aware(self.clock()) + self.lease

    def _acquire(self, function: str, schedule: str) -> _Lease | None:
        """Take the pipeline's lease, or None when another holder has a live one."""
        now = _aware(self.clock())
        try:
            lease = schedules.acquire_lease(
                context_of(self.fs),
                function,
                holder=self.holder,
                schedule=schedule,
                now=now,
                expires_at=now + self.lease,
            )
        except ConflictError as e:
            self._say(f"{schedule}: skipped, {e}")
            return None
        return _Lease(self, lease)

    def due(self, now: datetime | None = None) -> dict[str, list[datetime]]:
        """Schedule name -> ticks due at ``now`` (nothing is run)."""
        now = _aware(now or self.clock())
        return {s.name: t for s in list_schedules(self.fs) if s.enabled and (t := s.ticks(now))}

    def run_due(self, now: datetime | None = None) -> list[PipelineRun]:
        """Run every due tick of every schedule (oldest first) and return the runs started."""
        now = _aware(now or self.clock())
        started: list[PipelineRun] = []
        for name in self.due(now):
            started += self._run_schedule(name, now)
        return started

    def _run_schedule(self, name: str, now: datetime) -> list[PipelineRun]:
        ctx = context_of(self.fs)
        schedule = schedules.find(ctx, name)
        if schedule is None:
            return []
        lease = self._acquire(schedule.function, name)
        if lease is None:
            return []
        runs: list[PipelineRun] = []
        try:
            # Re-read under the lease: another scheduler may have advanced the cursor.
            schedule = schedules.find(ctx, name)
            if schedule is None:
                return []
            ticks = schedule.ticks(now)
            if not schedule.catch_up:
                ticks = ticks[-1:]
            if not ticks:
                return []
            if schedule.monitor:
                self._run_monitor(schedule, schedule.monitor, ticks)
                return []
            try:
                pipeline = load_pipeline(schedule.function)
            except Exception as e:
                self._say(f"{name}: cannot load {schedule.function}: {e}")
                return []
            for tick in ticks:
                window = {}
                if "start" in pipeline.parameters:
                    window["start"] = schedule.previous_tick(tick)
                if "end" in pipeline.parameters:
                    window["end"] = tick
                try:
                    run = run_pipeline(
                        pipeline,
                        fs=self.fs,
                        params=dict(schedule.parameters),
                        raise_on_error=False,
                        extra={"schedule": name, "tick": tick.isoformat()},
                        **window,
                    )
                except FtiError as e:
                    # e.g. the function's parameters changed since the schedule was added:
                    # keep the cursor so the tick runs once the schedule is fixed.
                    self._say(f"{name}: tick {tick.isoformat()} not run: {e}")
                    break
                runs.append(run)
                self._say(f"{name}: tick {tick.isoformat()} -> run {run.id} {run.status}")
                schedules.advance(ctx, name, tick)
        finally:
            lease.release()
        return runs

    def _run_monitor(self, schedule: Schedule, monitor: str, ticks: list[datetime]) -> None:
        """A drift monitor's schedule: one monitor run per tick, its relative windows anchored
        at the tick. A failed run (e.g. an empty window) is reported and the cursor moves on:
        the next tick has new data to look at."""
        ctx = context_of(self.fs)
        for tick in ticks:
            try:
                result = monitoring.run(ctx, monitor, now=tick)
            except FtiError as e:
                self._say(f"{schedule.name}: tick {tick.isoformat()} monitor {monitor!r}: {e}")
            else:
                state = "ALERT " + ", ".join(result["drifted"]) if result["alert"] else "ok"
                self._say(
                    f"{schedule.name}: tick {tick.isoformat()} -> monitor run {result['run']} "
                    f"{state}"
                )
            schedules.advance(ctx, schedule.name, tick)

    def loop(self, *, stop: threading.Event | None = None, max_sleep: float = 60.0) -> None:
        """Run due schedules forever (until ``stop`` is set), sleeping until the next tick."""
        stop = stop or threading.Event()
        while not stop.is_set():
            wait = max_sleep
            try:
                self.run_due()
                now = _aware(self.clock())
                upcoming = [s.next_tick(now) for s in list_schedules(self.fs) if s.enabled]
                wait = min([(t - now).total_seconds() for t in upcoming], default=max_sleep)
            except Exception as e:  # keep scheduling: e.g. a registry outage is retried
                self._say(f"scheduler error (retrying): {type(e).__name__}: {e}")
            stop.wait(min(max(wait, 0.5), max_sleep))
