"""Streaming from Kafka (confluent-kafka) against a Kafka-protocol broker installed from PyPI
(noida-db, started here as a subprocess): exact aggregates, and a broker restart mid-run."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streaming_support import cards_pipeline, compare, make_events, oracle

import fti
from fti.pipelines.streaming import statuses

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """A noida-db Kafka broker on a free port, restartable on the same port and data dir."""

    def __init__(self, data_dir: Path) -> None:
        exe = shutil.which("noida-db") or str(Path(sys.executable).parent / "noida-db")
        if not Path(exe).exists():
            message = 'noida-db is not installed: pip install "fti[dev]"'
            if os.environ.get("FTI_REQUIRE_SERVICES") == "1":
                pytest.fail(message, pytrace=False)
            pytest.skip(message)
        self.exe = exe
        self.port = _free_port()
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.exe,
                "start",
                "--host",
                "127.0.0.1",
                "--only",
                "kafka",
                "--kafka-port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # The `noida-db` script runs the broker binary as a child: a session of its own lets
            # stop() signal both (terminating only the script left the broker running, still
            # serving the port, so a "restart" did not restart anything).
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"noida-db did not listen on {self.bootstrap} within 30s", pytrace=False)

    def stop(self) -> None:
        if self.proc is not None:
            self._signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
            self._signal(signal.SIGKILL)  # whatever of the group is left
            self.proc.wait()
            self.proc = None
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # the port is free once the broker is gone
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                except OSError:
                    return
                time.sleep(0.1)
            pytest.fail(f"noida-db still listens on {self.bootstrap} after stop", pytrace=False)

    def _signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    pytest.importorskip("confluent_kafka")
    b = Broker(tmp_path / "kafka")
    b.start()
    yield b
    b.stop()


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, num_partitions=partitions)]).values():
        f.result(timeout=20)


def produce(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for e in events:
        producer.produce(topic, key=e.get("card", ""), value=json.dumps(e))
        producer.poll(0)
    assert producer.flush(30) == 0


@pytest.mark.slow
def test_kafka_stream_matches_oracle(tmp_path: Path, broker: Broker) -> None:
    from fti.backends.streams.kafka import KafkaSource

    topic = f"fti-test-{uuid.uuid4().hex[:12]}"
    create_topic(broker.bootstrap, topic, 2)
    delivery, unique = make_events(2_000, seed=3)
    produce(broker.bootstrap, topic, delivery)
    fs = fti.connect(tmp_path / "store")
    pipeline = cards_pipeline(KafkaSource(broker.bootstrap, topic=topic, group="g"))
    report = pipeline.run(fs, idle_timeout=5.0)
    assert report.records == len(delivery)
    assert report.accepted == len(unique)
    assert compare(fs, "cards", oracle(unique)) == (0, 0)
    (status,) = statuses(fs)
    assert sum(1 for p in status["positions"] if p.startswith(topic)) >= 1
    fs.close()


@pytest.mark.slow
def test_kafka_broker_restart_reconnects_and_catches_up(tmp_path: Path, broker: Broker) -> None:
    from fti.backends.streams.kafka import KafkaSource

    topic = f"fti-test-{uuid.uuid4().hex[:12]}"
    create_topic(broker.bootstrap, topic, 2)
    delivery, unique = make_events(2_000, seed=4)
    half = len(delivery) // 2
    produce(broker.bootstrap, topic, delivery[:half])
    fs = fti.connect(tmp_path / "store")
    pipeline = cards_pipeline(KafkaSource(broker.bootstrap, topic=topic, group="g"))
    done: dict[str, Any] = {}

    def consume() -> None:
        try:
            done["report"] = pipeline.run(fs, idle_timeout=8.0)
        except BaseException as e:  # surfaced by the assertion below
            done["error"] = e

    runner = threading.Thread(target=consume, daemon=True)
    runner.start()
    time.sleep(3)
    broker.stop()  # the broker goes away mid-run ...
    time.sleep(2)
    broker.start()  # ... and comes back on the same port with the same data
    produce(broker.bootstrap, topic, delivery[half:])
    runner.join(timeout=120)
    assert not runner.is_alive()
    assert "error" not in done, done.get("error")
    assert compare(fs, "cards", oracle(unique)) == (0, 0)
    fs.close()
