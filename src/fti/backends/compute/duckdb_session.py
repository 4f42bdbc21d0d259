"""One in-memory DuckDB per process for the services' small SQL passes (reducing an insert to
its newest row per key, validating an insert): opening a database costs 30-70 ms, a cursor
~1 ms, and what a cursor registers is visible to that cursor only.

Capped like the point-in-time joins' database (``FTI_DUCKDB_MEMORY_LIMIT``, default 1536MB):
beyond it DuckDB spills to a temporary folder, so a large insert stays within a known
footprint. Re-opened after a fork (a connection is never shared across processes).
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import duckdb

__all__ = ["cursor"]

_lock = threading.Lock()
_db: tuple[int, duckdb.DuckDBPyConnection] | None = None


def cursor() -> duckdb.DuckDBPyConnection:
    """A new cursor on this process's DuckDB (close it when done)."""
    global _db
    with _lock:
        if _db is None or _db[0] != os.getpid():
            config: dict[str, str | bool | int | float | list[str]] = {
                "memory_limit": os.environ.get("FTI_DUCKDB_MEMORY_LIMIT", "1536MB"),
                "temp_directory": str(Path(tempfile.gettempdir()) / "fti-duckdb"),
            }
            _db = (os.getpid(), duckdb.connect(config=config))
        return _db[1].cursor()
