"""The embedded (SQLite) registry opened read-only through the standard library's ``sqlite3``.

Listings such as ``fti fg list`` only read the registry, and importing SQLAlchemy costs more
than everything else such a command does (~150 ms). When the database file exists and its
schema is at the migration head (``HEAD``: the tables :mod:`fti.backends.registry.sql` queries),
:meth:`SqliteReadonlyRegistry.open_at_head` reads it with plain SQL and returns the same
:class:`~fti.backends.registry.Record` values :class:`~fti.backends.registry.sql.SqlRegistry`
does (a contract test compares the two on one database). In every other case -- no file yet, an
older schema that must be migrated first, a newer one, a URL with options -- it returns None and
the caller opens the full registry, which creates or migrates as usual.

The connection is opened with ``mode=ro``: it can never write, and writing through this class
is a bug in the caller (each write method raises :class:`~fti.errors.FtiError` saying so).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from fti.backends.registry import Record
from fti.backends.registry.lineage_edges import NO_VERSION, EdgeRow, NodeKey
from fti.backends.registry.migrations import HEAD, VERSION_TABLE
from fti.backends.registry.record_facts import check_where
from fti.config import mask_url
from fti.errors import BackendUnavailableError, FtiError

__all__ = ["SqliteReadonlyRegistry", "database_path"]

_PREFIX = "sqlite:///"
_COLUMNS = "kind, name, version, body, revision, created_at, updated_at"


def database_path(url: str) -> Path | None:
    """The database file of a plain ``sqlite:///PATH`` URL, as SQLAlchemy reads it (relative to
    the working directory unless absolute); None for anything this module does not read (other
    schemes, in-memory databases, query options, percent-escapes)."""
    if not url.startswith(_PREFIX):
        return None
    database = url[len(_PREFIX) :]
    if not database or database == ":memory:" or any(c in database for c in "?%"):
        return None
    return Path(database)


def _aware(value: str | datetime) -> datetime:
    # SQLAlchemy stores DateTime on SQLite as text without an offset, written in UTC.
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.astimezone(UTC) if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _record(row: tuple[Any, ...]) -> Record:
    kind, name, version, body, revision, created_at, updated_at = row
    return Record(
        kind=kind,
        name=name,
        version=int(version),
        body=json.loads(body),
        revision=int(revision),
        created_at=_aware(created_at),
        updated_at=_aware(updated_at),
    )


_EDGE_COLUMNS = (
    "id, src_kind, src_name, src_version, dst_kind, dst_name, dst_version, versioned, detail, "
    "src_info, dst_info, owner_kind, owner_name, owner_version, seq"
)


def _edge(row: tuple[Any, ...]) -> EdgeRow:
    (id_, sk, sn, sv, dk, dn, dv, versioned, detail, s_info, d_info, ok, on, ov, seq) = row
    return EdgeRow(
        source=(sk, sn, None if sv == NO_VERSION else int(sv)),
        target=(dk, dn, None if dv == NO_VERSION else int(dv)),
        detail=json.loads(detail),
        source_info=json.loads(s_info),
        target_info=json.loads(d_info),
        versioned=versioned,
        owner=(ok, on, int(ov)),
        seq=int(seq),
        id=int(id_),
    )


def _event(at: str, body: str) -> dict[str, Any]:
    return {"at": _aware(at).isoformat(), **json.loads(body)}


def _like_contains(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, escaped with ``/`` as SQLAlchemy's
    ``contains(..., autoescape=True)`` escapes it (so both registries match the same rows)."""
    escaped = text.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


class SqliteReadonlyRegistry:
    """Reads of :class:`~fti.backends.registry.Registry` on an SQLite file at the schema head.

    Build it with :meth:`open_at_head`. Thread-safe (one connection behind a lock).
    """

    def __init__(self, url: str, connection: sqlite3.Connection) -> None:
        self.url = url
        self._conn = connection
        self._lock = threading.Lock()
        self._where = repr(mask_url(url))

    @classmethod
    def open_at_head(cls, url: str) -> SqliteReadonlyRegistry | None:
        """The registry at ``url`` opened read-only, or None if the full registry must open it
        (not a plain SQLite file URL, no such file, schema not at ``HEAD``, unreadable)."""
        path = database_path(url)
        if path is None or not path.is_file():
            return None
        try:
            conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro",
                uri=True,
                timeout=60,  # as the full registry: wait for a checkpoint, never fail at once
                isolation_level=None,  # autocommit; page() opens its own read transaction
                check_same_thread=False,  # guarded by the lock
            )
        except sqlite3.Error:
            return None
        try:
            rows = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()
        except sqlite3.Error:
            rows = []  # no version table: a database never migrated
        if rows != [(HEAD,)]:
            conn.close()
            return None
        return cls(url, conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def ping(self) -> None:
        """One ``SELECT 1``."""
        with self._read("checking the connection") as conn:
            conn.execute("SELECT 1").fetchone()

    @contextmanager
    def _read(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as e:
                first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
                raise BackendUnavailableError(
                    f"The registry at {self._where} failed while {what}: "
                    f"{first.rstrip('.') or type(e).__name__}. Check that the file is readable, "
                    "then try again."
                ) from e

    def get(self, kind: str, name: str, version: int) -> Record | None:
        with self._read(f"reading {kind} {name!r} version {version}") as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM fti_objects WHERE kind = ? AND name = ? AND version = ?",
                (kind, name, version),
            ).fetchone()
        return None if row is None else _record(row)

    def records(self, kind: str, name: str | None = None) -> list[Record]:
        where, params = "kind = ?", [kind]
        if name is not None:
            where, params = "kind = ? AND name = ?", [kind, name]
        with self._read(f"listing {kind} records") as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM fti_objects WHERE {where} ORDER BY name, version",
                params,
            ).fetchall()
        return [_record(r) for r in rows]

    def page(
        self,
        kind: str,
        *,
        offset: int = 0,
        limit: int = 50,
        name_contains: str | None = None,
        body_contains: tuple[str, ...] = (),
        where: Mapping[str, str] | None = None,
        newest_first: bool = False,
        name: str | None = None,
    ) -> tuple[list[Record], int]:
        pairs = check_where(kind, where)
        conditions: list[str] = []
        params: list[Any] = []
        if name is not None:
            conditions.append("o.name = ?")
            params.append(name)
        if name_contains:
            conditions.append("lower(o.name) LIKE ? ESCAPE '/'")
            params.append(_like_contains(name_contains.lower()))
        for text in body_contains:
            conditions.append("o.body LIKE ? ESCAPE '/'")
            params.append(_like_contains(text))
        if pairs:
            # As SqlRegistry.page: an index range of the facts (migration 0004), each fact
            # joined to its record; the total from the facts alone when nothing else filters.
            facts = "fti_facts f0"
            fact_where, fact_params = [], []
            for i, (key, value) in enumerate(pairs):
                if i:
                    facts += (
                        f" JOIN fti_facts f{i} ON f{i}.name = f0.name AND f{i}.version = f0.version"
                    )
                fact_where.append(f"f{i}.kind = ? AND f{i}.key = ? AND f{i}.value = ?")
                fact_params.extend([kind, key, value])
            rows_from = (
                f"{facts} JOIN fti_objects o ON o.kind = f0.kind AND o.name = f0.name AND "
                "o.version = f0.version"
            )
            count_from = rows_from if conditions else facts
            clause = " AND ".join([*fact_where, *conditions])
            params = [*fact_params, *params]
            key_cols = ("f0.name", "f0.version")
        else:
            rows_from = count_from = "fti_objects o"
            clause = " AND ".join(["o.kind = ?", *conditions])
            params = [kind, *params]
            key_cols = ("o.name", "o.version")
        order = ", ".join(f"{c} DESC" if newest_first else c for c in key_cols)
        columns = ", ".join(f"o.{c}" for c in _COLUMNS.split(", "))
        with self._read(f"listing a page of {kind} records") as conn:
            conn.execute("BEGIN")  # one snapshot for the page and its total
            try:
                rows = conn.execute(
                    f"SELECT {columns} FROM {rows_from} WHERE {clause} "
                    f"ORDER BY {order} LIMIT ? OFFSET ?",
                    [*params, max(0, limit), max(0, offset)],
                ).fetchall()
                (total,) = conn.execute(
                    f"SELECT count(*) FROM {count_from} WHERE {clause}",
                    params,
                ).fetchone()
            finally:
                conn.execute("COMMIT")
        return [_record(r) for r in rows], int(total)

    def summary(self, kind: str) -> tuple[int, datetime | None]:
        with self._read(f"summarizing {kind} records") as conn:
            count, last = conn.execute(
                "SELECT count(*), max(updated_at) FROM fti_objects WHERE kind = ?", (kind,)
            ).fetchone()
        return int(count), None if last is None else _aware(last)

    def events(self, kind: str, name: str, version: int) -> list[dict[str, Any]]:
        with self._read(f"reading the events of {kind} {name!r} version {version}") as conn:
            rows = conn.execute(
                "SELECT at, body FROM fti_events WHERE kind = ? AND name = ? AND version = ? "
                "ORDER BY id",
                (kind, name, version),
            ).fetchall()
        return [_event(at, body) for at, body in rows]

    def recent_events(
        self, kind: str, *, limit: int = 100
    ) -> list[tuple[str, int, dict[str, Any]]]:
        with self._read(f"reading the newest {kind} events") as conn:
            rows = conn.execute(
                "SELECT name, version, at, body FROM fti_events WHERE kind = ? "
                "ORDER BY id DESC LIMIT ?",
                (kind, max(0, limit)),
            ).fetchall()
        return [(name, int(version), _event(at, body)) for name, version, at, body in rows]

    # Lineage edges (the table of migration 0003; see fti.backends.registry.sql_lineage).

    def lineage_edges(
        self, nodes: list[NodeKey], *, direction: str, per_node: int | None = None
    ) -> list[EdgeRow]:
        side = "dst" if direction == "into" else "src"
        sql = (
            f"SELECT {_EDGE_COLUMNS} FROM fti_lineage_edges WHERE {side}_kind = ? AND "
            f"{side}_name = ? AND {side}_version = ? "
            "ORDER BY owner_rank, owner_name, owner_version, seq"
        ) + ("" if per_node is None else f" LIMIT {int(per_node)}")
        out: list[EdgeRow] = []
        with self._read("reading lineage edges") as conn:
            for kind, name, version in dict.fromkeys(nodes):
                stored = NO_VERSION if version is None else version
                out.extend(_edge(r) for r in conn.execute(sql, (kind, name, stored)))
        return out

    def lineage_reported(self, links: list[tuple[NodeKey, NodeKey, bool]]) -> list[bool]:
        return [self._reported(s, t, any_run=a) for s, t, a in links]

    def _reported(self, source: NodeKey, target: NodeKey, *, any_run: bool) -> bool:
        s = (source[0], source[1], NO_VERSION if source[2] is None else source[2])
        t = (target[0], target[1], NO_VERSION if target[2] is None else target[2])
        into = "dst_kind = ? AND dst_name = ? AND dst_version = ? AND owner_kind = 'run'"
        with self._read("reading lineage edges") as conn:
            if any_run:
                sql = f"SELECT 1 FROM fti_lineage_edges WHERE {into} LIMIT 1"
                return conn.execute(sql, t).fetchone() is not None
            direct = (
                f"SELECT 1 FROM fti_lineage_edges WHERE {into} AND src_kind = ? AND "
                "src_name = ? AND src_version = ? LIMIT 1"
            )
            if conn.execute(direct, (*t, *s)).fetchone() is not None:
                return True
            via = (
                "SELECT 1 FROM fti_lineage_edges r JOIN fti_lineage_edges w ON "
                "w.src_kind = r.dst_kind AND w.src_name = r.dst_name AND "
                "w.src_version = r.dst_version WHERE r.src_kind = ? AND r.src_name = ? AND "
                "r.src_version = ? AND r.dst_kind = 'run' AND w.dst_kind = ? AND "
                "w.dst_name = ? AND w.dst_version = ? AND w.owner_kind = 'run' LIMIT 1"
            )
            return conn.execute(via, (*s, *t)).fetchone() is not None

    def lineage_latest_version(self, kind: str, name: str) -> int | None:
        found = []
        with self._read("reading lineage edges") as conn:
            for side in ("src", "dst"):
                (v,) = conn.execute(
                    f"SELECT max({side}_version) FROM fti_lineage_edges WHERE {side}_kind = ? "
                    f"AND {side}_name = ? AND {side}_version != ?",
                    (kind, name, NO_VERSION),
                ).fetchone()
                if v is not None:
                    found.append(int(v))
        return max(found) if found else None

    def lineage_names(self, kind: str) -> list[str]:
        with self._read("reading lineage edges") as conn:
            rows = conn.execute(
                "SELECT src_name AS name FROM fti_lineage_edges WHERE src_kind = ? UNION "
                "SELECT dst_name FROM fti_lineage_edges WHERE dst_kind = ? ORDER BY name LIMIT 50",
                (kind, kind),
            ).fetchall()
        return [str(r[0]) for r in rows]

    # Writes: the Registry protocol has them; a read-only registry refuses each one.

    def _refuse(self, what: str) -> NoReturn:
        raise FtiError(
            f"The registry at {self._where} is open read-only (for a listing), so {what} is not "
            "possible here. This is a bug in fti: the caller must open the store with "
            "fti.connect() to write."
        )

    def create(self, kind: str, name: str, version: int, body: dict[str, Any]) -> Record:
        self._refuse(f"creating {kind} {name!r} version {version}")

    def create_next(
        self, kind: str, name: str, make_body: Callable[[int], dict[str, Any]]
    ) -> Record:
        self._refuse(f"creating the next version of {kind} {name!r}")

    def update(
        self, kind: str, name: str, version: int, body: dict[str, Any], *, revision: int
    ) -> Record:
        self._refuse(f"updating {kind} {name!r} version {version}")

    def delete(self, kind: str, name: str, version: int) -> None:
        self._refuse(f"deleting {kind} {name!r} version {version}")

    def add_event(self, kind: str, name: str, version: int, event: dict[str, Any]) -> None:
        self._refuse(f"adding an event to {kind} {name!r} version {version}")
