"""The background writer of prediction logs: requests hand rows to a bounded queue and return;
one thread batches them into the log feature group.

A full queue never blocks a request: the rows are dropped and counted (``/metrics``). ``close``
drains everything that was queued, so a graceful shutdown (SIGTERM, lifespan end) loses nothing
that was answered.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

from fti.services.prediction_logs import LogRow

__all__ = ["PredictionLogWriter"]

log = logging.getLogger("fti.serving")

_STOP = object()


class PredictionLogWriter:
    """Batches :class:`LogRow` lists into ``write(fv_name, fv_version, rows)`` calls on a
    daemon thread (rows of one feature view version per call).

    ``write`` receives up to ``batch_rows`` rows at a time, at least every ``flush_seconds``
    while rows are waiting. A failed write is retried a few times, then the batch is counted
    as dropped and logged.
    """

    def __init__(
        self,
        write: Callable[[str, int, Sequence[LogRow]], int],
        *,
        max_queue: int = 100_000,
        batch_rows: int = 5_000,
        flush_seconds: float = 1.0,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self._write = write
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_queue)
        self._batch_rows = batch_rows
        self._flush_seconds = flush_seconds
        self._on_drop = on_drop or (lambda n: None)
        self._lock = threading.Lock()
        self.written = 0
        self.dropped = 0
        self.failed_batches = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="fti-prediction-log", daemon=True)
        self._thread.start()

    def depth(self) -> int:
        """Rows (request batches) waiting in the queue."""
        return self._queue.qsize()

    def submit(self, fv_name: str, fv_version: int, rows: list[LogRow]) -> bool:
        """Queue the rows of one request; False (and counted) if the queue is full or closed."""
        if not rows:
            return True
        if not self._closed:
            try:
                self._queue.put_nowait((fv_name, fv_version, rows))
                return True
            except queue.Full:
                pass
        with self._lock:
            self.dropped += len(rows)
        self._on_drop(len(rows))
        return False

    def close(self, timeout: float = 60.0) -> None:
        """Stop accepting rows, write everything queued, and wait for the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)  # blocks only if full; the thread is draining it
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("prediction log writer did not finish within %.0fs", timeout)

    def _run(self) -> None:
        pending: dict[tuple[str, int], list[LogRow]] = {}
        size = 0
        deadline = time.monotonic() + self._flush_seconds
        stopping = False
        while not stopping:
            timeout = max(0.0, deadline - time.monotonic())
            try:
                item: object = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            # Take what is already queued without waiting, up to the batch size.
            while item is not None:
                if item is _STOP:
                    stopping = True
                    break
                batch: tuple[str, int, list[LogRow]] = item  # type: ignore[assignment]
                pending.setdefault((batch[0], batch[1]), []).extend(batch[2])
                size += len(batch[2])
                if size >= self._batch_rows:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    item = None
            due = time.monotonic() >= deadline
            if pending and (stopping or due or size >= self._batch_rows):
                for (name, version), rows in pending.items():
                    self._flush(name, version, rows)
                pending = {}
                size = 0
            if due or not pending:
                deadline = time.monotonic() + self._flush_seconds

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
                            self.dropped += len(chunk)
                            self.failed_batches += 1
                        self._on_drop(len(chunk))
                    else:
                        time.sleep(0.2 * (attempt + 1))
