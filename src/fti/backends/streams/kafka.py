"""``KafkaSource``: read a Kafka topic with confluent-kafka (no auto-commit)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fti.backends.streams import SourceRecord
from fti.config import mask_url
from fti.errors import BackendUnavailableError, MissingDependencyError, ValidationError

__all__ = ["KafkaSource"]


class KafkaSource:
    """Consume ``topic`` in consumer group ``group``; record values are JSON objects.

    Positions are ``"<topic>:<partition>" -> last processed offset``. On assignment, a partition
    found in the checkpoint resumes at that offset + 1 (the checkpoint wins over the offsets
    committed to the broker, which are only updated afterwards, for monitoring).

    >>> src = KafkaSource("127.0.0.1:9092", topic="transactions")
    """

    def __init__(
        self,
        bootstrap_servers: str = "127.0.0.1:9092",
        *,
        topic: str,
        group: str = "fti",
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.url = f"kafka://{bootstrap_servers}/{topic}"
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.group = group
        self.config = dict(config or {})
        self._consumer: Any = None
        self._positions: dict[str, str] = {}

    def _key(self, partition: int) -> str:
        return f"{self.topic}:{partition}"

    def open(self, positions: Mapping[str, str]) -> None:
        try:
            import confluent_kafka
        except ImportError:  # pragma: no cover - depends on the environment
            raise MissingDependencyError("confluent-kafka", "kafka", "KafkaSource") from None
        conf = {
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": self.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            **self.config,
        }
        self._positions = dict(positions)
        self._consumer = confluent_kafka.Consumer(conf)

        def on_assign(consumer: Any, partitions: list[Any]) -> None:
            for p in partitions:
                last = self._positions.get(self._key(p.partition))
                if last is not None:
                    p.offset = int(last) + 1
            consumer.assign(partitions)

        self._consumer.subscribe([self.topic], on_assign=on_assign)

    def poll(self, max_records: int, timeout: float) -> list[SourceRecord]:
        messages = self._consumer.consume(num_messages=max_records, timeout=timeout)
        out = []
        for m in messages:
            err = m.error()
            if err is not None:
                if err.retriable() or not err.fatal():
                    continue  # e.g. partition EOF, broker transport down: librdkafka retries
                raise BackendUnavailableError(
                    mask_url(f"Kafka consumer of {self.url} failed: {err}")
                )
            try:
                fields = json.loads(m.value())
            except ValueError as e:
                raise ValidationError(
                    f"Kafka record {self._key(m.partition())}@{m.offset()} is not JSON: {e}. "
                    "Produce JSON objects."
                ) from e
            out.append(SourceRecord(self._key(m.partition()), str(m.offset()), fields))
        return out

    def commit(self, positions: Mapping[str, str]) -> None:
        from confluent_kafka import TopicPartition

        self._positions.update(positions)
        offsets = [
            TopicPartition(self.topic, int(k.rpartition(":")[2]), int(v) + 1)
            for k, v in positions.items()
        ]
        if offsets:
            self._consumer.commit(offsets=offsets, asynchronous=False)

    def lag(self) -> int | None:
        from confluent_kafka import TopicPartition

        total = 0
        try:
            for tp in self._consumer.assignment():
                _, high = self._consumer.get_watermark_offsets(
                    TopicPartition(tp.topic, tp.partition), timeout=2, cached=False
                )
                last = self._positions.get(self._key(tp.partition))
                total += max(0, high - (int(last) + 1 if last is not None else 0))
        except Exception:  # monitoring only: an unreachable broker means "unknown"
            return None
        return total

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
