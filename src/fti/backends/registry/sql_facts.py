"""The indexed fact table of the SQL registry (schema: migration 0004) and the filter built on
it (rules: :mod:`fti.backends.registry.record_facts`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fti.backends.registry.record_facts import FACT_KEYS, facts_of

__all__ = ["facts", "insert_facts", "join_where", "replace_facts"]

_meta = sa.MetaData()
facts = sa.Table(
    "fti_facts",
    _meta,
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(32), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

FactRow = tuple[str, str, int, str, str]


def rows_of(kind: str, name: str, version: int, body: dict[str, Any]) -> list[FactRow]:
    return [(kind, name, version, key, value) for key, value in facts_of(kind, body)]


def insert_facts(conn: Connection, rows: Sequence[FactRow]) -> None:
    """Store facts (one executemany)."""
    if rows:
        conn.execute(
            facts.insert(),
            [dict(zip(("kind", "name", "version", "key", "value"), r, strict=True)) for r in rows],
        )


def replace_facts(
    conn: Connection, kind: str, name: str, version: int, body: dict[str, Any] | None
) -> None:
    """Make the stored facts of a record those of ``body`` (None: it was deleted)."""
    if kind not in FACT_KEYS:
        return
    conn.execute(
        facts.delete().where(facts.c.kind == kind, facts.c.name == name, facts.c.version == version)
    )
    if body is not None:
        insert_facts(conn, rows_of(kind, name, version, body))


def join_where(
    kind: str, pairs: list[tuple[str, str]]
) -> tuple[sa.FromClause, list[Any], sa.Table | Any]:
    """The facts of ``pairs`` joined (one alias per pair, each an index range on
    ``(kind, key, value, name, version)``): the FROM clause, its conditions, and the first
    alias, whose ``name, version`` give the index order of the matching records."""
    aliases = [facts.alias(f"f{i}") for i in range(len(pairs))]
    first = aliases[0]
    joined: sa.FromClause = first
    conditions: list[Any] = []
    for f, (key, value) in zip(aliases, pairs, strict=True):
        conditions.extend([f.c.kind == kind, f.c.key == key, f.c.value == value])
        if f is not first:
            joined = joined.join(
                f,
                sa.and_(f.c.name == first.c.name, f.c.version == first.c.version),
            )
    return joined, conditions, first
