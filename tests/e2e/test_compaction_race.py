"""A compaction (with vacuum) racing inserts in another process loses no row.

Delta commits are optimistic: the compaction rewrites the files it read, an append adds new
ones; neither overwrites the other. The vacuum is not a "full" one, so a file an insert has
written but not yet committed is never deleted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

import fti

BATCHES = 60
ROWS = 5
KEYS = 23

INSERTER = """
import sys
from datetime import UTC, datetime, timedelta
import pyarrow as pa
import fti

root, batches, rows, keys = sys.argv[1], *map(int, sys.argv[2:5])
t0 = datetime(2024, 1, 1, tzinfo=UTC)
fs = fti.connect(root)
fg = fs.get_feature_group("race", version=1)
for b in range(batches):
    g = [b * rows + i for i in range(rows)]
    fg.insert(pa.table({
        "k": pa.array([x % keys for x in g], pa.int64()),
        "t": pa.array([t0 + timedelta(seconds=x) for x in g], pa.timestamp("us", "UTC")),
        "g": pa.array(g, pa.int64()),
    }))
print("done", flush=True)
"""

COMPACTOR = """
import sys, time
from pathlib import Path
import fti

root, stop = sys.argv[1], Path(sys.argv[2])
fs = fti.connect(root)
fg = fs.get_feature_group("race", version=1)
n = 0
while not stop.exists():
    fg.compact(vacuum=True, retain_versions=2)
    n += 1
    time.sleep(0.02)
print(n, flush=True)
"""


@pytest.mark.slow
def test_compaction_racing_an_insert_process_loses_no_row(tmp_path: Path) -> None:
    root, stop = tmp_path / "store", tmp_path / "stop"
    (tmp_path / "insert.py").write_text(INSERTER)
    (tmp_path / "compact.py").write_text(COMPACTOR)
    env = {**os.environ, "FTI_COMPACT_FILES": "0", "FTI_PROGRESS": "0"}
    with fti.connect(root) as fs:
        fg = fs.feature_group("race", primary_key=["k"], event_time="t", online=True)
        fg.insert([{"k": 0, "t": datetime(2023, 1, 1, tzinfo=UTC), "g": -1}])
    compactor = subprocess.Popen(
        [sys.executable, str(tmp_path / "compact.py"), str(root), str(stop)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    inserter = subprocess.Popen(
        [
            sys.executable,
            str(tmp_path / "insert.py"),
            str(root),
            str(BATCHES),
            str(ROWS),
            str(KEYS),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = inserter.communicate(timeout=600)
    assert inserter.returncode == 0, err
    assert out.strip() == "done"
    time.sleep(0.3)
    stop.touch()
    c_out, c_err = compactor.communicate(timeout=300)
    assert compactor.returncode == 0, c_err
    assert int(c_out.strip()) > 0

    with fti.connect(root) as fs:
        fg = fs.get_feature_group("race", version=1)
        offline = fg.read(format="arrow").to_pydict()
        ids = Counter(offline["g"])
        assert set(ids) == set(range(-1, BATCHES * ROWS))
        assert max(ids.values()) == 1
        latest: dict[int, tuple[object, int]] = {}
        for k, t, g in zip(offline["k"], offline["t"], offline["g"], strict=True):
            if k not in latest or t > latest[k][0]:
                latest[k] = (t, g)
        online = fg.read_online([{"k": k} for k in sorted(latest)])
        assert [r["g"] for r in online] == [latest[k][1] for k in sorted(latest)]
