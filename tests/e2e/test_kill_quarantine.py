"""Kill -9 during quarantining inserts: an insert's committed rows and its quarantined rows are
both visible or both absent, and acknowledged inserts are complete.

A child inserts numbered batches into a group with ``on_invalid="quarantine"``; every tenth row
of a batch breaks a rule. The parent SIGKILLs it at random moments (the same store is reused)
and checks, per batch: committed == passing rows and quarantined == failing rows, or neither.
Kills: ``FTI_KILL_COUNT``, else 30 when ``CI=true``, else 6.
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

ROWS = 60
BAD = ROWS // 10

CHILD = """
import os, sys
from datetime import UTC, datetime, timedelta
import pyarrow as pa
import fti

root, ack, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = datetime(2024, 1, 1, tzinfo=UTC)
start = int(sys.stdin.readline())
fs = fti.connect(root)
fg = fs.feature_group("killed", primary_key=["g"], event_time="t",
                      expectations=[fti.expect.between("amount", 0, 100)],
                      on_invalid="quarantine")
fd = os.open(ack, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
print("ready", flush=True)
batch = start
while True:
    g = [batch * rows + i for i in range(rows)]
    fg.insert(pa.table({
        "g": pa.array(g, pa.int64()),
        "t": pa.array([t0 + timedelta(seconds=x) for x in g], pa.timestamp("us", "UTC")),
        "batch": pa.array([batch] * rows, pa.int64()),
        "amount": pa.array([-1.0 if x % 10 == 0 else 1.0 for x in g], pa.float64()),
    }))
    os.write(fd, f"{batch}\\n".encode())
    os.fsync(fd)
    batch += 1
"""


def acknowledged(ack: Path) -> set[int]:
    if not ack.exists():
        return set()
    text = ack.read_text()
    return {int(x) for x in text[: text.rfind("\n") + 1].split()}


def check(root: Path, ack: Path, problems: list[str]) -> int:
    with fti.connect(root) as fs:
        try:
            fg = fs.get_feature_group("killed", version=1)
        except fti.NotFoundError:
            return 0
        if not fg.spec.has_schema:
            return 0
        committed = Counter(fg.read(format="arrow").column("batch").to_pylist())
        aside = Counter(fg.quarantined(format="arrow").column("batch").to_pylist())
        for b in sorted(set(committed) | set(aside)):
            got = (committed.get(b, 0), aside.get(b, 0))
            if got not in ((ROWS - BAD, BAD), (0, 0)):
                problems.append(f"batch {b}: {got[0]} committed, {got[1]} quarantined")
        for b in acknowledged(ack):
            if committed.get(b) != ROWS - BAD:
                problems.append(f"acknowledged batch {b} has {committed.get(b, 0)} rows")
        return max(committed) + 1 if committed else 0


@pytest.mark.slow
def test_kill_during_quarantining_insert(tmp_path: Path) -> None:
    root, ack, script = tmp_path / "store", tmp_path / "acks.txt", tmp_path / "child.py"
    script.write_text(CHILD)
    rng = random.Random(12)
    kills = int(os.environ.get("FTI_KILL_COUNT") or (30 if os.environ.get("CI") else 6))
    problems: list[str] = []
    next_batch = 0
    for _ in range(kills):
        child = subprocess.Popen(
            [sys.executable, str(script), str(root), str(ack), str(ROWS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdin is not None
        assert child.stdout is not None
        child.stdin.write(f"{next_batch}\n")
        child.stdin.flush()
        line = child.stdout.readline()
        if line.strip() != "ready":
            child.kill()
            pytest.fail(f"child did not start: {line!r} {child.communicate()[1]}")
        time.sleep(rng.uniform(0.1, 1.5))
        child.send_signal(signal.SIGKILL)
        _, err = child.communicate()
        assert child.returncode == -signal.SIGKILL, err
        next_batch = max(next_batch, check(root, ack, problems)) + 1
    print(
        f"\nkill -9 during quarantining insert: {kills} kills, "
        f"{len(acknowledged(ack))} acknowledged batches, {len(problems)} violations"
    )
    assert problems == []
    assert acknowledged(ack)
