"""Registry schema migrations (Alembic), applied automatically when a registry opens.

Many processes may open a fresh registry at once (8 pipeline workers starting together), so the
upgrade runs inside one transaction that first takes a lock every opener waits for: a
transaction-scoped advisory lock on PostgreSQL, the write lock (``BEGIN IMMEDIATE``, issued by the
SQLite engine's ``begin`` hook) on SQLite. Inside the lock the revision is read again, so only the
first process migrates and the others find the schema at head. DDL is transactional on both
databases: a killed upgrade leaves the previous schema.

New migration: add a module to ``versions/`` (``alembic revision`` with ``script_location``
pointing here, or by hand) whose ``down_revision`` is the current head.

Alembic itself (~0.3 s of CPU to import) is imported only when a migration runs: the common
case, a registry already at head, is one SELECT of the version table against the head read
from the ``revision = "..."`` lines of ``versions/*.py`` (what makes ``fti serve`` start fast).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["VERSION_TABLE", "current_revision", "head_revision", "shipped_head", "upgrade"]

VERSION_TABLE = "fti_alembic_version"
# Any constant works; this one spells "fti-reg" so a DBA can recognise it in pg_locks.
_PG_LOCK_ID = 0x6674692D726567


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def head_revision() -> str:
    """The newest revision shipped with this version of fti."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


_REVISION = re.compile(r"^(down_revision|revision)\b[^=\n]*=\s*(.+)$", re.MULTILINE)


@functools.cache
def shipped_head() -> str | None:
    """The head read from the ``revision`` / ``down_revision`` lines of ``versions/*.py``
    without importing Alembic; None if that is ambiguous (then Alembic decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (Path(__file__).parent / "versions").glob("[0-9]*.py"):
        found = {m.group(1): m.group(2) for m in _REVISION.finditer(path.read_text())}
        rev, down = found.get("revision", ""), found.get("down_revision", "None").strip()
        if not re.fullmatch(r"['\"][\w-]+['\"]", rev.strip()):
            return None
        revisions.add(rev.strip()[1:-1])
        if down != "None":
            if not re.fullmatch(r"['\"][\w-]+['\"]", down):
                return None  # a merge (tuple) or computed value
            parents.add(down[1:-1])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


def _at(conn: Connection, head: str) -> bool:
    """True if the database is at ``head`` (one SELECT; False when unsure)."""
    try:
        rows = conn.execute(sa.text(f'SELECT version_num FROM "{VERSION_TABLE}"')).all()
    except sa.exc.DBAPIError:
        conn.rollback()
        return False
    return [r[0] for r in rows] == [head]


def upgrade(engine: Engine) -> bool:
    """Bring the schema to head; returns True if this call ran migrations."""
    shipped = shipped_head()
    if shipped is not None:
        with engine.connect() as conn:
            if _at(conn, shipped):  # the common case: one cheap read, no lock, no Alembic
                return False
    head = head_revision()
    with engine.connect() as conn:
        if current_revision(conn) == head:  # one cheap read, no lock
            return False
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
        if current_revision(conn) == head:
            return False  # another process migrated while we waited for the lock
        from alembic import command

        command.upgrade(_config(conn), "head")
    return True
