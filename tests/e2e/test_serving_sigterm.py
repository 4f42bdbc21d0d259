"""``fti serve`` as a real process on a loopback port: SIGTERM under load loses no log row of
a request that was answered 200, and a non-loopback bind without auth refuses to start."""

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

pytestmark = pytest.mark.slow  # `fti serve` processes under load, signalled

TESTS = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sigterm") / "store"
    fs = fti.connect(path)
    serving_world.build(fs, trips=80)
    fs.close()
    return path


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            pytest.fail(f"fti serve exited with {proc.returncode}:\n{out}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    pytest.fail("fti serve did not become ready")


def test_sigterm_under_load_keeps_every_answered_prediction_in_the_log(root: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fti",
            "serve",
            "--model",
            "trip_model",
            "--port",
            str(port),
            "--root",
            str(root),
            "--log-level",
            "warning",
        ],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_ready(url, proc)
        answered: list[str] = []
        failures: list[str] = []
        stop = threading.Event()

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
                        return  # the server is gone: stop sending
                    if r.status_code == 200:
                        answered.append(r.json()["request_id"])
                    else:
                        failures.append(f"{r.status_code} {r.text}")

        threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(answered) < 150 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=90)
        stop.set()
        for t in threads:
            t.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = proc.stdout.read().decode() if proc.stdout else ""
    assert rc == 0, output
    assert failures == []
    assert len(answered) >= 150
    fs = fti.connect(root)
    try:
        log = fs.get_feature_view("trips_view", version=1).read_log(model="trip_model")
        logged = set(log["request_id"])
        missing = [rid for rid in answered if rid not in logged]
        assert missing == []
    finally:
        fs.close()


def test_non_loopback_bind_without_auth_refuses_to_start(root: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fti",
            "serve",
            "--model",
            "trip_model",
            "--host",
            "0.0.0.0",
            "--root",
            str(root),
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Refusing to bind '0.0.0.0' without authentication" in result.stderr + result.stdout
