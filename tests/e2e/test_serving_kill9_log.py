"""``fti serve`` killed with SIGKILL under load loses at most the predictions it answered during
its last prediction-log flush interval (1 s): rows already spooled are committed by the log
committer, which outlives the server (README, "Prediction logs")."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

import fti
import serving_world
from fti.serving.log_spool import SPOOL_SUFFIX, spool_dir

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kill -9, Linux only"),
]

TESTS = Path(__file__).resolve().parents[1]
FLUSH_SECONDS = 1.0  # SpoolLogWriter's default
SLACK_SECONDS = 1.5  # one spool write on a busy machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kill9") / "store"
    fs = fti.connect(path)
    serving_world.build(fs, trips=80)
    fs.close()
    return path


def test_kill9_under_load_loses_only_the_last_flush_interval(root: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "fti", "serve", "--model", "trip_model"]
    cmd += ["--port", str(port), "--root", str(root), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    answered: dict[str, float] = {}  # request id -> when the 200 arrived
    stop = threading.Event()
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "fti serve did not become ready"
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)

        def load(worker: int) -> None:
            with httpx.Client(base_url=url, timeout=10) as client:
                i = 0
                while not stop.is_set():
                    body = {
                        "entities": [{"trip_id": (worker * 31 + i) % 80}],
                        "request": {"dep_hour": i % 24},
                    }
                    i += 1
                    try:
                        r = client.post("/v1/models/trip_model/predict", json=body)
                    except httpx.TransportError:
                        return  # killed
                    if r.status_code == 200:
                        answered[r.json()["request_id"]] = time.monotonic()

        threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        time.sleep(8)  # several flush intervals (and longer than the old 5 s writer batches)
        proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait(timeout=30)
        stop.set()
        for t in threads:
            t.join(timeout=30)
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(answered) >= 50
    # The committer outlives the server: it commits the spool, then deletes it.
    deadline = time.monotonic() + 60
    while any(spool_dir(root).glob(f"*{SPOOL_SUFFIX}")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # the committer's last round, if it was between two files
    fs = fti.connect(root)
    try:
        log = fs.get_feature_view("trips_view", version=1).read_log(model="trip_model")
    finally:
        fs.close()
    logged = set(log["request_id"])
    missing = {rid: killed_at - t for rid, t in answered.items() if rid not in logged}
    too_old = {rid: round(age, 2) for rid, age in missing.items()}
    too_old = {rid: age for rid, age in too_old.items() if age > FLUSH_SECONDS + SLACK_SECONDS}
    assert too_old == {}, f"{len(too_old)} of {len(answered)} answered predictions lost: {too_old}"
    assert len(logged) >= len(answered) - len(missing)
