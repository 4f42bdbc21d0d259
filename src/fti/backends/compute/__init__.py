"""Compute engines: where SQL runs. DuckDB (:mod:`.duckdb`, the default, owned by the store
context as ``ctx.compute``) and Spark (:mod:`.spark`, a session the user passes) implement
:class:`ComputeEngine`; the planner compiles SQL text, an engine executes it.

Design (Spark): **Spark computes, deltalake commits.** Spark cannot load Delta Lake's jars here,
so it never writes a Delta table itself:

- *reads*: a table version's current data files come from ``deltalake``
  (``DeltaTable(path, version).file_uris()``) and Spark reads them as Parquet with the table's
  schema (files written before a column was added read it as null);
- *writes*: a Spark DataFrame is collected to the driver as Arrow (``DataFrame.toArrow()``) and
  goes through fti's normal insert path — validation, then one atomic Delta commit by
  ``deltalake`` — so an insert from Spark is visible entirely or not at all, like any other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import pyarrow as pa

__all__ = ["ComputeEngine"]


class ComputeEngine(Protocol):
    """Runs SQL and moves data between an engine's frames and fti's Arrow tables."""

    name: str

    def to_arrow(self, frame: Any) -> pa.Table:
        """An engine frame (e.g. a Spark DataFrame) as an Arrow table on this process."""

    def read_table(self, path: str, *, version: int | None = None) -> Any:
        """The rows of a Delta table version as an engine frame."""

    def query(
        self,
        sql: str,
        *,
        params: Sequence[Any] = (),
        relations: Mapping[str, Any] | None = None,
    ) -> pa.Table:
        """Run one SQL statement (``?`` placeholders bound to ``params``) over named relations
        (Arrow tables, or the engine's own frames) with times in UTC; the result as Arrow.
        The relations are visible to this statement only: concurrent queries may reuse names."""
