"""SQL registry through SQLAlchemy Core: SQLite embedded, PostgreSQL by URL."""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from fti.backends.registry import Record
from fti.backends.registry import sql_facts as facts
from fti.backends.registry import sql_lineage as lineage
from fti.backends.registry.lineage_edges import EdgeRow, NodeKey
from fti.backends.registry.migrations import upgrade
from fti.backends.registry.record_facts import check_where
from fti.backends.registry.sql_errors import label, reason, retrying
from fti.errors import BackendUnavailableError, ConflictError, NameConflictError

__all__ = ["SqlRegistry"]

T = TypeVar("T")

# The tables as the queries below see them; the schema itself is created and changed only by
# the migrations in ``migrations/versions`` (applied when a registry opens).
metadata = sa.MetaData()
_PG_VERSION_LOCK_NS = 0x667469  # advisory lock class for version numbering ("fti")

objects = sa.Table(
    "fti_objects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("kind", "name", "version", name="uq_fti_objects_kind_name_version"),
)

events = sa.Table(
    "fti_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Index("ix_fti_events_obj", "kind", "name", "version"),
)


def _use_wal(dbapi_conn: Any) -> None:
    """Switch the database file to WAL (a persistent property of the file, so only the first
    connection ever does it). Switching needs an exclusive lock and SQLite reports "database is
    locked" at once instead of waiting for it, so concurrent first opens retry for a while."""
    deadline = time.monotonic() + 60
    while True:
        mode = dbapi_conn.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() == "wal":
            return
        try:
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))  # noqa: S311


def _engine(url: str) -> Engine:
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        Path(urlparse(url).path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # let us issue BEGIN IMMEDIATE ourselves
            _use_wal(dbapi_conn)

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # Writers take the write lock up front so they queue instead of failing with
            # "database is locked" on a read-to-write upgrade; readers (WAL) need no lock.
            read_only = conn.get_execution_options().get("fti_read_only", False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    if scheme == "postgresql":
        url = "postgresql+psycopg" + url[len("postgresql") :]
    return sa.create_engine(url, pool_pre_ping=True)


def _record(row: Any) -> Record:
    def aware(d: datetime) -> datetime:
        return d.astimezone(UTC) if d.tzinfo is not None else d.replace(tzinfo=UTC)

    return Record(
        kind=row.kind,
        name=row.name,
        version=row.version,
        body=json.loads(row.body),
        revision=row.revision,
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
    )


def _insert(
    conn: sa.Connection, kind: str, name: str, version: int, body: dict[str, Any], now: datetime
) -> None:
    conn.execute(
        objects.insert().values(
            kind=kind,
            name=name,
            version=version,
            body=json.dumps(body),
            revision=1,
            created_at=now,
            updated_at=now,
        )
    )
    lineage.replace_edges(conn, kind, name, version, body)  # same transaction as the record
    facts.replace_facts(conn, kind, name, version, body)


def _claim_name(conn: Connection, kind: str, name: str) -> None:
    """Refuse a name that differs from an existing one of the same kind only in case.

    Inside the writer's transaction and under a lock per (kind, folded name) -- SQLite's write
    lock (BEGIN IMMEDIATE), a transaction-scoped advisory lock on PostgreSQL -- so of two
    processes creating ``Prices`` and ``prices`` at once exactly one wins. Served by the
    ``(kind, lower(name))`` index of migration 0002."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(:ns, hashtext(:key))"),
            {"ns": _PG_VERSION_LOCK_NS, "key": f"{kind}/{name.lower()}"},
        )
    clash = conn.execute(
        sa.select(objects.c.name)
        .where(
            objects.c.kind == kind,
            sa.func.lower(objects.c.name) == sa.func.lower(name),
            objects.c.name != name,
        )
        .limit(1)
    ).scalar()
    if clash is not None:
        what = kind.replace("_", " ")
        raise NameConflictError(
            f"Cannot create {what} {name!r}: the {what} {clash!r} exists, and names are unique "
            f"ignoring case (they would share tables and folders). Use {clash!r}, or a name that "
            "differs in more than case."
        )


class SqlRegistry:
    """Registry in any SQLAlchemy database.

    Every operation survives a lost connection by retrying (writes only after checking they
    did not land) and raises only FtiErrors: see :mod:`fti.backends.registry.sql_errors`.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _engine(url)
        self._where = repr(self.engine.url.render_as_string(hide_password=True))
        try:
            upgrade(self.engine)
        except sa.exc.SQLAlchemyError as e:
            self.engine.dispose()
            raise BackendUnavailableError(
                f"Cannot open the registry at {self._where}: {reason(e)}. Check that the "
                "database server is running and the URL (FTI_REGISTRY) is right."
            ) from e

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        """One ``SELECT 1`` (retried like every read)."""

        def op() -> None:
            with self._read() as conn:
                conn.execute(sa.select(1)).one()

        self._run(op, "checking the connection")

    def _run(
        self, op: Callable[[], T], what: str, landed: Callable[[], T | None] | None = None
    ) -> T:
        return retrying(
            op, dialect=self.engine.dialect.name, where=self._where, what=what, landed=landed
        )

    def _landed(
        self, kind: str, name: str, version: int, body: dict[str, Any], now: datetime
    ) -> Record | None:
        """The record a write that lost its connection stored, if it was committed: same body
        and the timestamp that write set (microseconds), so another writer's row never counts."""
        rec = self.get(kind, name, version)
        same = (
            rec is not None and rec.updated_at == now and rec.body == json.loads(json.dumps(body))
        )
        return rec if same else None

    def create(self, kind: str, name: str, version: int, body: dict[str, Any]) -> Record:
        now = datetime.now(UTC)

        def op() -> Record:
            try:
                with self.engine.begin() as conn:
                    _claim_name(conn, kind, name)
                    _insert(conn, kind, name, version, body, now)
            except sa.exc.IntegrityError:
                raise ConflictError(f"{kind} {name!r} version {version} already exists.") from None
            return Record(kind, name, version, body, 1, now, now)

        return self._run(
            op,
            f"creating {label(kind, name)} version {version}",
            landed=lambda: self._landed(kind, name, version, body, now),
        )

    def create_next(
        self, kind: str, name: str, make_body: Callable[[int], dict[str, Any]]
    ) -> Record:
        # What the last try inserted: after a lost connection, it is looked up (at its version,
        # with its body and timestamp) before trying again, so a version is never taken twice.
        tried: list[tuple[int, dict[str, Any], datetime]] = []

        def op() -> Record:
            # Read the latest version and insert the next one in one transaction that holds a
            # lock per (kind, name): SQLite's write lock (BEGIN IMMEDIATE), a transaction-scoped
            # advisory lock on PostgreSQL. Writers queue instead of colliding; the unique
            # constraint plus retry stays as the safety net (e.g. for a writer that bypasses
            # the lock).
            for attempt in range(200):
                now = datetime.now(UTC)
                try:
                    with self.engine.begin() as conn:
                        _claim_name(conn, kind, name)  # also the per-(kind, name) version lock
                        latest = conn.execute(
                            sa.select(sa.func.max(objects.c.version)).where(
                                objects.c.kind == kind, objects.c.name == name
                            )
                        ).scalar()
                        version = int(latest or 0) + 1
                        body = make_body(version)
                        tried.append((version, body, now))
                        _insert(conn, kind, name, version, body, now)
                    return Record(kind, name, version, body, 1, now, now)
                except sa.exc.IntegrityError:
                    time.sleep(min(0.001 * (attempt + 1), 0.05))
            raise ConflictError(f"Could not assign a version to {kind} {name!r} after 200 tries.")

        def landed() -> Record | None:
            return self._landed(kind, name, *tried[-1]) if tried else None

        return self._run(op, f"creating the next version of {label(kind, name)}", landed=landed)

    def _read(self) -> Connection:
        """A connection for reads (no write lock on SQLite)."""
        return self.engine.connect().execution_options(fti_read_only=True)

    def get(self, kind: str, name: str, version: int) -> Record | None:
        def op() -> Record | None:
            with self._read() as conn:
                row = conn.execute(
                    sa.select(objects).where(
                        objects.c.kind == kind,
                        objects.c.name == name,
                        objects.c.version == version,
                    )
                ).first()
            return None if row is None else _record(row)

        return self._run(op, f"reading {label(kind, name)} version {version}")

    def records(self, kind: str, name: str | None = None) -> list[Record]:
        q = sa.select(objects).where(objects.c.kind == kind)
        if name is not None:
            q = q.where(objects.c.name == name)

        def op() -> list[Record]:
            with self._read() as conn:
                rows = conn.execute(q.order_by(objects.c.name, objects.c.version)).all()
            return [_record(r) for r in rows]

        of = "" if name is None else f" of {label(kind, name)}"
        return self._run(op, f"listing {kind} records{of}")

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
        conditions: list[Any] = []
        rows_from: sa.FromClause
        count_from: sa.FromClause
        if name is not None:
            conditions.append(objects.c.name == name)
        if name_contains:
            conditions.append(
                sa.func.lower(objects.c.name).contains(name_contains.lower(), autoescape=True)
            )
        conditions.extend(objects.c.body.contains(text, autoescape=True) for text in body_contains)
        if pairs:
            # An index range of the facts, in (name, version) order, each joined to its record.
            source, fact_conditions, first = facts.join_where(kind, pairs)
            key = (first.c.name, first.c.version)
            rows_from = source.join(
                objects,
                sa.and_(
                    objects.c.kind == first.c.kind,
                    objects.c.name == first.c.name,
                    objects.c.version == first.c.version,
                ),
            )
            where_all = [*fact_conditions, *conditions]
            # Facts exist only for stored records: without other conditions the total is
            # counted from the fact index alone.
            count_from = rows_from if conditions else source
        else:
            key = (objects.c.name, objects.c.version)
            rows_from = count_from = objects
            where_all = [objects.c.kind == kind, *conditions]
        order = tuple(c.desc() for c in key) if newest_first else key
        q = sa.select(*objects.columns).select_from(rows_from).where(*where_all).order_by(*order)
        q = q.offset(max(0, offset)).limit(max(0, limit))
        total_q = sa.select(sa.func.count()).select_from(count_from).where(*where_all)

        def op() -> tuple[list[Record], int]:
            with self._read() as conn:
                rows = conn.execute(q).all()
                total = int(conn.execute(total_q).scalar() or 0)
            return [_record(r) for r in rows], total

        return self._run(op, f"listing a page of {kind} records")

    def summary(self, kind: str) -> tuple[int, datetime | None]:
        q = sa.select(sa.func.count(), sa.func.max(objects.c.updated_at)).where(
            objects.c.kind == kind
        )

        def op() -> tuple[int, datetime | None]:
            with self._read() as conn:
                count, last = conn.execute(q).one()
            if isinstance(last, str):  # SQLite returns the aggregate as text
                last = datetime.fromisoformat(last)
            if isinstance(last, datetime) and last.tzinfo is None:
                last = last.replace(tzinfo=UTC)
            return int(count), last

        return self._run(op, f"summarizing {kind} records")

    def update(
        self, kind: str, name: str, version: int, body: dict[str, Any], *, revision: int
    ) -> Record:
        now = datetime.now(UTC)

        def op() -> bool:
            with self.engine.begin() as conn:
                res = conn.execute(
                    objects.update()
                    .where(
                        objects.c.kind == kind,
                        objects.c.name == name,
                        objects.c.version == version,
                        objects.c.revision == revision,
                    )
                    .values(body=json.dumps(body), revision=revision + 1, updated_at=now)
                )
                if res.rowcount != 1:
                    raise ConflictError(
                        f"{kind} {name!r} version {version} was changed concurrently "
                        f"(expected revision {revision}). Re-read it and try again."
                    )
                lineage.replace_edges(conn, kind, name, version, body)
                facts.replace_facts(conn, kind, name, version, body)
            return True

        def landed() -> bool | None:
            rec = self._landed(kind, name, version, body, now)
            return True if rec is not None and rec.revision == revision + 1 else None

        self._run(op, f"updating {label(kind, name)} version {version}", landed=landed)
        rec = self.get(kind, name, version)
        assert rec is not None
        return rec

    def delete(self, kind: str, name: str, version: int) -> None:
        def op() -> None:  # idempotent: simply run again after a lost connection
            with self.engine.begin() as conn:
                for t in (objects, events):
                    conn.execute(
                        t.delete().where(t.c.kind == kind, t.c.name == name, t.c.version == version)
                    )
                lineage.replace_edges(conn, kind, name, version, None)
                facts.replace_facts(conn, kind, name, version, None)

        self._run(op, f"deleting {label(kind, name)} version {version}")

    def add_event(self, kind: str, name: str, version: int, event: dict[str, Any]) -> None:
        at = datetime.now(UTC)
        text = json.dumps(event)
        where = (events.c.kind == kind, events.c.name == name, events.c.version == version)

        def op() -> bool:
            with self.engine.begin() as conn:
                conn.execute(
                    events.insert().values(kind=kind, name=name, version=version, at=at, body=text)
                )
            return True

        def landed() -> bool | None:
            def check() -> bool | None:
                with self._read() as conn:
                    found = conn.execute(
                        sa.select(sa.func.count())
                        .select_from(events)
                        .where(*where, events.c.at == at, events.c.body == text)
                    ).scalar()
                return True if found else None

            return self._run(check, f"checking an event of {label(kind, name)}")

        self._run(op, f"adding an event to {label(kind, name)} version {version}", landed=landed)

    def events(self, kind: str, name: str, version: int) -> list[dict[str, Any]]:
        def op() -> list[Any]:
            with self._read() as conn:
                return list(
                    conn.execute(
                        sa.select(events.c.at, events.c.body)
                        .where(
                            events.c.kind == kind,
                            events.c.name == name,
                            events.c.version == version,
                        )
                        .order_by(events.c.id)
                    ).all()
                )

        rows = self._run(op, f"reading the events of {label(kind, name)} version {version}")
        return [_event(at, body) for at, body in rows]

    def recent_events(
        self, kind: str, *, limit: int = 100
    ) -> list[tuple[str, int, dict[str, Any]]]:
        q = (
            sa.select(events.c.name, events.c.version, events.c.at, events.c.body)
            .where(events.c.kind == kind)
            .order_by(events.c.id.desc())
            .limit(max(0, limit))
        )

        def op() -> list[Any]:
            with self._read() as conn:
                return list(conn.execute(q).all())

        rows = self._run(op, f"reading the newest {kind} events")
        return [(name, int(version), _event(at, body)) for name, version, at, body in rows]

    def lineage_edges(
        self, nodes: list[NodeKey], *, direction: str, per_node: int | None = None
    ) -> list[EdgeRow]:
        def op() -> list[EdgeRow]:
            with self._read() as conn:
                return lineage.read_edges(conn, nodes, direction, per_node)

        return self._run(op, f"reading the lineage edges of {len(nodes)} objects")

    def lineage_reported(self, links: list[tuple[NodeKey, NodeKey, bool]]) -> list[bool]:
        def op() -> list[bool]:
            with self._read() as conn:
                return lineage.reported(conn, links)

        return self._run(op, f"reading the lineage of {len(links)} links")

    def lineage_latest_version(self, kind: str, name: str) -> int | None:
        def op() -> int | None:
            with self._read() as conn:
                return lineage.latest_version(conn, kind, name)

        return self._run(op, f"reading the lineage of {label(kind, name)}")

    def lineage_names(self, kind: str) -> list[str]:
        def op() -> list[str]:
            with self._read() as conn:
                return lineage.names(conn, kind)

        return self._run(op, f"listing the {kind} names in the lineage")


def _event(at: datetime, body: str) -> dict[str, Any]:
    at = at.astimezone(UTC) if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return {"at": at.isoformat(), **json.loads(body)}
