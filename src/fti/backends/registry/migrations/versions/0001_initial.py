"""Initial registry schema: records and their event log.

Stores created before migrations existed already have these tables (made by
``metadata.create_all``); they are adopted as they are instead of being created again.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "fti_objects" not in existing:
        op.create_table(
            "fti_objects",
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
    if "fti_events" not in existing:
        op.create_table(
            "fti_events",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("kind", sa.String(32), nullable=False),
            sa.Column("name", sa.String(128), nullable=False),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("body", sa.Text, nullable=False),
        )
        op.create_index("ix_fti_events_obj", "fti_events", ["kind", "name", "version"])


def downgrade() -> None:
    op.drop_index("ix_fti_events_obj", table_name="fti_events")
    op.drop_table("fti_events")
    op.drop_table("fti_objects")
