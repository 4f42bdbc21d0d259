"""Concurrent writers on S3 (moto): two processes insert 20 batches each into one table and
lose nothing, both with the server's conditional puts and with the registry-held commit lock.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

import fti
from fti.backends.offline import SEQ
from fti.backends.registry.commit_lock import SqlCommitLock
from fti.backends.resolver import open_offline
from s3_server import S3Server

pytestmark = pytest.mark.integration

WRITERS = 2
BATCHES = 20
ROWS = 50

WRITER = """
import sys, time
from datetime import UTC, datetime, timedelta
from pathlib import Path
import pyarrow as pa
import fti

root, go, writer, batches, rows = sys.argv[1], Path(sys.argv[2]), *map(int, sys.argv[3:6])
t0 = datetime(2024, 1, 1, tzinfo=UTC)
fs = fti.connect(root)
fg = fs.feature_group("shared", primary_key=["g"], event_time="t")
while not go.exists():
    time.sleep(0.005)
for b in range(batches):
    g = [(writer * batches + b) * rows + i for i in range(rows)]
    fg.insert(pa.table({
        "g": pa.array(g, pa.int64()),
        "t": pa.array([t0 + timedelta(seconds=x) for x in g], pa.timestamp("us", "UTC")),
        "writer": pa.array([writer] * rows, pa.int64()),
    }))
print("done", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("commit_lock", ["conditional", "registry"])
def test_two_writer_processes_on_s3_lose_nothing(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str, commit_lock: str
) -> None:
    root, go, script = tmp_path / "store", tmp_path / "go", tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "FTI_OFFLINE": s3_server.url(s3_bucket, "o", commit_lock=commit_lock)}
    with fti.connect(root, offline=env["FTI_OFFLINE"]) as fs:
        fs.feature_group("shared", primary_key=["g"], event_time="t")
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(root), str(go), str(w), str(BATCHES), str(ROWS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for w in range(WRITERS)
    ]
    time.sleep(1.5)  # let both import fti and open the store
    go.touch()
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        assert out.strip() == "done"

    with fti.connect(root, offline=env["FTI_OFFLINE"]) as fs:
        fg = fs.get_feature_group("shared", version=1)
        offline = fg.read(format="arrow").to_pydict()
        total = WRITERS * BATCHES * ROWS
        ids = Counter(offline["g"])
        assert set(range(total)) - set(ids) == set()  # nothing lost
        assert {g: n for g, n in ids.items() if n > 1} == {}  # nothing twice
        assert Counter(offline["writer"]) == dict.fromkeys(range(WRITERS), BATCHES * ROWS)
        assert fg.stats()["offline_version"] == WRITERS * BATCHES


def test_with_the_registry_lock_a_commit_waits_for_the_holder(
    registry_url: str, s3_server: S3Server, s3_bucket: str
) -> None:
    """The registry path really serializes commits: while another holder has the table's lock
    in the registry (SQLite or PostgreSQL), an append does not commit; once released, it does.
    """
    registry = registry_url
    store = open_offline(
        s3_server.url(s3_bucket, "o", commit_lock="registry"), registry_url=registry
    )
    schema = pa.schema([("id", pa.int64()), (SEQ, pa.int64())])
    store.create("t_v1", schema)
    batch = pa.table({"id": [1], SEQ: [0]}, schema=schema)
    versions: list[int] = []
    with SqlCommitLock(registry).hold("t_v1"):
        writer = threading.Thread(target=lambda: versions.append(store.append("t_v1", batch)))
        writer.start()
        writer.join(timeout=2.0)
        assert writer.is_alive()  # blocked on the lock
        assert open_offline(s3_server.url(s3_bucket, "o")).version("t_v1") == 0
    writer.join(timeout=60)
    assert versions == [1]
