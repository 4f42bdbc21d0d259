"""Streaming from Redis Streams: exact aggregates online and offline, reconnect after the
consumer's connection is killed, status, SIGTERM."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from streaming_support import cards_pipeline, compare, make_events, oracle

import fti
from fti.backends.streams.redis import RedisStreamSource
from fti.pipelines.streaming import statuses
from service_checks import require_service

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # `fti stream run` processes
URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_stream() -> Iterator[tuple[object, str]]:
    require_service("Redis", "127.0.0.1", 6379)
    import redis

    client = redis.Redis.from_url(URL, decode_responses=True)
    key = f"fti-test-stream-{uuid.uuid4().hex}"  # unique per test run
    yield client, key
    client.delete(key)
    client.close()


def xadd_all(client: object, key: str, events: list[dict[str, str]]) -> None:
    pipe = client.pipeline(transaction=False)  # type: ignore[attr-defined]
    for e in events:
        pipe.xadd(key, e)
    pipe.execute()


@pytest.mark.parametrize("online", ["sqlite", "redis"])
def test_redis_stream_matches_oracle_online_and_offline(
    tmp_path: Path, redis_stream: tuple[object, str], online: str
) -> None:
    client, key = redis_stream
    delivery, unique = make_events(3_000, seed=1)
    xadd_all(client, key, [*delivery, {"kind": "ping", "card": "x"}])
    # The pipeline only talks to feature groups, so any online store works.
    prefix = f"fti_stream_test_{uuid.uuid4().hex[:12]}"
    url = f"{URL}?prefix={prefix}" if online == "redis" else None
    fs = fti.connect(tmp_path / "store", online=url)
    request_cleanup = online == "redis"
    pipeline = cards_pipeline(RedisStreamSource(URL, stream=key, group="g"), batch_size=700)
    report = pipeline.run(fs, idle_timeout=1.0)
    assert report.records == len(delivery) + 1
    assert report.accepted == len(unique)
    assert report.duplicates == len(delivery) - len(unique)
    assert report.late == 0
    assert compare(fs, "cards", oracle(unique)) == (0, 0)
    # Everything acknowledged; the checkpoint tells `fti stream status` what happened.
    assert client.xpending(key, "g")["pending"] == 0  # type: ignore[attr-defined]
    (status,) = statuses(fs)
    assert status["status"] == "stopped"
    assert status["counters"]["records"] == len(delivery) + 1
    assert status["lag"] == 0
    # A restart with nothing new reads nothing and changes nothing.
    again = cards_pipeline(RedisStreamSource(URL, stream=key, group="g")).run(fs, idle_timeout=0.3)
    assert again.records == 0
    fs.close()
    if request_cleanup:
        for k in client.scan_iter(f"{prefix}*"):  # type: ignore[attr-defined]
            client.delete(k)  # type: ignore[attr-defined]


def test_reconnects_after_its_connection_is_killed(
    tmp_path: Path, redis_stream: tuple[object, str]
) -> None:
    client, key = redis_stream
    delivery, unique = make_events(2_000, seed=2)
    fs = fti.connect(tmp_path / "store")
    source = RedisStreamSource(URL, stream=key, group="g", consumer=f"c-{uuid.uuid4().hex}")
    pipeline = cards_pipeline(source, batch_size=200)
    done: dict[str, object] = {}
    runner = threading.Thread(
        target=lambda: done.update(report=pipeline.run(fs, idle_timeout=3.0)), daemon=True
    )
    runner.start()
    killed = 0
    for chunk in range(4):
        xadd_all(client, key, delivery[chunk * 550 : (chunk + 1) * 550])
        time.sleep(0.4)
        # Kill the consumer's connection(s) (never anyone else's): found by client name.
        for c in client.client_list():  # type: ignore[attr-defined]
            if c.get("name") == source.client_name:
                client.client_kill_filter(_id=c["id"])  # type: ignore[attr-defined]
                killed += 1
    runner.join(timeout=60)
    assert not runner.is_alive()
    assert killed >= 1
    assert compare(fs, "cards", oracle(unique)) == (0, 0)
    fs.close()


def _pending(client: object, key: str) -> int:
    import redis

    try:
        return int(client.xpending(key, "fti-test")["pending"])  # type: ignore[attr-defined]
    except redis.ResponseError:  # the consumer group does not exist yet
        return 0


def test_sigterm_stops_gracefully_and_status_reports(
    tmp_path: Path, redis_stream: tuple[object, str]
) -> None:
    import os
    import signal
    import subprocess
    import sys

    client, key = redis_stream
    delivery, unique = make_events(8_000, seed=6)
    late = {"card": "c1", "tx": "late-1", "ts": "2023-12-31T00:00:00+00:00", "amount": "5"}
    xadd_all(client, key, [*delivery, late])
    root = tmp_path / "store"
    here = Path(__file__).parent
    env = {**os.environ, "FTI_TEST_STREAM": key, "FTI_TEST_BATCH": "500"}
    fti_cmd = [sys.executable, "-m", "fti"]
    proc = subprocess.Popen(
        [*fti_cmd, "stream", "run", f"{here / 'stream_cards_app.py'}:cards", "--root", str(root)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _pending(client, key):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped by SIGTERM" in out
    fs = fti.connect(root)
    (status,) = statuses(fs)
    assert status["status"] == "stopped"
    consumed = status["counters"]["records"]
    assert consumed > 0
    # Graceful: everything consumed was checkpointed and acknowledged, nothing is pending.
    assert client.xpending(key, "fti-test")["pending"] == 0  # type: ignore[attr-defined]
    fs.close()
    # Finish the stream: the late event is counted (not applied) and shown by `fti stream status`.
    subprocess.run(
        [
            *fti_cmd,
            "stream",
            "run",
            f"{here / 'stream_cards_app.py'}:cards",
            "--root",
            str(root),
            "--idle-timeout",
            "1",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    shown = subprocess.run(
        [*fti_cmd, "stream", "status", "--root", str(root)],
        capture_output=True,
        text=True,
        check=True,
        env={**env, "COLUMNS": "250"},
    ).stdout
    assert "cards" in shown
    assert "stopped" in shown
    fs = fti.connect(root)
    (status,) = statuses(fs)
    assert status["counters"]["late"] == 1
    assert status["counters"]["records"] == len(delivery) + 1
    assert compare(fs, "cards", oracle(unique)) == (0, 0)
    fs.close()
