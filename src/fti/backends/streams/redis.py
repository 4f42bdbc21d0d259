"""``RedisStreamSource``: read a Redis stream through a consumer group (XREADGROUP / XACK)."""

from __future__ import annotations

import bisect
import time
from collections.abc import Mapping
from typing import Any

from fti.backends.streams import SourceRecord
from fti.config import mask_url
from fti.errors import BackendUnavailableError, MissingDependencyError

__all__ = ["RedisStreamSource"]


def _raw(response: Any, **_options: Any) -> Any:
    return response


def _id(text: str) -> tuple[int, int]:
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


class RedisStreamSource:
    """Consume ``stream`` as ``consumer`` of ``group`` (created at id 0 if missing).

    Entries are flat field/value maps (``XADD tx * card a amount 3.5 ts 2024-01-01T00:00:00Z``).
    On ``open`` the consumer first re-reads its own pending entries (delivered before a crash,
    never acknowledged): those at or before the checkpointed id are acknowledged and skipped, the
    rest are delivered again. A dropped connection is retried with backoff.

    >>> src = RedisStreamSource("redis://127.0.0.1:6379/0", stream="transactions")
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        stream: str,
        group: str = "fti",
        consumer: str = "fti-1",
        retry_seconds: float = 30.0,
    ) -> None:
        self.url = url
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.retry_seconds = retry_seconds
        self._client: Any = None
        self._pending = True
        self._after: tuple[int, int] | None = None
        self.client_name = f"fti-stream-{group}-{consumer}"
        self._cursor = "0"  # pending-list read position during recovery
        self._delivered: list[str] = []  # ids delivered and not yet acknowledged, in order

    def _connect(self) -> Any:
        try:
            import redis
        except ImportError:  # pragma: no cover - depends on the environment
            raise MissingDependencyError("redis", "redis", "RedisStreamSource") from None
        client = redis.Redis.from_url(self.url, decode_responses=True, client_name=self.client_name)
        # The raw reply (parsed by hiredis when installed): entries are turned into records
        # here, without redis-py's per-entry helpers.
        client.set_response_callback("XREADGROUP", _raw)
        return client

    def _call(self, fn: str, *args: Any, **kwargs: Any) -> Any:
        """Run a client call, reconnecting with backoff for up to ``retry_seconds``."""
        import redis

        deadline = time.monotonic() + self.retry_seconds
        delay = 0.05
        while True:
            try:
                return getattr(self._client, fn)(*args, **kwargs)
            except (redis.ConnectionError, redis.TimeoutError) as e:
                if time.monotonic() > deadline:
                    raise BackendUnavailableError(
                        f"Redis at {mask_url(self.url)} stayed unreachable for "
                        f"{self.retry_seconds}s while reading stream {self.stream!r}: {e}. "
                        "Check that Redis is up."
                    ) from e
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def open(self, positions: Mapping[str, str]) -> None:
        import redis

        self._client = self._connect()
        try:
            self._call("xgroup_create", self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        last = positions.get(self.stream)
        self._after = None if last is None else _id(last)
        self._pending = True
        self._delivered = []
        self._cursor = "0"

    def _read(self, start: str, count: int, block: int | None) -> list[tuple[str, Any]]:
        args: list[Any] = ["XREADGROUP", "GROUP", self.group, self.consumer, "COUNT", count]
        if block is not None:
            args += ["BLOCK", block]
        reply = self._call("execute_command", *args, "STREAMS", self.stream, start)
        if not reply:
            return []
        if isinstance(reply, dict):  # RESP3: {stream: entries}
            entries: list[tuple[str, Any]] = next(iter(reply.values()))
        else:  # RESP2: [[stream, entries]]
            entries = reply[0][1]
        return entries

    def _records(self, entries: list[tuple[str, Any]]) -> list[SourceRecord]:
        stream = self.stream
        out = []
        for i, flat in entries:
            if flat:  # deleted entries come back empty
                it = iter(flat)
                out.append(SourceRecord(stream, i, dict(zip(it, it))))  # noqa: B905 (pairs)
        self._delivered.extend(r.position for r in out)
        return out

    def poll(self, max_records: int, timeout: float) -> list[SourceRecord]:
        while self._pending:
            # Our own unacknowledged entries first: the pending list after the cursor.
            entries = self._read(self._cursor, max_records, None)
            if not entries:
                self._pending = False
                break
            self._cursor = entries[-1][0]
            covered = [i for i, _ in entries if self._after and _id(i) <= self._after]
            if covered:
                self._call("xack", self.stream, self.group, *covered)
            fresh = [(i, f) for i, f in entries if not (self._after and _id(i) <= self._after)]
            records = self._records(fresh)
            if records:
                return records
        block = max(1, int(timeout * 1000)) if timeout > 0 else None
        return self._records(self._read(">", max_records, block))

    def commit(self, positions: Mapping[str, str]) -> None:
        last = positions.get(self.stream)
        if last is None:
            return
        self._after = upto = _id(last)
        # Acknowledge what this source delivered up to the checkpointed id (in id order).
        n = bisect.bisect_right(self._delivered, upto, key=_id)
        done, self._delivered = self._delivered[:n], self._delivered[n:]
        for k in range(0, len(done), 10_000):
            self._call("xack", self.stream, self.group, *done[k : k + 10_000])

    def lag(self) -> int | None:
        for g in self._call("xinfo_groups", self.stream):
            if g.get("name") == self.group:
                lag = g.get("lag")
                pending = int(g.get("pending") or 0)
                return None if lag is None else int(lag) + pending
        return None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
