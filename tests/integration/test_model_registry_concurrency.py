"""Concurrent model registrations from several processes get distinct, gap-free versions.

8 processes each register 25 versions of one model at the same time (they start together on a
signal file). Afterwards the versions are exactly 1..200, every version is ready, and each one's
artifact holds the payload of the registration that got that version (no artifact was written
over another's). Runs on the embedded SQLite registry and on PostgreSQL (a fresh database per
test); any other registry URL can be added to ``REGISTRIES``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import fti

PROCESSES = 8
PER_PROCESS = 25

CHILD = """
import json, sys, time
from pathlib import Path
import fti

root, registry, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
worker, count = int(sys.argv[4]), int(sys.argv[5])
fs = fti.connect(root, registry=registry)
print("ready", flush=True)
while not go.exists():
    time.sleep(0.005)
got = []
for i in range(count):
    payload = {"worker": worker, "i": i}
    mv = fs.models.register("contended", payload, metrics={"worker": worker, "i": i},
                            allow_pickle=True)
    got.append(mv.version)
fs.close()
print(json.dumps(got), flush=True)
"""


@pytest.mark.slow
@pytest.mark.integration
def test_concurrent_registrations_get_versions_1_to_n(tmp_path: Path, registry_url: str) -> None:
    root = tmp_path / "store"
    fti.connect(root, registry=registry_url).close()  # create the tables before the race
    go = tmp_path / "go"
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                str(root),
                registry_url,
                str(go),
                str(w),
                str(PER_PROCESS),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for w in range(PROCESSES)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
        go.touch()
        results = []
        for child in children:
            out, _ = child.communicate(timeout=300)
            assert child.returncode == 0, out
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()

    total = PROCESSES * PER_PROCESS
    # what each process saw: its own versions, increasing, and disjoint from the others'
    for got in results:
        assert len(got) == PER_PROCESS
        assert got == sorted(got)
    assert sorted(v for got in results for v in got) == list(range(1, total + 1))

    with fti.connect(root, registry=registry_url) as fs:
        versions = fs.models.list("contended")
        assert [mv.version for mv in versions] == list(range(1, total + 1))
        assert {mv.status for mv in versions} == {"ready"}
        assert fs.models.get("contended").version == total
        for worker, got in enumerate(results):
            for i, version in enumerate(got):
                mv = fs.models.get("contended", version=version)
                assert mv.metrics == {"worker": worker, "i": i}
                assert mv.load(allow_pickle=True) == {"worker": worker, "i": i}
