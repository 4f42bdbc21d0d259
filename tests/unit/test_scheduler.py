"""Scheduler: cron ticks on a fake clock, catch-up, one active run per pipeline, leases."""

from __future__ import annotations

import os
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import fti
from fti.pipelines.loader import load_pipeline
from fti.pipelines.runs import list_runs
from fti.pipelines.scheduler import (
    LOCK_KIND,
    Scheduler,
    add_schedule,
    get_schedule,
    list_schedules,
    remove_schedule,
)
from fti.services.schedules import lease_name as _lock_name
from fti.store import context_of

T0 = datetime(2013, 1, 1, tzinfo=UTC)

FLOW = textwrap.dedent(
    """
    import threading
    from datetime import datetime

    import fti

    CALLS = []
    ENTERED = threading.Event()
    RELEASE = threading.Event()
    RELEASE.set()

    @fti.feature_pipeline
    def windowed(fs: fti.FeatureStore, start: datetime, end: datetime, label: str = "x") -> str:
        CALLS.append((start, end, label))
        ENTERED.set()
        assert RELEASE.wait(30), "test never released the pipeline"
        return label

    @fti.training_pipeline
    def plain(n: int) -> int:
        CALLS.append(n)
        return n

    @fti.training_pipeline
    def failing() -> None:
        raise RuntimeError("no data yet")
    """
)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def flow(tmp_path: Path) -> Iterator[tuple[Path, Any]]:
    path = tmp_path / "flow.py"
    path.write_text(FLOW)
    module = load_pipeline(f"{path}:windowed").fn.__globals__
    yield path, module
    module["RELEASE"].set()


def _runs(fs: fti.FeatureStore) -> list[fti.PipelineRun]:
    return sorted(list_runs(context_of(fs)), key=lambda r: r.extra.get("tick", ""))


def test_catch_up_runs_every_missed_tick_once(fs: fti.FeatureStore, flow: Any) -> None:
    path, module = flow
    add_schedule(
        fs, "hourly", f"{path}:windowed", cron="0 * * * *", params={"label": "w"},
        now=T0 + timedelta(minutes=30),
    )  # fmt: skip
    clock = FakeClock(T0 + timedelta(hours=3, minutes=10))
    sched = Scheduler(fs, clock=clock)
    assert sched.due() == {"hourly": [T0 + timedelta(hours=h) for h in (1, 2, 3)]}
    runs = sched.run_due()
    hours = [T0 + timedelta(hours=h) for h in range(4)]
    # three missed ticks -> three runs, in order, each with its window [previous tick, tick)
    assert module["CALLS"] == [(hours[i], hours[i + 1], "w") for i in range(3)]
    assert [r.extra["tick"] for r in runs] == [h.isoformat() for h in hours[1:]]
    assert all(r.extra["schedule"] == "hourly" and r.succeeded for r in runs)
    assert get_schedule(fs, "hourly").last_tick == hours[3]
    # nothing more is due at the same time
    assert sched.run_due() == []
    clock.now = T0 + timedelta(hours=4)
    (again,) = sched.run_due()
    assert again.parameters["start"] == hours[3].isoformat()
    assert len(_runs(fs)) == 4


def test_without_catch_up_only_the_latest_tick_runs(fs: fti.FeatureStore, flow: Any) -> None:
    path, module = flow
    add_schedule(fs, "daily", f"{path}:plain", cron="0 6 * * *", params={"n": "7"},
                 catch_up=False, now=T0)  # fmt: skip
    runs = Scheduler(fs).run_due(T0 + timedelta(days=3, hours=7))
    assert [r.extra["tick"] for r in runs] == [(T0 + timedelta(days=3, hours=6)).isoformat()]
    assert module["CALLS"] == [7]
    assert get_schedule(fs, "daily").last_tick == T0 + timedelta(days=3, hours=6)


def test_a_second_scheduler_does_not_start_a_second_active_run(
    fs: fti.FeatureStore, flow: Any, tmp_path: Path
) -> None:
    path, module = flow
    add_schedule(fs, "hourly", f"{path}:windowed", cron="0 * * * *", now=T0)
    now = T0 + timedelta(hours=2, minutes=1)
    module["RELEASE"].clear()
    first = Scheduler(fs, clock=FakeClock(now), holder="first")
    # a second process: its own connection to the same store
    other_fs = fti.connect(fs.config.root)
    second = Scheduler(other_fs, clock=FakeClock(now), holder="second")
    result: dict[str, list[fti.PipelineRun]] = {}
    worker = threading.Thread(target=lambda: result.setdefault("first", first.run_due()))
    worker.start()
    try:
        assert module["ENTERED"].wait(30)
        # the first scheduler is inside the run of tick 01:00: the pipeline is busy
        assert second.run_due() == []
        running = list_runs(context_of(other_fs), status="running")
        assert len(running) == 1
        assert module["CALLS"] == [(T0, T0 + timedelta(hours=1), "x")]
    finally:
        module["RELEASE"].set()
        worker.join(30)
    assert [r.extra["tick"] for r in result["first"]] == [
        (T0 + timedelta(hours=1)).isoformat(),
        (T0 + timedelta(hours=2)).isoformat(),
    ]
    # the first one caught up both ticks; nothing is left for the second
    assert second.run_due() == []
    assert len(_runs(fs)) == 2
    lock = context_of(fs).registry.get(LOCK_KIND, _lock_name(f"{path.resolve()}:windowed"), 1)
    assert lock is not None
    assert lock.body["holder"] is None  # released
    other_fs.close()


def test_concurrent_schedulers_run_each_tick_exactly_once(fs: fti.FeatureStore, flow: Any) -> None:
    path, module = flow
    add_schedule(fs, "hourly", f"{path}:windowed", cron="0 * * * *", now=T0)
    now = T0 + timedelta(hours=5)
    stores = [fti.connect(fs.config.root) for _ in range(3)]
    barrier = threading.Barrier(len(stores))
    started: list[list[fti.PipelineRun]] = []

    def go(store: fti.FeatureStore, holder: str) -> None:
        sched = Scheduler(store, clock=FakeClock(now), holder=holder)
        barrier.wait()
        started.append(sched.run_due())
        started.append(sched.run_due())

    threads = [threading.Thread(target=go, args=(s, f"h{i}")) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ticks = sorted(r.extra["tick"] for batch in started for r in batch)
    assert ticks == [(T0 + timedelta(hours=h)).isoformat() for h in range(1, 6)]
    assert len(module["CALLS"]) == 5
    for s in stores:
        s.close()


def test_an_expired_lease_is_taken_over_and_a_live_one_is_not(
    fs: fti.FeatureStore, flow: Any
) -> None:
    path, _ = flow
    add_schedule(fs, "p", f"{path}:plain", cron="*/10 * * * *", params={"n": "1"}, now=T0)
    clock = FakeClock(T0 + timedelta(minutes=10))
    registry = context_of(fs).registry
    name = _lock_name(f"{path.resolve()}:plain")
    registry.create(
        LOCK_KIND,
        name,
        1,
        {"holder": "crashed", "expires_at": (clock.now + timedelta(minutes=5)).isoformat()},
    )
    sched = Scheduler(fs, clock=clock, lease=timedelta(minutes=5))
    assert sched.run_due() == []  # live lease held by someone else
    clock.now = T0 + timedelta(minutes=16)  # the crashed holder's lease has expired
    (run,) = sched.run_due()
    assert run.extra["tick"] == (T0 + timedelta(minutes=10)).isoformat()


def test_a_failing_scheduled_run_is_recorded_and_the_cursor_moves(
    fs: fti.FeatureStore, flow: Any
) -> None:
    path, _ = flow
    add_schedule(fs, "f", f"{path}:failing", cron="0 0 * * *", now=T0)
    runs = Scheduler(fs).run_due(T0 + timedelta(days=2))
    assert [r.status for r in runs] == ["failed", "failed"]
    assert runs[0].error == "RuntimeError: no data yet"
    assert get_schedule(fs, "f").last_tick == T0 + timedelta(days=2)


def test_schedule_validation(fs: fti.FeatureStore, flow: Any, tmp_path: Path) -> None:
    path, _ = flow
    with pytest.raises(fti.ValidationError, match="Invalid cron expression"):
        add_schedule(fs, "x", f"{path}:plain", cron="every hour", params={"n": "1"})
    with pytest.raises(fti.ValidationError, match="Invalid schedule name"):
        add_schedule(fs, "my schedule", f"{path}:plain", cron="0 * * * *", params={"n": "1"})
    with pytest.raises(fti.ValidationError, match=r"Unknown parameter\(s\) \['m'\]"):
        add_schedule(fs, "x", f"{path}:plain", cron="0 * * * *", params={"m": "1"})
    with pytest.raises(fti.ValidationError, match=r"needs parameter\(s\) \['n'\]"):
        add_schedule(fs, "x", f"{path}:plain", cron="0 * * * *")
    with pytest.raises(fti.NotFoundError, match="does not exist"):
        add_schedule(fs, "x", f"{tmp_path / 'gone.py'}:plain", cron="0 * * * *")
    add_schedule(fs, "x", f"{path}:plain", cron="0 * * * *", params={"n": "1"}, now=T0)
    with pytest.raises(fti.ConflictError, match="already exists"):
        add_schedule(fs, "x", f"{path}:plain", cron="0 * * * *", params={"n": "1"})
    assert [s.name for s in list_schedules(fs)] == ["x"]
    assert get_schedule(fs, "x").next_tick(T0) == T0 + timedelta(hours=1)
    remove_schedule(fs, "x")
    assert list_schedules(fs) == []
    with pytest.raises(fti.NotFoundError):
        get_schedule(fs, "x")
    with pytest.raises(fti.ValidationError, match="naive"):
        Scheduler(fs).run_due(datetime(2013, 1, 1))


def test_loop_stops_when_asked(fs: fti.FeatureStore, flow: Any) -> None:
    path, module = flow
    add_schedule(fs, "p", f"{path}:plain", cron="0 * * * *", params={"n": "3"}, now=T0)
    stop = threading.Event()
    clock = FakeClock(T0 + timedelta(hours=1))
    sched = Scheduler(fs, clock=clock, on_event=lambda _msg: stop.set())
    sched.loop(stop=stop, max_sleep=0.01)
    assert module["CALLS"] == [3]


def test_a_schedule_whose_parameters_no_longer_fit_keeps_its_cursor(
    fs: fti.FeatureStore, flow: Any
) -> None:
    path, _ = flow
    add_schedule(fs, "p", f"{path}:plain", cron="0 * * * *", params={"n": "1"}, now=T0)
    path.write_text(FLOW.replace("def plain(n: int)", "def plain(count: int)"))
    os.utime(path, (1e9, 1e9))  # a different mtime even on coarse clocks: the file is reloaded
    messages: list[str] = []
    runs = Scheduler(fs, on_event=messages.append).run_due(T0 + timedelta(hours=2))
    assert runs == []
    assert any("Unknown parameter(s) ['n']" in m for m in messages)
    assert get_schedule(fs, "p").last_tick == T0
