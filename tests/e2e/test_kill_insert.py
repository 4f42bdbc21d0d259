"""Kill -9 during inserts: acknowledged batches survive, no batch is partially visible, and
the online store catches up to the offline table (the system of record) when reopened.

A child process inserts numbered batches into one online feature group and appends each batch
id to an ack file (fsync'd) after ``insert`` returns. The parent SIGKILLs it at a random moment,
reopens the store and checks. (The next child imports fti meanwhile, and opens the store only
once the check is done.) The same store is reused across kills, so each kill also lands on
whatever the previous ones left behind. Kills: ``FTI_KILL_COUNT``, else 50 when ``CI=true``,
else 12; each lands 0 to ``FTI_KILL_MAX_DELAY`` seconds (default 0.4) after the child is ready,
except the last, which waits for the child to acknowledge a batch first, so that acknowledged
batches are always part of what is checked (a slow store can take longer than the random
delays for every insert). Run with ``pytest -s`` to see the figure.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import fti

ROWS = 150  # rows per batch
KEYS = 97  # distinct keys; batches overlap on keys, so the online store sees many updates

CHILD = """
import os, sys
from datetime import UTC, datetime, timedelta
import pyarrow as pa
import pyarrow.dataset  # loaded by the first insert (it imports pandas): here, before the wait
import fti

root, ack, rows, keys = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:5])
t0 = datetime(2024, 1, 1, tzinfo=UTC)
start = int(sys.stdin.readline())  # imported; wait until the parent has checked the store
fs = fti.connect(root)
fg = fs.feature_group("killed", primary_key=["k"], event_time="t", online=True)
fd = os.open(ack, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
print("ready", flush=True)
batch = start
while True:
    g = [batch * rows + i for i in range(rows)]
    table = pa.table({
        "k": pa.array([x % keys for x in g], pa.int64()),
        # unique but out of insertion order: the latest row per key is never a tie
        "t": pa.array([t0 + timedelta(seconds=(x * 7919) % 1_000_003) for x in g],
                      pa.timestamp("us", "UTC")),
        "batch": pa.array([batch] * rows, pa.int64()),
        "g": pa.array(g, pa.int64()),
    })
    fg.insert(table)
    os.write(fd, f"{batch}\\n".encode())
    os.fsync(fd)
    batch += 1
"""


def kill_count() -> int:
    if os.environ.get("FTI_KILL_COUNT"):
        return int(os.environ["FTI_KILL_COUNT"])
    return 50 if os.environ.get("CI", "").lower() == "true" else 12


def max_delay() -> float:
    return float(os.environ.get("FTI_KILL_MAX_DELAY", "0.4"))


def wait_for_an_ack(ack: Path, before: int, child: subprocess.Popen[str]) -> None:
    """Wait until the child has acknowledged more than ``before`` batches."""
    deadline = time.monotonic() + 120
    while len(acknowledged(ack)) <= before:
        if child.poll() is not None:
            pytest.fail(f"child exited before acknowledging a batch: {child.communicate()[1]}")
        if time.monotonic() > deadline:
            child.kill()
            pytest.fail("child acknowledged no batch within 120 s")
        time.sleep(0.01)


def acknowledged(ack: Path) -> set[int]:
    if not ack.exists():
        return set()
    text = ack.read_text()
    complete = text[: text.rfind("\n") + 1]  # a kill may cut the last line short
    return {int(x) for x in complete.split()}


def check(root: Path, ack: Path, problems: list[str]) -> tuple[int, int]:
    """Open the store, compare against the acks; returns (next batch id, batches seen)."""
    with fti.connect(root) as fs:
        try:
            fg = fs.get_feature_group("killed", version=1)
        except fti.NotFoundError:
            return 0, 0
        if not fg.spec.has_schema:
            return 0, 0
        offline = fg.read(include_superseded=True, format="arrow").to_pydict()  # every row
        counts = Counter(offline["batch"])
        for batch in sorted(acknowledged(ack)):
            if counts.get(batch) != ROWS:
                problems.append(f"acknowledged batch {batch} has {counts.get(batch, 0)} rows")
        for batch, n in sorted(counts.items()):
            if n != ROWS:
                problems.append(f"batch {batch} is partially visible: {n} of {ROWS} rows")
        if len(set(offline["g"])) != len(offline["g"]):
            problems.append("duplicated rows in the offline table")
        # latest per key, computed here: the greatest event time (unique per row)
        latest: dict[int, tuple[object, int]] = {}
        for k, t, g in zip(offline["k"], offline["t"], offline["g"], strict=True):
            if k not in latest or t > latest[k][0]:
                latest[k] = (t, g)
        online = fg.read_online([{"k": k} for k in range(KEYS)])
        for k, row in enumerate(online):
            want = latest.get(k)
            got = None if row is None else (row["t"], row["g"])
            if got != want:
                problems.append(f"online row of key {k} is {got}, offline latest is {want}")
        online_keys = fg.stats()["online_rows"]
        if online_keys != len(latest):
            problems.append(f"online has {online_keys} keys, offline {len(latest)}")
        return (max(counts) + 1 if counts else 0), len(counts)


@pytest.mark.slow
def test_kill_during_insert(tmp_path: Path) -> None:
    root, ack, script = tmp_path / "store", tmp_path / "acks.txt", tmp_path / "child.py"
    script.write_text(CHILD)
    rng = random.Random(20240101)
    kills = kill_count()
    problems: list[str] = []
    started = time.perf_counter()

    def spawn() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(script), str(root), str(ack), str(ROWS), str(KEYS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    child, next_batch = spawn(), 0
    for round_ in range(kills):
        assert child.stdin is not None
        assert child.stdout is not None
        child.stdin.write(f"{next_batch}\n")
        child.stdin.flush()
        line = child.stdout.readline()
        if line.strip() != "ready":
            child.kill()
            pytest.fail(f"child did not start: {line!r} {child.communicate()[1]}")
        if round_ == kills - 1:
            wait_for_an_ack(ack, len(acknowledged(ack)), child)
        time.sleep(rng.uniform(0.0, max_delay()))
        child.send_signal(signal.SIGKILL)
        _, err = child.communicate()
        assert child.returncode == -signal.SIGKILL, err  # it was still inserting, not crashed
        child = spawn()  # imports while the store is checked
        next_batch, _ = check(root, ack, problems)
    child.kill()
    child.communicate()
    batches = len(acknowledged(ack))
    _, seen = check(root, ack, problems)
    seconds = time.perf_counter() - started
    print(
        f"\nkill -9 during insert: {kills} kills, {batches} acknowledged batches, "
        f"{seen} batches visible ({seen * ROWS} rows), {len(problems)} violations, "
        f"{seconds:.0f}s"
    )
    assert problems == []
    assert batches > 0
