"""Run a compiled point-in-time statement on a compute engine (DuckDB or Spark).

The planner only compiles (:mod:`fti.planner.pit_plan` and its renderers); this puts the spine
and one relation per selection under the statement's relation names, runs it through the
engine's ``query`` and attaches the spine's own columns, which the DuckDB SQL leaves out of the
joins (it returns the spine row number instead; see ``PitStatement.from_spine``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from fti.backends.compute import ComputeEngine
from fti.planner.pit_plan import ROW, PitStatement

__all__ = ["execute_pit"]


def execute_pit(
    engine: ComputeEngine,
    statement: PitStatement,
    *,
    spine: pa.Table | None,
    groups: Sequence[Any],
) -> pa.Table:
    """The statement's rows over ``spine`` (Arrow, or None when the left group is the spine)
    and ``groups`` (one relation per selection, in the engine's terms), in spine order."""
    relations: dict[str, Any] = dict(zip(statement.group_relations, groups, strict=True))
    if spine is not None:
        relations[statement.spine_relation] = spine
    result = engine.query(statement.sql, params=statement.params, relations=relations)
    if not statement.from_spine or spine is None:
        return result
    rows = result.column(ROW).to_numpy()
    own = spine.select(list(statement.from_spine))
    if len(rows) != own.num_rows or not np.array_equal(rows, np.arange(len(rows))):
        own = own.take(pa.array(rows))  # start/end left some spine rows out
    columns = {n: own.column(n) for n in own.column_names}
    columns.update((n, result.column(n)) for n in result.column_names if n != ROW)
    return pa.Table.from_arrays(
        [columns[n] for n in statement.columns], names=list(statement.columns)
    )
