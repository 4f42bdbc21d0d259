"""DuckDB as fti's default compute engine: one in-process database per store and process.

Every SQL pass of the services (point-in-time joins, reads, validation, statistics, monitoring)
runs on a cursor of this engine's database. Opening a database costs 30-70 ms, a cursor ~1 ms,
and what a cursor registers (Arrow tables, TEMP views, ``SET TimeZone``) is visible to that
cursor only, so threads share the database safely through cursors of their own.

Configured once (see :class:`DuckDBConfig`): a memory cap beyond which DuckDB spills to a
temporary folder, so a large join or insert stays within a predictable footprint, and
optionally a thread count. A process forked from one holding the database gets a database of
its own on first use (a connection is never shared across processes).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

from fti.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow.dataset as ds


__all__ = ["DuckDBConfig", "DuckDBEngine", "ParquetFiles", "is_arrow_dataset", "parse_sql"]

ENV_MEMORY_LIMIT = "FTI_DUCKDB_MEMORY_LIMIT"
ENV_THREADS = "FTI_DUCKDB_THREADS"
ENV_TEMP_DIRECTORY = "FTI_DUCKDB_TEMP_DIRECTORY"


def is_arrow_dataset(obj: object) -> bool:
    """``isinstance(obj, pyarrow.dataset.Dataset)`` without importing ``pyarrow.dataset``
    (~0.3 s: it imports pandas), which fti loads only when it first needs it: an object can
    only be a dataset once the module is loaded."""
    module = sys.modules.get("pyarrow.dataset")
    return module is not None and isinstance(obj, module.Dataset)


@dataclass(frozen=True)
class DuckDBConfig:
    """How the database is opened.

    ``memory_limit``: DuckDB's cap (default 1536MB; ``FTI_DUCKDB_MEMORY_LIMIT``), beyond which
    it spills to ``temp_directory`` (default ``<tmp>/fti-duckdb``; ``FTI_DUCKDB_TEMP_DIRECTORY``).
    ``threads``: worker threads (default: DuckDB's, one per core; ``FTI_DUCKDB_THREADS``).
    """

    memory_limit: str = "1536MB"
    temp_directory: str = str(Path(tempfile.gettempdir()) / "fti-duckdb")
    threads: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DuckDBConfig:
        """The defaults, overridden by the ``FTI_DUCKDB_*`` environment variables."""
        env = os.environ if env is None else env
        default = cls()
        raw_threads = env.get(ENV_THREADS, "").strip()
        threads = None
        if raw_threads:
            try:
                threads = int(raw_threads)
            except ValueError:
                threads = 0
            if threads < 1:
                raise ConfigError(
                    f"{ENV_THREADS}={raw_threads!r} must be a whole number >= 1, e.g. "
                    f"{ENV_THREADS}=4. Unset it to use one thread per core."
                )
        return cls(
            memory_limit=env.get(ENV_MEMORY_LIMIT, "").strip() or default.memory_limit,
            temp_directory=env.get(ENV_TEMP_DIRECTORY, "").strip() or default.temp_directory,
            threads=threads,
        )

    def options(self) -> dict[str, str | bool | int | float | list[str]]:
        out: dict[str, str | bool | int | float | list[str]] = {
            "memory_limit": self.memory_limit,
            "temp_directory": self.temp_directory,
        }
        if self.threads is not None:
            out["threads"] = self.threads
        return out


@dataclass(frozen=True)
class ParquetFiles:
    """A table version as local Parquet files, scanned by DuckDB's native reader.

    Much faster than scanning an Arrow dataset through a Python file system; ``fallback`` is
    used when a column exists in no file (declared after the last write).
    """

    paths: tuple[str, ...]
    fallback: ds.Dataset | pa.Table


# Engines alive in this process: a fork resets their locks and databases in the child.
_ENGINES: weakref.WeakSet[DuckDBEngine] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for engine in list(_ENGINES):
        engine._forget_parent()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class DuckDBEngine:
    """The store's DuckDB: cursors for the services, Arrow in and out.

    >>> engine = DuckDBEngine(DuckDBConfig(memory_limit="512MB", threads=2))
    >>> with engine.cursor() as con:
    ...     con.sql("SELECT current_setting('threads')").fetchall()
    [(2,)]
    """

    name = "duckdb"

    def __init__(self, config: DuckDBConfig | None = None) -> None:
        self.config = config or DuckDBConfig.from_env()
        self._lock = threading.Lock()
        self._db: duckdb.DuckDBPyConnection | None = None
        self._pid = os.getpid()
        # A parent's database inherited by a forked child: kept, never used nor closed there
        # (closing it could wait on locks held by the parent's threads).
        self._inherited: list[duckdb.DuckDBPyConnection] = []
        _ENGINES.add(self)

    def _forget_parent(self) -> None:
        self._lock = threading.Lock()  # the parent's may have been held at the fork
        if self._db is not None:
            self._inherited.append(self._db)
        self._db = None
        self._pid = os.getpid()

    def _database(self) -> duckdb.DuckDBPyConnection:
        if self._pid != os.getpid():  # forked without the hook (e.g. os.fork unavailable)
            self._forget_parent()
        with self._lock:
            if self._db is None:
                self._db = duckdb.connect(config=self.config.options())
            return self._db

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor on the database (a context manager; close it when done).

        Registrations, TEMP views and session settings stay local to the cursor; give each
        thread (and each concurrent task) a cursor of its own.
        """
        return self._database().cursor()

    @contextmanager
    def utc_cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor that compares and truncates times in UTC, closed on exit."""
        con = self.cursor()
        try:
            con.execute("SET TimeZone = 'UTC'")
            yield con
        finally:
            con.close()

    def query(
        self,
        sql: str,
        *,
        params: Sequence[Any] = (),
        relations: Mapping[str, Any] | None = None,
    ) -> pa.Table:
        """Run one statement over named relations (Arrow tables or datasets, or
        :class:`ParquetFiles`) in UTC and return the result as Arrow."""
        with self.utc_cursor() as con:
            for name, relation in (relations or {}).items():
                if isinstance(relation, ParquetFiles):
                    _parquet_view(con, name, relation)
                else:
                    con.register(name, relation)
            result: pa.Table = con.sql(sql, params=list(params)).to_arrow_table()
        return result

    def to_arrow(self, frame: Any) -> pa.Table:
        """A DuckDB relation (or anything Arrow already) as an Arrow table."""
        if isinstance(frame, duckdb.DuckDBPyRelation):
            table: pa.Table = frame.to_arrow_table()
            return table
        if is_arrow_dataset(frame):
            return frame.to_table()
        if isinstance(frame, pa.Table):
            return frame
        raise TypeError(f"DuckDBEngine cannot convert a {type(frame).__name__} to Arrow.")

    def read_table(
        self,
        path: str,
        *,
        version: int | None = None,
        storage_options: dict[str, str] | None = None,
    ) -> ds.Dataset:
        """A Delta table version as an Arrow dataset, which DuckDB scans lazily."""
        table = DeltaTable(path, version=version, storage_options=storage_options)
        return table.to_pyarrow_dataset()

    def close(self) -> None:
        """Close the database (cursors still open fail afterwards); reopened on next use."""
        with self._lock:
            db, self._db = self._db, None
        if db is not None and self._pid == os.getpid():
            db.close()


def parse_sql(text: str) -> dict[str, Any]:
    """DuckDB's parse tree of ``text`` (``json_serialize_sql``; an ``error`` key if it does not
    parse). Nothing is executed; used to check expectation predicates when they are defined,
    before any store exists, so it parses on a small database of its own (results cached).
    """
    return dict(json.loads(_serialized(text)))


@functools.lru_cache(maxsize=256)
def _serialized(text: str) -> str:
    with duckdb.connect() as con:
        row = con.execute("SELECT json_serialize_sql(?)", [text]).fetchone()
    return str(row[0]) if row else '{"error": true, "error_message": "no result"}'


def _parquet_view(con: duckdb.DuckDBPyConnection, name: str, files: ParquetFiles) -> None:
    listed = ", ".join("'" + p.replace("'", "''") + "'" for p in files.paths)
    # A TEMP view lives in this cursor only, so concurrent queries do not collide.
    con.execute(
        f"CREATE TEMP VIEW {name} AS SELECT * FROM read_parquet([{listed}], union_by_name = true)"
    )
    have = set(con.sql(f"SELECT * FROM {name} LIMIT 0").columns)
    if not set(files.fallback.schema.names) <= have:
        con.execute(f"DROP VIEW {name}")
        con.register(name, files.fallback)
