"""The lineage edge table of the SQL registry (schema: migration 0003) and its queries.

Edges are written by :func:`replace_edges` inside the transaction that writes their record,
and read by node in either direction (one query per frontier of a walk, both directions
indexed).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fti.backends.registry.lineage_edges import (
    EDGE_KINDS,
    NO_VERSION,
    EdgeRow,
    NodeKey,
    edges_of,
)

__all__ = [
    "edges",
    "insert_edges",
    "latest_version",
    "names",
    "read_edges",
    "replace_edges",
    "reported",
]

_meta = sa.MetaData()
edges = sa.Table(
    "fti_lineage_edges",
    _meta,
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
    sa.Column("owner_rank", sa.Integer, nullable=False),  # EDGE_KINDS.index(owner_kind)
    sa.Column("owner_kind", sa.String(32), nullable=False),
    sa.Column("owner_name", sa.String(128), nullable=False),
    sa.Column("owner_version", sa.Integer, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
)
_COLUMNS = ", ".join(c.name for c in edges.columns)
_CHUNK = 200  # node keys per IN list (or per UNION ALL of index ranges)


def _stored(version: int | None) -> int:
    return NO_VERSION if version is None else version


def _key(kind: str, name: str, version: int) -> NodeKey:
    return (kind, name, None if version == NO_VERSION else version)


def _values(row: EdgeRow) -> dict[str, Any]:
    return {
        "src_kind": row.source[0],
        "src_name": row.source[1],
        "src_version": _stored(row.source[2]),
        "dst_kind": row.target[0],
        "dst_name": row.target[1],
        "dst_version": _stored(row.target[2]),
        "versioned": row.versioned,
        "detail": json.dumps(row.detail, default=str),
        "src_info": json.dumps(row.source_info, default=str),
        "dst_info": json.dumps(row.target_info, default=str),
        "owner_rank": EDGE_KINDS.index(row.owner[0]),
        "owner_kind": row.owner[0],
        "owner_name": row.owner[1],
        "owner_version": row.owner[2],
        "seq": row.seq,
    }


def insert_edges(conn: Connection, rows: Sequence[EdgeRow]) -> None:
    """Store edges (one executemany)."""
    if rows:
        conn.execute(edges.insert(), [_values(r) for r in rows])


def replace_edges(
    conn: Connection, kind: str, name: str, version: int, body: dict[str, Any] | None
) -> None:
    """Make the stored edges of a record those its ``body`` implies (None: it was deleted)."""
    if kind not in EDGE_KINDS:
        return
    conn.execute(
        edges.delete().where(
            edges.c.owner_kind == kind,
            edges.c.owner_name == name,
            edges.c.owner_version == version,
        )
    )
    if body is not None:
        insert_edges(conn, edges_of(kind, name, version, body))


def _row(r: Any) -> EdgeRow:
    return EdgeRow(
        source=_key(r.src_kind, r.src_name, r.src_version),
        target=_key(r.dst_kind, r.dst_name, r.dst_version),
        detail=json.loads(r.detail),
        source_info=json.loads(r.src_info),
        target_info=json.loads(r.dst_info),
        versioned=r.versioned,
        owner=(r.owner_kind, r.owner_name, r.owner_version),
        seq=r.seq,
        id=r.id,
    )


_SRC = (edges.c.src_kind, edges.c.src_name, edges.c.src_version)
_DST = (edges.c.dst_kind, edges.c.dst_name, edges.c.dst_version)


def _order(dialect: str) -> tuple[Any, ...]:
    """The order a walk reads a node's edges in: runs' (by run id), then models', then
    datasets'; names compared by code point, as Python does (PostgreSQL's default collation
    would not)."""
    name = edges.c.owner_name.collate("C") if dialect == "postgresql" else edges.c.owner_name
    return (edges.c.owner_rank, name, edges.c.owner_version, edges.c.seq)


def read_edges(
    conn: Connection, nodes: Iterable[NodeKey], direction: str, per_node: int | None = None
) -> list[EdgeRow]:
    """Edges into (``"into"``) or out of (``"out_of"``) any of ``nodes``, in no set order;
    with ``per_node``, only the first that many of each node (in the walk's order)."""
    keys = sorted({(k, n, _stored(v)) for k, n, v in nodes})
    out: list[EdgeRow] = []
    for i in range(0, len(keys), _CHUNK):
        chunk = keys[i : i + _CHUNK]
        # per node one index range (read until the first per_node), in one statement: an IN
        # list of row values is not an index lookup on every SQLite; text, because building
        # hundreds of SQLAlchemy subqueries costs more than running them
        side = "dst" if direction == "into" else "src"
        name = 'owner_name COLLATE "C"' if conn.dialect.name == "postgresql" else "owner_name"
        tail = (
            ""
            if per_node is None
            else f" ORDER BY owner_rank, {name}, owner_version, seq LIMIT {int(per_node)}"
        )
        params: dict[str, Any] = {}
        parts = []
        for j, (kind, node_name, version) in enumerate(chunk):
            parts.append(
                f"SELECT * FROM (SELECT {_COLUMNS} FROM fti_lineage_edges WHERE "
                f"{side}_kind = :k{j} AND {side}_name = :n{j} AND {side}_version = :v{j}{tail}) "
                f"AS p{j}"
            )
            params |= {f"k{j}": kind, f"n{j}": node_name, f"v{j}": version}
        q = sa.text(" UNION ALL ".join(parts)).bindparams(**params)
        out.extend(_row(r) for r in conn.execute(q))
    return out


def _node_is(cols: tuple[Any, ...], key: NodeKey) -> Any:
    return sa.and_(cols[0] == key[0], cols[1] == key[1], cols[2] == _stored(key[2]))


_T = "dst_kind = :tk{j} AND dst_name = :tn{j} AND dst_version = :tv{j} AND owner_kind = 'run'"
_ANY_RUN = f"EXISTS (SELECT 1 FROM fti_lineage_edges WHERE {_T})"
_LINKED = (
    f"(EXISTS (SELECT 1 FROM fti_lineage_edges WHERE {_T} AND src_kind = :sk{{j}} AND "
    "src_name = :sn{j} AND src_version = :sv{j}) OR EXISTS (SELECT 1 FROM fti_lineage_edges w "
    "JOIN fti_lineage_edges r ON r.dst_kind = w.src_kind AND r.dst_name = w.src_name AND "
    "r.dst_version = w.src_version WHERE w.dst_kind = :tk{j} AND w.dst_name = :tn{j} AND "
    "w.dst_version = :tv{j} AND w.owner_kind = 'run' AND w.src_kind = 'run' AND "
    "r.src_kind = :sk{j} AND r.src_name = :sn{j} AND r.src_version = :sv{j}))"
)


def reported(conn: Connection, links: list[tuple[NodeKey, NodeKey, bool]]) -> list[bool]:
    """For each ``(source, target, any_run)``: did a run report the link (an edge between
    them, or a run reading ``source`` that wrote ``target``); with ``any_run``, did any run
    write ``target``. One statement per 100 links; each link is a few index lookups (EXISTS,
    written as text: building 100 SQLAlchemy subqueries costs more than running them)."""
    out: list[bool] = []
    for i in range(0, len(links), 100):
        parts: list[str] = []
        params: dict[str, Any] = {}
        for j, (source, target, any_run) in enumerate(links[i : i + 100]):
            parts.append((_ANY_RUN if any_run else _LINKED).format(j=j) + f" AS l{j}")
            params |= {f"tk{j}": target[0], f"tn{j}": target[1], f"tv{j}": _stored(target[2])}
            params |= {f"sk{j}": source[0], f"sn{j}": source[1], f"sv{j}": _stored(source[2])}
        q = sa.text("SELECT " + ", ".join(parts))
        out.extend(bool(v) for v in conn.execute(q, params).one())
    return out


def latest_version(conn: Connection, kind: str, name: str) -> int | None:
    """The highest version of ``kind`` ``name`` any edge mentions."""
    found = [
        conn.execute(
            sa.select(sa.func.max(v)).where(k == kind, n == name, v != NO_VERSION)
        ).scalar()
        for k, n, v in (
            (edges.c.src_kind, edges.c.src_name, edges.c.src_version),
            (edges.c.dst_kind, edges.c.dst_name, edges.c.dst_version),
        )
    ]
    versions = [int(f) for f in found if f is not None]
    return max(versions) if versions else None


def names(conn: Connection, kind: str, *, limit: int = 50) -> list[str]:
    """Names of ``kind`` nodes that edges mention (for an error message)."""
    q = sa.union(
        sa.select(edges.c.src_name.label("name")).where(edges.c.src_kind == kind),
        sa.select(edges.c.dst_name.label("name")).where(edges.c.dst_kind == kind),
    )
    rows = conn.execute(sa.select(q.subquery().c.name).order_by("name").limit(limit))
    return [str(r[0]) for r in rows]
