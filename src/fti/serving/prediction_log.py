"""The background writer of prediction logs: requests hand rows to a bounded in-memory queue
and return; one thread batches them into the log feature group.

A request never waits: it appends to a deque (no lock, no wake-up of the writer, which sleeps
until its next flush or until a batch is full) and, if the queue is full, the rows are dropped
and counted (``/metrics``). ``close`` drains everything that was queued, so a graceful
shutdown (SIGTERM, lifespan end) loses nothing that was answered.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence

from fti.services.prediction_logs import LogRow

__all__ = ["PredictionLogWriter"]

log = logging.getLogger("fti.serving")

_Item = tuple[str, int, list[LogRow]]


class PredictionLogWriter:
    """Batches :class:`LogRow` lists into ``write(fv_name, fv_version, rows)`` calls on a
    daemon thread (rows of one feature view version per call).

    ``write`` receives up to ``batch_rows`` rows at a time, every ``flush_seconds`` while rows
    are waiting (sooner when a batch is full); rows are visible to ``read_log`` within
    ``flush_seconds``. Each write is a Delta commit whose fixed cost (log, checkpoints, Rust
    threads) dwarfs the per-row cost, so few large commits keep the writer's CPU share small.
    ``max_queue`` bounds the queued requests. A failed write is retried twice, then its rows
    are counted as dropped and logged.
    """

    def __init__(
        self,
        write: Callable[[str, int, Sequence[LogRow]], int],
        *,
        max_queue: int = 100_000,
        batch_rows: int = 20_000,
        flush_seconds: float = 5.0,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self._write = write
        self._queue: collections.deque[_Item] = collections.deque()
        self._max_queue = max_queue
        self._batch_rows = batch_rows
        self._flush_seconds = flush_seconds
        self._on_drop = on_drop or (lambda n: None)
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self.written = 0
        self.dropped = 0
        self.failed_batches = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="fti-prediction-log", daemon=True)
        self._thread.start()

    def depth(self) -> int:
        """Requests whose rows wait in the queue."""
        return len(self._queue)

    def submit(self, fv_name: str, fv_version: int, rows: list[LogRow]) -> bool:
        """Queue the rows of one request; False (and counted) if the queue is full or closed."""
        if not rows:
            return True
        if self._closed or len(self._queue) >= self._max_queue:
            self._count_dropped(len(rows))
            return False
        self._queue.append((fv_name, fv_version, rows))
        if len(self._queue) >= self._batch_rows:
            self._wake.set()
        return True

    def close(self, timeout: float = 60.0) -> None:
        """Stop accepting rows, write everything queued, and wait for the thread."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("prediction log writer did not finish within %.0fs", timeout)
            return
        self._drain()  # rows appended while the thread finished its last round

    def _count_dropped(self, n: int) -> None:
        with self._lock:
            self.dropped += n
        self._on_drop(n)

    def _run(self) -> None:
        while True:
            self._wake.wait(self._flush_seconds)
            self._wake.clear()
            stopping = self._closed
            # A round writes what was queued when it started: draining until the queue is
            # empty never ends under load (requests keep arriving during a commit), and turned
            # the 5 s batches into back-to-back commits of a few dozen rows (10-40 per second,
            # each costing Rust threads ~100 ms of CPU).
            self._drain(None if stopping else len(self._queue))
            if stopping:
                return

    def _drain(self, items: int | None = None) -> None:
        """Write ``items`` queued requests (None: until the queue is empty)."""
        left = items
        while self._queue and (left is None or left > 0):
            pending: dict[tuple[str, int], list[LogRow]] = {}
            size = 0
            while self._queue and size < self._batch_rows and (left is None or left > 0):
                fv_name, fv_version, rows = self._queue.popleft()
                pending.setdefault((fv_name, fv_version), []).extend(rows)
                size += len(rows)
                if left is not None:
                    left -= 1
            for (name, version), rows in pending.items():
                self._flush(name, version, rows)

    def _flush(self, fv_name: str, fv_version: int, rows: list[LogRow]) -> None:
        for start in range(0, len(rows), self._batch_rows):
            chunk = rows[start : start + self._batch_rows]
            for attempt in range(3):
                try:
                    n = self._write(fv_name, fv_version, chunk)
                    with self._lock:
                        self.written += n
                    break
                except Exception:
                    if attempt == 2:
                        log.exception("prediction log: dropping %d rows after 3 tries", len(chunk))
                        with self._lock:
                            self.failed_batches += 1
                        self._count_dropped(len(chunk))
                    else:
                        time.sleep(0.2 * (attempt + 1))
