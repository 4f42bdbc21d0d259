"""SQLite online store: one table per feature group version in one WAL-mode file."""

from __future__ import annotations

import fcntl
import math
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.compute as pc

from fti._internal.names import quote
from fti.backends.online import ET, SEQ, OnlineTable, decoder_for
from fti.errors import IntegrityError, SchemaError

__all__ = ["SqliteOnlineStore", "arrow_column_to_list"]

_SQL_TYPE = {
    "bool": "INTEGER",
    "int8": "INTEGER",
    "int16": "INTEGER",
    "int32": "INTEGER",
    "int64": "INTEGER",
    "float32": "REAL",
    "float64": "REAL",
    "string": "TEXT",
    "timestamp": "INTEGER",
    "date": "INTEGER",
}
_APPLIED = "_fti_applied"
_SYNCED = -1  # the marker: an applied "version" no table has
_CHUNK_KEYS = 500


def arrow_column_to_list(col: pa.ChunkedArray | pa.Array, dtype: str) -> list[Any]:
    """Arrow column -> Python list of storage values (timestamps as µs, dates as days)."""
    if dtype == "timestamp":
        col = pc.cast(col, pa.int64())
    elif dtype == "date":
        col = pc.cast(col, pa.int32())
    if col.null_count == 0 and dtype not in ("string", "bool"):
        return col.to_numpy().tolist()  # type: ignore[no-any-return]
    return col.to_pylist()  # type: ignore[no-any-return]


def _check_owner(conn: sqlite3.Connection, table: OnlineTable, path: Path) -> None:
    """SQLite table names ignore case: a table spelled otherwise, or keyed otherwise, holds
    another group (names differing only in case were possible before fti refused them)."""
    stored = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE",
        (table.name,),
    ).fetchone()[0]
    info = list(conn.execute(f"PRAGMA table_info({quote(table.name)})"))
    keys = [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
    if stored != table.name or keys != table.key_names:
        raise SchemaError(
            f"The online table {table.name!r} in {str(path)!r} is taken by the table "
            f"{stored!r} (key columns {keys}, expected {table.key_names}) of another group "
            "whose name differs only in case. Rename one of the groups, or drop that table "
            "and run `fti online rebuild` for the group it belongs to."
        )


# SQLite stores a NaN REAL as NULL; NaN is stored as this text (a REAL column keeps text that
# is not a number literal as is) so that null and NaN stay distinct.
_NAN_TEXT = "NaN"


class SqliteOnlineStore:
    """Online store in a single SQLite file (WAL mode, one connection per thread)."""

    gil_per_row = True  # see OnlineStore

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = urlparse(url)
        self.path = Path(parsed.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        # Prepared SQL and decoders per table *definition* (not per name): after a schema
        # change another process made, readers and writers holding the older definition and
        # those holding the newer one share the name but not the columns.
        self._sql_cache: dict[tuple[OnlineTable, int], str] = {}
        self._upsert_cache: dict[tuple[OnlineTable, tuple[str, ...]], str] = {}
        self._beyond: dict[OnlineTable, tuple[int, tuple[str, ...]]] = {}
        self._decoders: dict[OnlineTable, _Decoders] = {}
        # Definitions this store has created or checked; lets ensure_table skip its DDL round
        # trips on every insert.
        self._ensured: set[OnlineTable] = set()
        with self._conn() as conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {_APPLIED} (tbl TEXT NOT NULL, "
                "version INTEGER NOT NULL, PRIMARY KEY (tbl, version))"
            )

    # ------------------------------------------------------------------ connections
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode never corrupts; a power cut may lose the last commits, which
            # the catch-up from the offline table (the system of record) replays.
            conn.execute("PRAGMA synchronous=NORMAL")
            # 64 MiB page cache: big upserts touch many B-tree pages. Memory-mapped reads skip a
            # copy per page, which shows in point-lookup latency.
            conn.execute("PRAGMA cache_size=-65536")
            conn.execute("PRAGMA mmap_size=268435456")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def ping(self) -> None:
        """Open (or reuse) this thread's connection and run one statement."""
        self._conn().execute("SELECT 1").fetchone()

    # ------------------------------------------------------------------ schema
    def ensure_table(self, table: OnlineTable) -> None:
        if table in self._ensured:
            return
        conn = self._conn()
        cols = [f"{quote(k)} {_SQL_TYPE[t]} NOT NULL" for k, t in table.keys]
        cols += [f"{ET} INTEGER NOT NULL", f"{SEQ} INTEGER NOT NULL"]
        cols += [f"{quote(f)} {_SQL_TYPE[t]}" for f, t in table.features]
        pk = ", ".join(quote(k) for k in table.key_names)
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {quote(table.name)} ({', '.join(cols)}, "
            f"PRIMARY KEY ({pk})) WITHOUT ROWID"
        )
        _check_owner(conn, table, self.path)
        existing = {r[1] for r in conn.execute(f"PRAGMA table_info({quote(table.name)})")}
        for f, t in table.features:
            if f not in existing:
                try:
                    conn.execute(
                        f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(f)} {_SQL_TYPE[t]}"
                    )
                except sqlite3.OperationalError as e:
                    if "duplicate column" not in str(e):
                        raise  # else another process added it first
        self._ensured.add(table)

    def _forget(self, name: str) -> None:
        # Prepared SQL stays valid (it is per definition); the DDL check must run again.
        self._ensured = {t for t in self._ensured if t.name != name}

    def _columns(self, table: OnlineTable) -> list[str]:
        rows = self._conn().execute(f"PRAGMA table_info({quote(table.name)})")
        return [r[1] for r in rows]

    def _missing_columns_error(self, table: OnlineTable) -> IntegrityError | None:
        """After 'no such column': a readable error naming the columns the table lacks."""
        missing = [f for f in table.feature_names if f not in self._columns(table)]
        if not missing:
            return None
        return IntegrityError(
            f"The online table {table.name!r} has no column(s) {missing}, which "
            "the feature group's schema in the registry has: a schema change "
            "(fg.add_features) did not reach the online store (its writer stopped in between). "
            "Opening the feature group (fs.get_feature_group(NAME, version=V)) or "
            "`fti online rebuild NAME:V` adds them."
        )

    # ------------------------------------------------------------------ writes
    def _columns_beyond(self, conn: sqlite3.Connection, table: OnlineTable) -> tuple[str, ...]:
        """Columns of the stored table that ``table`` does not name: added by a writer with a
        newer definition. Read under the write lock (no ALTER can run meanwhile) and kept
        until SQLite's schema version changes."""
        version = conn.execute("PRAGMA schema_version").fetchone()[0]
        found = self._beyond.get(table)
        if found is not None and found[0] == version:
            return found[1]
        known = {*table.key_names, ET, SEQ, *table.feature_names}
        extra = tuple(c for c in self._columns(table) if c not in known)
        self._beyond[table] = (version, extra)
        return extra

    def _upsert_sql(self, table: OnlineTable, beyond: tuple[str, ...]) -> str:
        sql = self._upsert_cache.get((table, beyond))
        if sql is None:
            names = [*table.key_names, ET, SEQ, *table.feature_names]
            q = quote(table.name)
            # A writer holding an older definition still replaces the whole row: the columns
            # it does not know become null, as they are in the offline row it appends (Redis
            # replaces the whole hash for the same reason).
            updates = ", ".join(
                [f"{quote(n)} = excluded.{quote(n)}" for n in [ET, SEQ, *table.feature_names]]
                + [f"{quote(n)} = NULL" for n in beyond]
            )
            # Newer wins, decided inside SQLite: a stored row is replaced only by a row that is
            # greater by (event time, ingestion order).
            sql = (
                f"INSERT INTO {q} ({', '.join(quote(n) for n in names)}) "
                f"VALUES ({', '.join('?' * len(names))}) "
                f"ON CONFLICT ({', '.join(quote(k) for k in table.key_names)}) "
                f"DO UPDATE SET {updates} "
                f"WHERE (excluded.{ET}, excluded.{SEQ}) > ({q}.{ET}, {q}.{SEQ})"
            )
            self._upsert_cache[(table, beyond)] = sql
        return sql

    def upsert(self, table: OnlineTable, batch: pa.Table, *, version: int | None) -> int:
        names = [*table.key_names, ET, SEQ, *table.feature_names]
        dtypes = [*(t for _, t in table.keys), "int64", "int64", *(t for _, t in table.features)]
        present = set(batch.column_names)
        columns = []
        for n, t in zip(names, dtypes, strict=True):
            if n in present:
                col = batch.column(n)
                values = arrow_column_to_list(col, t)
                if t in ("float32", "float64") and pc.any(pc.is_nan(col)).as_py():
                    values = [_NAN_TEXT if v != v else v for v in values]
                columns.append(values)
            else:
                columns.append([None] * batch.num_rows)
        rows = zip(*columns, strict=True)
        try:
            return self._upsert_rows(table, rows, version)
        except sqlite3.OperationalError as e:
            if "no such table" not in str(e):
                raise
            # Dropped since this process created it (by a rebuild, or lost): the applied marks
            # no longer describe what the table holds, so they go too; catch-up replays them.
            self._forget(table.name)
            with self._conn() as conn:
                conn.execute(
                    f"DELETE FROM {_APPLIED} WHERE tbl = ? AND NOT EXISTS (SELECT 1 FROM "
                    "sqlite_master WHERE type = 'table' AND name = ?)",
                    (table.name, table.name),
                )
            self.ensure_table(table)
            return self._upsert_rows(table, zip(*columns, strict=True), version)

    def _upsert_rows(
        self, table: OnlineTable, rows: Iterable[tuple[Any, ...]], version: int | None
    ) -> int:
        conn = self._conn()
        before = conn.total_changes
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(self._upsert_sql(table, self._columns_beyond(conn, table)), rows)
            changed = conn.total_changes - before
            if version is not None:
                conn.execute(
                    f"INSERT OR IGNORE INTO {_APPLIED} (tbl, version) VALUES (?, ?)",
                    (table.name, version),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return changed

    def delete(self, table: OnlineTable, keys: Sequence[tuple[Any, ...]]) -> int:
        where = " AND ".join(f"{quote(k)} = ?" for k in table.key_names)
        conn = self._conn()
        before = conn.total_changes
        with conn:
            conn.executemany(f"DELETE FROM {quote(table.name)} WHERE {where}", keys)
        return conn.total_changes - before

    def mark_applied(self, table: OnlineTable, versions: Iterable[int]) -> None:
        with self._conn() as conn:
            conn.executemany(
                f"INSERT OR IGNORE INTO {_APPLIED} (tbl, version) VALUES (?, ?)",
                [(table.name, v) for v in versions],
            )

    def applied_versions(self, table: OnlineTable) -> set[int]:
        # Nothing is applied to a table that does not exist (dropped behind fti's back).
        rows = self._conn().execute(
            f"SELECT version FROM {_APPLIED} WHERE tbl = ? AND version >= 0 AND EXISTS "
            "(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?)",
            (table.name, table.name),
        )
        return {r[0] for r in rows}

    def mark_synced(self, table: OnlineTable) -> None:
        self.mark_applied(table, [_SYNCED])

    def holds(self, table: OnlineTable) -> bool:
        # The marker row, and the table itself: a table dropped behind fti's back (or a wiped
        # applied list) means the store no longer holds what it once did.
        try:
            row = (
                self._conn()
                .execute(
                    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?) "
                    f"AND EXISTS (SELECT 1 FROM {_APPLIED} WHERE tbl = ? AND version = ?)",
                    (table.name, table.name, _SYNCED),
                )
                .fetchone()
            )
        except sqlite3.OperationalError:  # the applied table itself is gone
            return False
        return bool(row[0])

    @contextmanager
    def exclusive(self, table: OnlineTable, *, seconds: float) -> Iterator[bool]:
        # A file lock next to the database (processes sharing a SQLite file share a machine);
        # the OS releases it if the holder dies, so ``seconds`` needs no enforcing here.
        lock_path = self.path.with_name(f".{self.path.name}.{table.name}.lock")
        with lock_path.open("a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def drop(self, table: OnlineTable) -> None:
        self._forget(table.name)
        with self._conn() as conn:
            conn.execute(f"DROP TABLE IF EXISTS {quote(table.name)}")
            conn.execute(f"DELETE FROM {_APPLIED} WHERE tbl = ?", (table.name,))

    # ------------------------------------------------------------------ reads
    def count(self, table: OnlineTable) -> int:
        try:
            row = self._conn().execute(f"SELECT count(*) FROM {quote(table.name)}").fetchone()
        except sqlite3.OperationalError:
            return 0
        return int(row[0])

    def _select_sql(self, table: OnlineTable, n: int) -> str:
        sql = self._sql_cache.get((table, n))
        if sql is None:
            # Columns qualified by the table: SQLite reads an unqualified double-quoted name
            # that is not a column as a string literal, so a column the table lacks would come
            # back as its own name instead of failing.
            t = quote(table.name)
            cols = ", ".join([ET, SEQ, *(f"{t}.{quote(f)}" for f in table.feature_names)])
            keys = [f"{t}.{quote(k)}" for k in table.key_names]
            if n == 1:
                where = " AND ".join(f"{k} = ?" for k in keys)
            elif len(keys) == 1:
                where = f"{keys[0]} IN ({', '.join('?' * n)})"
            else:
                row = "(" + ", ".join("?" * len(keys)) + ")"
                where = f"({', '.join(keys)}) IN (VALUES {', '.join([row] * n)})"
            if n > 1:
                cols = ", ".join(keys) + ", " + cols
            sql = f"SELECT {cols} FROM {t} WHERE {where}"
            self._sql_cache[(table, n)] = sql
        return sql

    def _row_decoders(self, table: OnlineTable) -> _Decoders:
        dec = self._decoders.get(table)
        if dec is None:
            always: list[tuple[int, Callable[[Any], Any]]] = []
            floats: list[int] = []
            for i, (_, t) in enumerate(table.features):
                if t in ("float32", "float64"):
                    floats.append(i + 2)
                    continue
                fn = decoder_for(t)
                if fn is not None:
                    always.append((i + 2, fn))
            dec = self._decoders[table] = _Decoders(tuple(always), tuple(floats))
        return dec

    def read(
        self, table: OnlineTable, keys: Sequence[tuple[Any, ...]]
    ) -> list[tuple[Any, ...] | None]:
        try:
            return self._read(table, keys)
        except sqlite3.OperationalError as e:
            if "no such column" in str(e):
                error = self._missing_columns_error(table)
                if error is not None:
                    raise error from None
            if "no such table" not in str(e):
                raise
            return [None] * len(keys)  # nothing was ever written online for this group

    def _read(
        self, table: OnlineTable, keys: Sequence[tuple[Any, ...]]
    ) -> list[tuple[Any, ...] | None]:
        conn = self._conn()
        dec = self._row_decoders(table)
        if len(keys) == 1:
            row = conn.execute(self._select_sql(table, 1), keys[0]).fetchone()
            if row is not None and (dec.always or (dec.floats and _NAN_TEXT in row)):
                row = dec.apply(row)
            return [row]
        nk = len(table.keys)
        found: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        for start in range(0, len(keys), _CHUNK_KEYS):
            chunk = keys[start : start + _CHUNK_KEYS]
            params = [v for k in chunk for v in k]
            rows = conn.execute(self._select_sql(table, len(chunk)), params).fetchall()
            if dec.always or dec.floats:
                for row in rows:
                    vals = row[nk:]
                    if dec.always or _NAN_TEXT in vals:
                        vals = dec.apply(vals)
                    found[row[:nk]] = vals
            else:
                found.update((row[:nk], row[nk:]) for row in rows)
        get = found.get
        return [get(k) for k in keys]


class _Decoders:
    """How to turn one stored row ``(et, seq, *features)`` back into Python values."""

    __slots__ = ("always", "floats")

    def __init__(
        self, always: tuple[tuple[int, Callable[[Any], Any]], ...], floats: tuple[int, ...]
    ):
        self.always = always  # timestamp, date and bool columns
        self.floats = floats  # REAL columns, which may hold the NaN marker

    def apply(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        vals = list(row)
        for i, fn in self.always:
            vals[i] = fn(vals[i])
        for i in self.floats:
            if vals[i] == _NAN_TEXT:
                vals[i] = math.nan
        return tuple(vals)
