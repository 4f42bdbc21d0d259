"""Two writer processes insert into one feature group at the same time: 0 lost, 0 duplicated.

Each writer inserts its own numbered rows (disjoint ids) for keys the other writer also uses,
so both the Delta commits and the online upserts contend. Afterwards the offline table holds
every row exactly once and the online row of each key is the latest of the offline rows.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import fti

WRITERS = 2
BATCHES = 20
ROWS = 100
KEYS = 50

WRITER = """
import sys, time
from datetime import UTC, datetime, timedelta
from pathlib import Path
import pyarrow as pa
import fti

root, go, writer, batches, rows, keys = sys.argv[1], Path(sys.argv[2]), *map(int, sys.argv[3:7])
t0 = datetime(2024, 1, 1, tzinfo=UTC)
fs = fti.connect(root)
fg = fs.feature_group("shared", primary_key=["k"], event_time="t", online=True)
while not go.exists():
    time.sleep(0.005)
for b in range(batches):
    g = [(writer * batches + b) * rows + i for i in range(rows)]
    fg.insert(pa.table({
        "k": pa.array([x % keys for x in g], pa.int64()),
        "t": pa.array([t0 + timedelta(seconds=(x * 7919) % 1_000_003) for x in g],
                      pa.timestamp("us", "UTC")),
        "writer": pa.array([writer] * rows, pa.int64()),
        "g": pa.array(g, pa.int64()),
    }))
print("done", flush=True)
"""


@pytest.mark.slow
def test_two_writer_processes_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    root, go, script = tmp_path / "store", tmp_path / "go", tmp_path / "writer.py"
    script.write_text(WRITER)
    with fti.connect(root) as fs:  # the definition exists before the race; the schema does not
        fs.feature_group("shared", primary_key=["k"], event_time="t", online=True)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(root), str(go)]
            + [str(x) for x in (w, BATCHES, ROWS, KEYS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(WRITERS)
    ]
    time.sleep(1.5)  # let both import fti and open the store
    go.touch()
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert out.strip() == "done"

    with fti.connect(root) as fs:
        fg = fs.get_feature_group("shared", version=1)
        offline = fg.read(include_superseded=True, format="arrow").to_pydict()  # every row
        total = WRITERS * BATCHES * ROWS
        ids = Counter(offline["g"])
        lost = set(range(total)) - set(ids)
        duplicated = {g: n for g, n in ids.items() if n > 1}
        print(
            f"\ntwo concurrent writers: {total} rows written, {len(offline['g'])} read back, "
            f"{len(lost)} lost, {len(duplicated)} duplicated, table version "
            f"{fg.stats()['offline_version']}"
        )
        assert lost == set()
        assert duplicated == {}
        assert len(offline["g"]) == total
        assert Counter(offline["writer"]) == dict.fromkeys(range(WRITERS), BATCHES * ROWS)
        # every insert is one commit (plus the table's creation, version 0)
        assert fg.stats()["offline_version"] == WRITERS * BATCHES

        latest: dict[int, tuple[object, int]] = {}
        for k, t, g in zip(offline["k"], offline["t"], offline["g"], strict=True):
            if k not in latest or t > latest[k][0]:
                latest[k] = (t, g)
        online = fg.read_online([{"k": k} for k in range(KEYS)])
        got = {k: (r["t"], r["g"]) for k, r in enumerate(online) if r is not None}
        assert got == latest
