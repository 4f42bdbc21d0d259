"""Lineage edges in an indexed table: walking the lineage of an object reads the edges of the
nodes it reaches, both directions indexed, instead of every run record of the store.

Existing stores are backfilled here, from the run, model and training dataset records, with
the same derivation the registry uses for new records (``lineage_edges.edges_of``).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from fti.backends.registry.lineage_edges import EDGE_KINDS, edges_of
from fti.backends.registry.sql_lineage import insert_edges

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None

_BATCH = 500


def upgrade() -> None:
    op.create_table(
        "fti_lineage_edges",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("src_kind", sa.String(32), nullable=False),
        sa.Column("src_name", sa.Text, nullable=False),
        sa.Column("src_version", sa.Integer, nullable=False),
        sa.Column("dst_kind", sa.String(32), nullable=False),
        sa.Column("dst_name", sa.Text, nullable=False),
        sa.Column("dst_version", sa.Integer, nullable=False),
        sa.Column("versioned", sa.String(8), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("src_info", sa.Text, nullable=False),
        sa.Column("dst_info", sa.Text, nullable=False),
        sa.Column("owner_rank", sa.Integer, nullable=False),
        sa.Column("owner_kind", sa.String(32), nullable=False),
        sa.Column("owner_name", sa.String(128), nullable=False),
        sa.Column("owner_version", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
    )
    # By node, then in the order a walk reads a node's edges: the first few are an index range.
    order = ["owner_rank", "owner_name", "owner_version", "seq"]
    op.create_index(
        "ix_fti_lineage_edges_src",
        "fti_lineage_edges",
        ["src_kind", "src_name", "src_version", *order],
    )
    op.create_index(
        "ix_fti_lineage_edges_dst",
        "fti_lineage_edges",
        ["dst_kind", "dst_name", "dst_version", *order],
    )
    op.create_index(
        "ix_fti_lineage_edges_owner",
        "fti_lineage_edges",
        ["owner_kind", "owner_name", "owner_version"],
    )
    _backfill(op.get_bind())


def _backfill(conn: sa.Connection) -> None:
    objects = sa.table(
        "fti_objects",
        sa.column("kind", sa.String),
        sa.column("name", sa.String),
        sa.column("version", sa.Integer),
        sa.column("body", sa.Text),
    )
    for kind in EDGE_KINDS:
        q = (
            sa.select(objects.c.name, objects.c.version, objects.c.body)
            .where(objects.c.kind == kind)
            .order_by(objects.c.name, objects.c.version)
        )
        batch = []
        for name, version, body in conn.execute(q).all():
            batch.extend(edges_of(kind, name, version, json.loads(body)))
            if len(batch) >= _BATCH:
                insert_edges(conn, batch)
                batch = []
        insert_edges(conn, batch)


def downgrade() -> None:
    op.drop_table("fti_lineage_edges")
