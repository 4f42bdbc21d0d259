"""Several scheduler processes on one registry run each due tick exactly once.

Four processes start together (on a signal file) and call ``Scheduler.run_due(now)`` for one
hourly schedule that has missed six ticks. The pipeline appends its tick to a file; afterwards
the file holds every tick exactly once, and the registry holds one succeeded run per tick.
Runs on the embedded SQLite registry and on PostgreSQL (a fresh database per test).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import fti
from fti.pipelines.runs import list_runs
from fti.pipelines.scheduler import add_schedule
from fti.store import context_of

PROCESSES = 4
TICKS = 6
T0 = datetime(2013, 1, 1, tzinfo=UTC)

FLOW = textwrap.dedent(
    """
    import os
    import time
    from datetime import datetime
    from pathlib import Path

    import fti

    @fti.feature_pipeline
    def hourly(start: datetime, end: datetime) -> None:
        time.sleep(0.05)  # long enough for the other processes to find the pipeline busy
        out = Path(__file__).with_name("ticks.txt")
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.write(fd, (end.isoformat() + "\\n").encode())
        os.close(fd)
    """
)

CHILD = """
import sys, time
from datetime import datetime
from pathlib import Path
import fti
from fti.pipelines.scheduler import Scheduler

root, registry, go, now = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]
fs = fti.connect(root, registry=registry)
print("ready", flush=True)
while not go.exists():
    time.sleep(0.005)
sched = Scheduler(fs)
started = 0
for _ in range(3):
    started += len(sched.run_due(datetime.fromisoformat(now)))
fs.close()
print(started, flush=True)
"""


@pytest.mark.slow
@pytest.mark.integration
def test_scheduler_processes_run_each_tick_once(tmp_path: Path, registry_url: str) -> None:
    root = tmp_path / "store"
    flow = tmp_path / "flow.py"
    flow.write_text(FLOW)
    with fti.connect(root, registry=registry_url) as fs:
        add_schedule(fs, "hourly", f"{flow}:hourly", cron="0 * * * *", now=T0)
    now = T0 + timedelta(hours=TICKS, minutes=5)
    go = tmp_path / "go"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(root), registry_url, str(go), now.isoformat()],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
        go.touch()
        started = []
        for child in children:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
            started.append(int(out.strip()))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    expected = [(T0 + timedelta(hours=h)).isoformat() for h in range(1, TICKS + 1)]
    assert sorted((tmp_path / "ticks.txt").read_text().split()) == expected
    assert sum(started) == TICKS
    with fti.connect(root, registry=registry_url) as fs:
        runs = list_runs(context_of(fs))
    assert sorted(r.extra["tick"] for r in runs) == expected
    assert all(r.status == "succeeded" for r in runs)
