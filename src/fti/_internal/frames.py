"""Conversions between the frames users hold (pandas, polars, pyarrow) and Arrow tables."""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa

from fti.errors import ValidationError

__all__ = ["Format", "from_arrow", "to_arrow"]

Format = Literal["pandas", "polars", "arrow"]
FORMATS = ("pandas", "polars", "arrow")


def to_arrow(data: Any, *, what: str = "data") -> pa.Table:
    """Accept a pandas or polars DataFrame, a pyarrow Table/RecordBatch, or a list of dicts."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    mod = type(data).__module__.split(".")[0]
    if mod == "pandas":
        import pandas as pd

        if not isinstance(data, pd.DataFrame):
            raise ValidationError(
                f"{what} must be a DataFrame, got a pandas {type(data).__name__}."
            )
        cols = [str(c) for c in data.columns]
        if len(set(cols)) != len(cols):
            dup = sorted({c for c in cols if cols.count(c) > 1})
            raise ValidationError(
                f"Duplicate column name(s) {dup} in {what}. Rename or drop the duplicates."
            )
        # The index only carries data when it was named (e.g. after set_index).
        keep_index = any(n is not None for n in data.index.names)
        try:
            return pa.Table.from_pandas(data, preserve_index=keep_index)
        except (pa.ArrowException, OverflowError) as e:
            columns: dict[str, Any] = {str(c): data[c] for c in data.columns}
            raise _unconvertible(columns, e, what) from e
    if mod == "polars":
        return data.to_arrow()
    if mod == "pyspark" and hasattr(data, "toArrow"):
        # Spark computes, deltalake commits: the DataFrame is collected to the driver as Arrow
        # and written by the normal atomic insert path (see fti.backends.compute). Not through
        # __arrow_c_stream__: pyspark 4.3 fails there on timestamp columns.
        return data.toArrow()
    if hasattr(data, "__arrow_c_stream__"):
        return pa.table(data)
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        try:
            return pa.Table.from_pylist(data)
        except (pa.ArrowException, OverflowError) as e:
            names = list(dict.fromkeys(k for r in data for k in r))
            rows: dict[str, Any] = {str(n): [r.get(n) for r in data] for n in names}
            raise _unconvertible(rows, e, what) from e
    raise ValidationError(
        f"{what} must be a pandas or polars DataFrame, a pyarrow Table or a list of dicts; "
        f"got {type(data).__name__}."
    )


def _unconvertible(columns: dict[str, Any], error: Exception, what: str) -> ValidationError:
    """A ValidationError naming the first column Arrow cannot convert (found column by column,
    only once the whole conversion failed)."""
    for name, values in columns.items():
        try:
            pa.array(values, from_pandas=True)
        except (pa.ArrowException, OverflowError) as e:
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
            return ValidationError(
                f"Column {name!r} of {what} cannot be converted: {why}. Integers must fit in "
                "64 bits and a column must hold one type; cast or clean it first."
            )
    return ValidationError(f"{what} cannot be converted to Arrow: {error}.")


def from_arrow(table: pa.Table, fmt: str) -> Any:
    """Return ``table`` as pandas (default), polars or arrow."""
    if fmt == "arrow":
        return table
    if fmt == "pandas":
        return table.to_pandas()
    if fmt == "polars":
        import polars as pl

        return pl.from_arrow(table)
    raise ValidationError(f"Unknown format {fmt!r}. Known formats: {list(FORMATS)}.")
