"""``ListSource``: an in-memory stream over a list of dicts, for tests and backfills."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fti.backends.streams import SourceRecord

__all__ = ["ListSource"]


class ListSource:
    """Deliver ``events`` in order; the position of an event is its index in the list.

    >>> src = ListSource([{"card": "a", "amount": 3.0, "ts": "2024-01-01T00:00:00Z"}])
    """

    url = "memory://list"

    def __init__(self, events: Sequence[Mapping[str, Any]], *, partition: str = "0") -> None:
        self._events = list(events)
        self._partition = partition
        self._next = 0
        self.committed: int = -1

    def open(self, positions: Mapping[str, str]) -> None:
        last = positions.get(self._partition)
        self._next = 0 if last is None else int(last) + 1

    def poll(self, max_records: int, timeout: float) -> list[SourceRecord]:
        end = min(len(self._events), self._next + max_records)
        out = [
            SourceRecord(self._partition, str(i), self._events[i]) for i in range(self._next, end)
        ]
        self._next = end
        return out

    def commit(self, positions: Mapping[str, str]) -> None:
        if self._partition in positions:
            self.committed = int(positions[self._partition])

    def lag(self) -> int | None:
        return len(self._events) - self._next

    def close(self) -> None:
        pass
