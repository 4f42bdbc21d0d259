"""The point-in-time join as a dialect-neutral plan, rendered to SQL by one module per engine.

For a spine row with key ``k`` and time ``t`` and a feature group ``G``: the chosen row is the
greatest by ``(event_time, _fti_seq)`` among G's rows with key ``k`` and ``event_time <= t``
(and ``event_time >= t - ttl`` if G has a ttl); none -> nulls. A group without an event time (or
any group when the spine has no time) contributes its latest row per key.

:func:`plan_pit` decides *what* is joined: the spine (a user spine, or the left group's own
rows), one :class:`JoinStep` per feature group that contributes columns (its keys, columns,
filters, ttl) and the output columns in order. The renderers decide *how*:
:mod:`fti.planner.duckdb_pit` (ASOF joins on one order key) and :mod:`fti.planner.spark_pit`
(a window over the union of spine and group rows). Neither executes anything: a
:class:`PitStatement` is run by a compute engine (``fti.services.pit_execution``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fti._internal.names import SEQ
from fti.definitions.feature_group import FeatureGroupSpec
from fti.definitions.query import Condition, Query
from fti.planner.predicates import group_conditions

__all__ = ["LAST_SEQ", "ROW", "SEQ", "JoinStep", "LeftSpine", "PitPlan", "PitStatement", "plan_pit"]

ROW = "_fti_row"  # spine position (int64), added by the caller to a user spine
LAST_SEQ = "9223372036854775807"  # 2**63 - 1: a spine row sorts after every row at its time


@dataclass(frozen=True)
class PitStatement:
    """The SQL text, its bound parameters and the output column names in order.

    ``from_spine``: output columns the SQL does not return; they are the spine's own columns,
    attached by the caller from the spine table by the ``_fti_row`` the SQL returns first.
    """

    sql: str
    params: list[Any]
    columns: list[str]
    spine_relation: str
    group_relations: list[str]
    from_spine: tuple[str, ...] = ()


@dataclass(frozen=True)
class LeftSpine:
    """Without a user spine, the left group's own (filtered) rows are the spine.

    ``columns``: the entity columns and the left group's selected columns, read from the row;
    ``keys``: its primary key (a snapshot group keeps its latest row per key).
    """

    columns: tuple[str, ...]
    keys: tuple[str, ...]
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class JoinStep:
    """One feature group joined to the spine: spine columns ``left_on`` = group ``right_on``.

    ``timed``: chosen by ``(event_time, seq) <= (t, last)`` (else the latest row per key);
    ``columns``: ``(source column, output name)`` pairs; ``conditions``: the query's filters
    on this group, applied to its rows before the join.
    """

    index: int
    group: FeatureGroupSpec
    left_on: tuple[str, ...]
    right_on: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]
    conditions: tuple[Condition, ...]
    timed: bool

    @property
    def event_time(self) -> str | None:
        return self.group.event_time

    @property
    def ttl(self) -> timedelta | None:
        """The ttl that nulls a too-old match (only a timed join has one)."""
        return self.group.ttl if self.timed else None

    @property
    def outputs(self) -> list[str]:
        return [out for _src, out in self.columns]


@dataclass(frozen=True)
class PitPlan:
    """What the join computes, for any dialect.

    ``spine_columns``: the user spine's columns (None: ``left`` is the spine). ``time``: the
    spine's time column (the left group's event time; None: an untimed join). ``start``/
    ``end`` bound it, ``start <= t < end``. ``steps``: the groups that contribute columns, in
    join order (a step's ``left_on`` are spine columns or outputs of earlier steps).
    ``columns``: the output columns in order. ``known_at``: rows with ``_fti_seq`` above this
    cut-off (UTC ns) are invisible; ``known_column``: a spine column of per-row cut-offs (then
    ``known_at`` is their maximum).
    """

    query: Query
    spine_columns: tuple[str, ...] | None
    left: LeftSpine | None
    time: str | None
    start: datetime | None
    end: datetime | None
    steps: tuple[JoinStep, ...]
    columns: tuple[str, ...]
    known_at: int | None = None
    known_column: str | None = None

    @property
    def relations(self) -> int:
        """How many group relations the statement reads (one per selection of the query)."""
        return len(self.query.selections)


def plan_pit(
    query: Query,
    *,
    spine_columns: Sequence[str] | None,
    columns: Sequence[tuple[int, str, str]] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    known_at: int | None = None,
    known_column: str | None = None,
) -> PitPlan:
    """Plan the point-in-time join (arguments as in :func:`fti.planner.duckdb_pit.compile_pit`).

    Columns of selection 0 keep their names; ones the spine has come from the spine. A group
    none of whose columns are wanted is not joined (its join cannot change the rows: each
    spine row gets at most one match).
    """
    if known_column is not None and (spine_columns is None or known_at is None):
        raise ValueError("known_column needs a spine and known_at (the column's maximum)")
    left = query.left.group
    by_group: dict[int, list[tuple[str, str]]] = {}
    for i, src, out in query.feature_columns() if columns is None else columns:
        by_group.setdefault(i, []).append((src, out))
    left_spine = None
    if spine_columns is None:
        own = [*query.entity_columns()]
        own += [c for c, _ in by_group.get(0, []) if c not in own]
        left_spine = LeftSpine(
            tuple(own), tuple(left.primary_key), tuple(group_conditions(query, 0))
        )
        out_cols = own
        first_joined = 1
    else:
        present = set(spine_columns)
        out_cols = [c for c in spine_columns if c not in (ROW, known_column)]
        # Left group columns the spine does not carry come from its point-in-time row.
        wanted = [c for c in query.entity_columns() if c not in present]
        wanted += [c for c, _ in by_group.get(0, []) if c not in present and c not in wanted]
        by_group[0] = [(c, c) for c in wanted]
        out_cols += [c for c in wanted if c not in out_cols]
        first_joined = 0
    joins = [(0, left, tuple(left.primary_key), tuple(left.primary_key))]
    joins += [
        (i, j.selection.group, j.left_on, j.right_on) for i, j in enumerate(query.joins, start=1)
    ]
    timed = left.event_time is not None
    steps = []
    for i, group, left_on, right_on in joins:
        picked = by_group.get(i, [])
        if i < first_joined or not picked:
            continue
        steps.append(
            JoinStep(
                i,
                group,
                tuple(left_on),
                tuple(right_on),
                tuple(picked),
                tuple(group_conditions(query, i)),
                timed and group.event_time is not None,
            )
        )
        out_cols += [out for _, out in picked if out not in out_cols]
    return PitPlan(
        query,
        None if spine_columns is None else tuple(spine_columns),
        left_spine,
        left.event_time,
        start,
        end,
        tuple(steps),
        tuple(out_cols),
        known_at,
        known_column,
    )
