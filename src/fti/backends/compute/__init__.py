"""Compute engines: where feature pipelines and point-in-time joins can run besides DuckDB.

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

from typing import Any, Protocol

import pyarrow as pa

__all__ = ["ComputeEngine"]


class ComputeEngine(Protocol):
    """Moves data between an engine's frames and fti's Arrow tables."""

    name: str

    def to_arrow(self, frame: Any) -> pa.Table:
        """An engine frame (e.g. a Spark DataFrame) as an Arrow table on this process."""

    def read_table(self, path: str, *, version: int | None = None) -> Any:
        """The rows of a Delta table version as an engine frame."""
