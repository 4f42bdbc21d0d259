"""Index records by (kind, lower(name)): every create looks for a name that differs from the
new one only in case (names are unique case-insensitively), and this keeps that check one index
lookup instead of a scan of the kind's records (pipeline runs can be many). ``name`` is in the
index too, so it covers the check (SQLite otherwise prefers scanning the covering unique index).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_fti_objects_kind_lower_name",
        "fti_objects",
        ["kind", sa.text("lower(name)"), "name"],
    )


def downgrade() -> None:
    op.drop_index("ix_fti_objects_kind_lower_name", table_name="fti_objects")
