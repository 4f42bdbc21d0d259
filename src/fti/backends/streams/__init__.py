"""Stream sources: where a streaming feature pipeline reads events from.

A source delivers records *at least once*. Its positions (Redis stream ids, Kafka offsets, list
indexes) are plain strings per partition; the runtime stores them in its checkpoint only after
the writes they cover are durable, then calls ``commit``. On restart ``open(positions)`` resumes
strictly after those positions, whatever the broker itself remembers, so the checkpoint is the
single source of truth and a record is never lost (it may be delivered again; the runtime drops
it by event id).

Implementations: ``ListSource`` (in memory, for tests), ``RedisStreamSource`` (consumer groups,
XREADGROUP/XACK), ``KafkaSource`` (confluent-kafka). The last two import their client lazily.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

__all__ = ["KafkaSource", "ListSource", "RedisStreamSource", "SourceRecord", "StreamSource"]


class SourceRecord(NamedTuple):
    """One delivered record: its partition, position in it, and decoded fields.

    A named tuple: a source makes one per record, and a frozen dataclass costs ~4x more."""

    partition: str
    position: str
    fields: Mapping[str, Any]


class StreamSource(Protocol):
    """A consumer of one stream (a Redis stream, a Kafka topic, a list)."""

    url: str

    def open(self, positions: Mapping[str, str]) -> None:
        """Connect and resume after ``positions`` (partition -> last processed position)."""

    def poll(self, max_records: int, timeout: float) -> list[SourceRecord]:
        """Up to ``max_records`` records, waiting at most ``timeout`` seconds for the first."""

    def commit(self, positions: Mapping[str, str]) -> None:
        """Tell the broker everything up to ``positions`` is processed (ack / offset commit)."""

    def lag(self) -> int | None:
        """Records in the stream not yet delivered to this consumer (None if unknown)."""

    def close(self) -> None:
        """Disconnect."""


def __getattr__(name: str) -> Any:
    # Lazy: importing fti.backends.streams never imports redis or confluent_kafka.
    if name == "ListSource":
        from fti.backends.streams.memory import ListSource

        return ListSource
    if name == "RedisStreamSource":
        from fti.backends.streams.redis import RedisStreamSource

        return RedisStreamSource
    if name == "KafkaSource":
        from fti.backends.streams.kafka import KafkaSource

        return KafkaSource
    raise AttributeError(name)
