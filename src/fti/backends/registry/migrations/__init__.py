"""Registry schema migrations (Alembic), applied automatically when a registry opens.

Many processes may open a fresh registry at once (8 pipeline workers starting together), so the
upgrade runs inside one transaction that first takes a lock every opener waits for: a
transaction-scoped advisory lock on PostgreSQL, the write lock (``BEGIN IMMEDIATE``, issued by the
SQLite engine's ``begin`` hook) on SQLite. Inside the lock the revision is read again, so only the
first process migrates and the others find the schema at head. DDL is transactional on both
databases: a killed upgrade leaves the previous schema.

New migration: add a module to ``versions/`` (``alembic revision`` with ``script_location``
pointing here, or by hand) whose ``down_revision`` is the current head, and update ``HEAD``.

Alembic itself (~0.3 s of CPU to import) is imported only when a migration runs: the common
case, a registry already at head, is one SELECT of the version table against ``HEAD`` (kept
equal to Alembic's head by a test; what makes ``fti serve`` and the CLI start fast).
SQLAlchemy too is imported only by the functions that need it, so ``HEAD`` and ``VERSION_TABLE``
can be read without it (the read-only SQLite registry of ``fti fg list`` does).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection, Engine

__all__ = ["HEAD", "VERSION_TABLE", "current_revision", "head_revision", "upgrade"]

VERSION_TABLE = "fti_alembic_version"
# The newest revision in versions/, written out so that opening an up-to-date registry does not
# import Alembic (it costs ~0.1 s of every ``fti`` command); a test keeps it equal to the head
# Alembic finds. A new migration updates it.
HEAD = "0004"
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


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


def _stored_revision(engine: Engine) -> str | None:
    import sqlalchemy as sa

    try:
        with engine.connect() as conn:
            conn.execution_options(fti_read_only=True)  # SQLite: a plain BEGIN, no write lock
            query = sa.text(f"SELECT version_num FROM {VERSION_TABLE}")
            rows = conn.execute(query).all()
    except sa.exc.DBAPIError:
        return None  # no version table yet: a fresh database, the slow path creates it
    return str(rows[0][0]) if len(rows) == 1 else None


def upgrade(engine: Engine) -> bool:
    """Bring the schema to head; returns True if this call ran migrations."""
    import sqlalchemy as sa

    if _stored_revision(engine) == HEAD:  # the common case: one cheap read, no lock, no Alembic
        return False
    head = head_revision()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
        if current_revision(conn) == head:
            return False  # another process migrated while we waited for the lock
        from alembic import command

        command.upgrade(_config(conn), "head")
    return True
