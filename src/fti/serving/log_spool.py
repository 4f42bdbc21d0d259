"""The prediction log of ``fti serve``: requests hand rows to an in-memory queue; a thread
appends them to a spool folder once per flush interval; a child process commits the spool into
the log feature groups.

Why a second process: a Delta commit (Arrow conversion, the transaction log, Rust threads)
takes tens of milliseconds of CPU, much of it holding the GIL, and a commit in a thread of the
serving process stalled the event loop for as long (p99 106-113 ms at 8 connections instead of
17 ms without logging). In the serving process the log costs MessagePack-encoding each
request's rows on the work thread (JSON cost 4x more) and, once per interval, joining them and
one file write.

Durability:

* every ``flush_seconds`` (default 1 s) the rows queued so far are written to a new spool file
  (``<root>/spool/prediction_logs/*.mpk``, MessagePack records: written under a temporary
  name, fsynced, renamed),
* the committer commits the spool files every ``commit_seconds`` (default 5 s) and deletes
  them; it takes a lock around each round, so any number of workers share one folder, and it
  commits files left by a worker that died,
* SIGTERM (graceful shutdown) writes the last rows and waits for the committer to commit
  everything: no answered prediction is lost,
* kill -9 of a server process loses at most the rows it answered during its last flush interval
  (those still in memory); its committer sees the server gone, commits the spool and exits. A
  spool file left behind (the committer was killed too) is committed by the next server that
  starts on the store. A committer killed between its commit and deleting the files commits
  them again: a crash of the committer can duplicate, never lose, rows of one round.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]

from fti.services.prediction_logs import LogRow, epoch_micros

__all__ = [
    "LEGACY_SUFFIX",
    "SPOOL_SUFFIX",
    "SpoolLogWriter",
    "spool_dir",
    "spool_line",
    "spool_record",
]

log = logging.getLogger("fti.serving")

SPOOL_SUFFIX = ".mpk"  # a stream of MessagePack records
LEGACY_SUFFIX = ".jsonl"  # JSON lines, written before: still committed


_encode = json.JSONEncoder(default=str, allow_nan=True, separators=(",", ":")).encode


def _record(fv_name: str, fv_version: int, row: LogRow) -> dict[str, Any]:
    t = row.transformed
    return {
        "fv": fv_name,
        "fv_version": fv_version,
        "request_id": row.request_id,
        "position": row.position,
        "logged_at": epoch_micros(row.logged_at),
        "entity": dict(row.entity),
        "request": dict(row.request),
        "features": dict(row.features),
        "transformed": None if t is None else dict(t) if isinstance(t, Mapping) else list(t),
        "prediction": row.prediction,
        "probability": row.probability,
        "model_name": row.model_name,
        "model_version": row.model_version,
        "training_dataset_version": row.training_dataset_version,
    }


def spool_line(fv_name: str, fv_version: int, row: LogRow) -> str:
    """One row as a JSON object whose JSON columns (entity, features, ...) are nested objects
    (the spool's format before MessagePack, and the fallback for values it cannot hold)."""
    return _encode(_record(fv_name, fv_version, row))


def _as_text(value: Any) -> str:
    """What JSON's ``default=str`` does, but an integer MessagePack cannot hold (> 64 bits)
    stays an integer: the row goes as JSON instead."""
    if isinstance(value, int):
        raise OverflowError(value)
    return str(value)


def spool_record(fv_name: str, fv_version: int, row: LogRow) -> bytes:
    """One row as a MessagePack map (what :func:`spool_line` holds, ~4x cheaper to encode: it
    runs on the server's work thread for every prediction). Values MessagePack cannot hold (an
    integer beyond 64 bits, a string that is not valid Unicode) make it a MessagePack string
    holding the row's :func:`spool_line`. Other objects become their ``str``, as in JSON."""
    record = _record(fv_name, fv_version, row)
    try:
        data: bytes = msgpack.packb(record, default=_as_text)
    except (OverflowError, TypeError, ValueError):
        data = msgpack.packb(_encode(record))
    return data


def spool_dir(root: str | os.PathLike[str]) -> Path:
    """The spool folder of the store at ``root``."""
    return Path(root) / "spool" / "prediction_logs"


class SpoolLogWriter:
    """Queues the rows of each request and spools them every ``flush_seconds``; a committer
    process (``python -m fti.serving.log_committer``) commits the spool.

    ``store``: how the committer connects (``root``, ``offline``, ``online``, ``registry``,
    ``artifacts``). The committer starts with the first spool file (or at once if files are
    waiting), so it does not compete with the server's start for the CPU.
    """

    def __init__(
        self,
        store: dict[str, str],
        *,
        flush_seconds: float = 1.0,
        commit_seconds: float = 5.0,
        max_queue: int = 100_000,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self._store = store
        self.spool = spool_dir(store["root"])
        self.spool.mkdir(parents=True, exist_ok=True)
        self._flush_seconds = flush_seconds
        self._commit_seconds = commit_seconds
        self._max_queue = max_queue
        self._on_drop = on_drop or (lambda n: None)
        self._queue: collections.deque[list[bytes]] = collections.deque()
        self._id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._seq = 0
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._committer: subprocess.Popen[bytes] | None = None
        self.written = 0  # rows spooled
        self.dropped = 0
        self._closed = False
        if any(self.spool.glob(f"*{SPOOL_SUFFIX}")):
            self._start_committer()  # files of a server that died: commit them now
        self._thread = threading.Thread(target=self._run, name="fti-prediction-log", daemon=True)
        self._thread.start()

    @property
    def committer_pid(self) -> int | None:
        return None if self._committer is None else self._committer.pid

    def depth(self) -> int:
        """Requests whose rows wait in memory."""
        return len(self._queue)

    def submit(self, fv_name: str, fv_version: int, rows: list[LogRow]) -> bool:
        """Queue the rows of one request, encoded now (by the caller's thread, a little per
        request, rather than all at once by the spool thread, which would hold the GIL for
        tens of milliseconds each interval and stall the event loop meanwhile); False (and
        counted) if the queue is full or closed."""
        if not rows:
            return True
        if self._closed or len(self._queue) >= self._max_queue:
            self._count_dropped(len(rows))
            return False
        self._queue.append([spool_record(fv_name, fv_version, row) for row in rows])
        return True

    def close(self, timeout: float = 60.0) -> None:
        """Stop accepting rows, spool everything queued, and wait until it is committed."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join(timeout)
        self._spool()  # rows appended while the thread finished its last round
        committer = self._committer
        if committer is None:
            return
        assert committer.stdin is not None
        with contextlib.suppress(OSError):
            committer.stdin.close()  # end of input: the committer commits the rest and exits
        try:
            committer.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error(
                "prediction log committer (pid %d) did not finish within %.0fs; the rows stay "
                "in %s and are committed by the next server",
                committer.pid,
                timeout,
                self.spool,
            )

    def _count_dropped(self, n: int) -> None:
        with self._lock:
            self.dropped += n
        self._on_drop(n)

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._flush_seconds)
            try:
                self._spool()
            except Exception:  # a full disk must not kill the thread; the rows are lost
                log.exception("prediction log: could not write the spool in %s", self.spool)

    def _spool(self) -> None:
        """Write the rows queued now to one spool file (temporary name, fsync, rename)."""
        n = len(self._queue)
        if n == 0:
            return
        records: list[bytes] = []
        for _ in range(n):
            records.extend(self._queue.popleft())
        self._seq += 1
        name = f"{self._id}-{self._seq:09d}"
        tmp = self.spool / f".{name}.tmp"
        data = b"".join(records)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.rename(self.spool / f"{name}{SPOOL_SUFFIX}")
        with self._lock:
            self.written += len(records)
        if self._committer is None:
            self._start_committer()

    def _start_committer(self) -> None:
        config: dict[str, Any] = {
            "store": self._store,
            "spool": str(self.spool),
            "commit_seconds": self._commit_seconds,
        }
        self._committer = subprocess.Popen(  # noqa: S603 - this interpreter, fixed module
            [sys.executable, "-m", "fti.serving.log_committer", json.dumps(config)],
            stdin=subprocess.PIPE,
        )
