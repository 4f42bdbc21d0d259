"""A lock held in the registry database around each commit to a table on object storage.

For S3-compatible servers without conditional puts (``If-None-Match``), two delta-rs writers
could both write the same log entry and one commit would silently vanish. With
``commit_lock=registry`` every commit to a table runs while this lock is held: a session-level
advisory lock per table on PostgreSQL; with a SQLite registry, the write lock (``BEGIN
IMMEDIATE``) of a small lock database next to the registry file (``<registry>.commit-lock``),
so registry writes never wait for an upload. Both are released when the holder dies (the
server ends the session; the OS drops the file lock), so a killed writer cannot wedge a table.
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

__all__ = ["SqlCommitLock"]

_PG_COMMIT_LOCK_NS = 0x66746963  # advisory lock class for table commits ("ftic")
_SQLITE_WAIT_S = 300.0


class SqlCommitLock:
    """Mutual exclusion per table name across processes and machines, via the registry."""

    def __init__(self, registry_url: str) -> None:
        self.url = registry_url
        self._scheme = urlparse(registry_url).scheme

    @contextmanager
    def hold(self, name: str) -> Iterator[None]:
        """Hold the lock for ``name`` for the duration of the block."""
        if self._scheme.startswith("postgresql"):
            with self._pg(name):
                yield
        else:
            with self._sqlite():
                yield

    @contextmanager
    def _pg(self, name: str) -> Iterator[None]:
        import psycopg

        dsn = self.url.replace("postgresql+psycopg://", "postgresql://", 1)
        key = zlib.crc32(name.encode()) - (1 << 31)  # a stable int4 for the second lock key
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s, %s)", (_PG_COMMIT_LOCK_NS, key))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", (_PG_COMMIT_LOCK_NS, key))

    @contextmanager
    def _sqlite(self) -> Iterator[None]:
        from sqlalchemy.engine import make_url

        path = f"{make_url(self.url).database or ''}.commit-lock"
        conn = sqlite3.connect(path, timeout=_SQLITE_WAIT_S, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                conn.execute("ROLLBACK")
        finally:
            conn.close()
