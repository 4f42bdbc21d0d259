"""``fti serve`` as a real process against slow and greedy clients (raw sockets on loopback):
a request trickled one byte per 0.5 s is answered 408 and disconnected within the read
timeout, oversized headers get 431, and connections beyond ``--max-connections`` get 503."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import fti
import serving_world

pytestmark = pytest.mark.slow  # each test drives a real `fti serve` process

TESTS = Path(__file__).resolve().parents[1]
READ_TIMEOUT = 2.25  # not a multiple of INTERVAL: the deadline never meets a byte
INTERVAL = 0.5  # seconds between two bytes of a slow client


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
    path = tmp_path_factory.mktemp("slow") / "store"
    fs = fti.connect(path)
    serving_world.build(fs, trips=40)
    fs.close()
    return path


def _serve(root: Path, *options: str) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "fti", "serve", "--model", "trip_model"),
            *("--port", str(port), "--root", str(root), "--log-level", "warning"),
            *options,
        ],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            pytest.fail(f"fti serve exited with {proc.returncode}:\n{out}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc, port
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    pytest.fail("fti serve did not become ready")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[int]:
    proc, port = _serve(root, "--read-timeout", str(READ_TIMEOUT))
    yield port
    _stop(proc)


def _trickle(port: int, head: bytes, slow: bytes) -> tuple[bytes, int]:
    """Send ``head`` at once, then ``slow`` one byte per INTERVAL, reading meanwhile.
    Returns what the server sent before closing, and how many slow bytes went out."""
    received = b""
    sent = 0
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.settimeout(INTERVAL)
        if head:
            s.sendall(head)
        for byte in slow:
            try:
                s.sendall(bytes([byte]))
            except OSError:  # reset: the server closed
                break
            sent += 1
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # reset
                break
            received += chunk
            break  # an answer (or a close): stop sending
        else:
            pytest.fail(f"the server kept the connection for all {len(slow)} slow bytes")
        received += _read_to_close(s)
    return received, sent


def _read_to_close(s: socket.socket) -> bytes:
    s.settimeout(30)
    received = b""
    with contextlib.suppress(OSError):  # a reset after the response is a close too
        while chunk := s.recv(65536):
            received += chunk
    return received


def test_headers_trickled_byte_by_byte_get_408_and_the_connection_closed(server: int) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 60 + b"\r\n\r\n"
    received, sent = _trickle(server, b"", request)
    assert received.startswith(b"HTTP/1.1 408 "), received[:200]
    assert b"connection: close" in received.lower()
    assert b"did not arrive within 2.25 seconds" in received
    # Closed long before the client was done (len(request) * 0.5 s = 40 s).
    assert sent < len(request) // 2
    assert received.endswith(b"}")  # the whole response, then the close


def test_a_body_trickled_byte_by_byte_gets_408_and_the_connection_closed(server: int) -> None:
    body = b'{"entities": [{"trip_id": 1}], "request": {"dep_hour": 1}}'.ljust(120)
    head = (
        b"POST /v1/models/trip_model/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    received, sent = _trickle(server, head, body)
    assert received.startswith(b"HTTP/1.1 408 "), received[:200]
    assert b'"error":"RequestTimeout"' in received.replace(b" ", b"")
    assert sent < len(body) // 2


def test_an_idle_connection_is_closed_after_the_read_timeout(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as s:
        received = _read_to_close(s)
    assert received.startswith(b"HTTP/1.1 408 ")


def test_oversized_headers_get_431(server: int) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Big: " + b"b" * 80_000
    with socket.create_connection(("127.0.0.1", server)) as s:
        with contextlib.suppress(OSError):  # the server may close before all is sent
            s.sendall(request)
        received = _read_to_close(s)
    assert received.startswith(b"HTTP/1.1 431 "), received[:200]


def test_a_normal_request_still_succeeds(server: int) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{server}", timeout=30) as c:
        r = c.post(
            "/v1/models/trip_model/predict",
            json={"entities": [{"trip_id": 1}], "request": {"dep_hour": 1}},
        )
        assert r.status_code == 200, r.text
        assert c.get("/healthz").status_code == 200  # the same connection, kept alive


def _status(port: int) -> int:
    with httpx.Client(timeout=30) as c:  # a fresh connection each time
        return c.get(f"http://127.0.0.1:{port}/healthz").status_code


def test_connections_beyond_max_connections_get_503(root: Path) -> None:
    proc, port = _serve(root, "--max-connections", "2", "--read-timeout", "120")
    try:
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        try:
            assert _status(port) == 503  # a third connection
            idle.pop().close()
            deadline = time.monotonic() + 60
            while (status := _status(port)) != 200 and time.monotonic() < deadline:
                time.sleep(0.2)  # until the server has seen the close
            assert status == 200  # one idle + this one: within the limit
        finally:
            for s in idle:
                s.close()
    finally:
        _stop(proc)
