"""kill -9 the stream consumer at random moments during a run with duplicates and
out-of-order delivery; after restarts, online and offline state equal the oracle.

Full size (the issue's numbers: 100,000 events, 20 kills) with CI=true; a smaller run
locally (FTI_CRASH_EVENTS / FTI_CRASH_KILLS override both).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from streaming_support import compare, make_events, oracle

import fti
from fti.pipelines.streaming import statuses
from service_checks import require_service

pytestmark = [pytest.mark.integration, pytest.mark.slow]
HERE = Path(__file__).parent
CI = os.environ.get("CI") == "true"
EVENTS = int(os.environ.get("FTI_CRASH_EVENTS", 100_000 if CI else 20_000))
KILLS = int(os.environ.get("FTI_CRASH_KILLS", 20 if CI else 6))


def delivered(client: object, key: str) -> str | None:
    """The consumer group's last delivered id (None before the group exists)."""
    import redis

    try:
        groups = client.xinfo_groups(key)  # type: ignore[attr-defined]
    except redis.ResponseError:
        return None
    return next((g["last-delivered-id"] for g in groups if g["name"] == "fti-test"), None)


def test_kill_9_and_restart_gives_the_oracle_state(tmp_path: Path) -> None:
    require_service("Redis", "127.0.0.1", 6379)
    import redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/0", decode_responses=True)
    key = f"fti-test-crash-{uuid.uuid4().hex}"
    delivery, unique = make_events(EVENTS, keys=200, seed=5)
    # The events arrive while the consumer runs: one more chunk before each kill, so that a
    # fast consumer cannot drain the stream before the last kill.
    size = -(-len(delivery) // (KILLS + 1))
    chunks = [delivery[i : i + size] for i in range(0, len(delivery), size)]

    def produce() -> None:
        if chunks:
            pipe = client.pipeline(transaction=False)
            for e in chunks.pop(0):
                pipe.xadd(key, e)
            pipe.execute()

    produce()
    root = tmp_path / "store"
    env = {**os.environ, "FTI_TEST_STREAM": key, "FTI_TEST_BATCH": "1000"}
    cmd = [
        sys.executable,
        "-m",
        "fti",
        "stream",
        "run",
        str(HERE / "stream_cards_app.py") + ":cards",
        "--root",
        str(root),
        "--idle-timeout",
        "2",
    ]
    rng = random.Random(9)
    try:
        kills = 0
        while kills < KILLS:
            before = delivered(client, key)
            proc = subprocess.Popen(
                cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            produce()
            # Random moments: a quarter during start-up and state restore, the rest while
            # consuming (batches, Delta commits, checkpoints, acknowledgements) or idle.
            if rng.random() < 0.25:
                time.sleep(rng.uniform(0.05, 1.0))
            else:
                deadline = time.monotonic() + 60
                while delivered(client, key) == before and time.monotonic() < deadline:
                    if proc.poll() is not None:
                        break
                    time.sleep(0.02)
                time.sleep(rng.uniform(0.0, 0.5))
            if proc.poll() is not None:
                break  # it already drained the stream and stopped (idle timeout)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            if root.exists():  # a killed consumer is never reported as running
                check = fti.connect(root)
                try:
                    assert all(s["status"] != "running" for s in statuses(check))
                finally:
                    check.close()
        while chunks:
            produce()
        final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert final.returncode == 0, final.stderr
        pending = client.xpending(key, "fti-test")["pending"]
    finally:
        client.delete(key)
        client.close()
    print(f"{EVENTS} events ({len(delivery)} deliveries), {kills} kills")
    assert kills == KILLS, "the consumer stopped by itself before every kill"
    assert pending == 0
    fs = fti.connect(root)
    try:
        assert compare(fs, "cards", oracle(unique)) == (0, 0)
        # The events table holds every event, each id once after deduplication on read.
        events = fs.get_feature_group("cards_events").read(format="arrow")
        assert set(events.column("tx").to_pylist()) == {e["tx"] for e in unique}
        (status,) = statuses(fs)
        assert status["status"] == "stopped"
        assert status["counters"]["late"] == 0
        assert status["counters"]["invalid"] == 0
    finally:
        fs.close()
