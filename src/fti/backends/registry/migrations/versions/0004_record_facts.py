"""Indexed record facts: the run page of the web UI filters runs by status and pipeline with an
index range on ``(kind, key, value, name, version)`` instead of a substring scan of every run's
JSON body.

Existing stores are backfilled here with the same derivation the registry uses for new records
(``record_facts.facts_of``).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from fti.backends.registry.record_facts import FACT_KEYS
from fti.backends.registry.sql_facts import insert_facts, rows_of

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "fti_facts",
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("key", sa.String(32), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("kind", "name", "version", "key", name="pk_fti_facts"),
    )
    # A filtered page, newest first, is a range of this index read backwards.
    op.create_index("ix_fti_facts_lookup", "fti_facts", ["kind", "key", "value", "name", "version"])
    _backfill(op.get_bind())


def _backfill(conn: sa.Connection) -> None:
    objects = sa.table(
        "fti_objects",
        sa.column("kind", sa.String),
        sa.column("name", sa.String),
        sa.column("version", sa.Integer),
        sa.column("body", sa.Text),
    )
    for kind in FACT_KEYS:
        q = sa.select(objects.c.name, objects.c.version, objects.c.body).where(
            objects.c.kind == kind
        )
        batch = []
        for name, version, body in conn.execute(q).all():
            batch.extend(rows_of(kind, name, version, json.loads(body)))
            if len(batch) >= _BATCH:
                insert_facts(conn, batch)
                batch = []
        insert_facts(conn, batch)


def downgrade() -> None:
    op.drop_table("fti_facts")
