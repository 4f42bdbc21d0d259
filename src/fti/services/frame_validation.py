"""Check a frame against a feature group before anything is written, and normalise it.

Every problem is reported with the column, the offending value or count, and the fix.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from fti._internal.names import check_identifier, check_unique
from fti.definitions.feature_group import FeatureGroupSpec
from fti.definitions.fields import Field, arrow_type, can_widen, dtype_of
from fti.errors import SchemaError, ValidationError

__all__ = ["check_column_names", "infer_columns", "missing_features", "normalize_frame"]


def _first_bad_row(mask: pa.ChunkedArray | pa.Array) -> int:
    idx = pc.index(mask, True).as_py()
    return int(idx) if idx is not None else -1


def _check_not_null(table: pa.Table, column: str, role: str, fg: str) -> None:
    col = table.column(column)
    if col.null_count:
        row = _first_bad_row(pc.is_null(col))
        raise ValidationError(
            f"{role} column {column!r} has {col.null_count} missing value(s) (null, None, NaN or "
            f"NaT; first at row {row}) "
            f"in the insert into feature group {fg!r}. Every row needs a value in {column!r}: "
            "drop or fill those rows first."
        )
    if pa.types.is_floating(col.type):
        nan = pc.is_nan(col)
        n = pc.sum(nan).as_py() or 0
        if n:
            raise ValidationError(
                f"{role} column {column!r} has {n} NaN value(s) (first at row "
                f"{_first_bad_row(nan)}) in the insert into feature group {fg!r}. Drop or fill "
                "those rows first."
            )


def check_column_names(table: pa.Table, fg: str) -> None:
    """Column names must be identifiers and unique (exactly and case-insensitively)."""
    names = table.column_names
    for name in names:
        check_identifier(name)
    counts = Counter(names)
    dup = sorted(n for n, c in counts.items() if c > 1)
    if dup:
        raise ValidationError(
            f"Duplicate column name(s) {dup} in the insert into feature group {fg!r} "
            f"(columns given: {names}). Rename or drop the duplicates."
        )
    check_unique(names)


def infer_columns(spec: FeatureGroupSpec, table: pa.Table) -> tuple[Field, ...]:
    """The full column list after this frame: declared columns plus inferred ones."""
    declared = {c.name: c for c in spec.columns}
    declared_features = bool(spec.feature_columns)
    out: list[Field] = list(spec.columns)
    for name in table.column_names:
        if name in declared:
            continue
        is_key_or_time = name in spec.primary_key or name == spec.event_time
        if declared_features and not is_key_or_time:
            continue  # reported as an unknown column by normalize_frame
        out.append(Field(name, dtype_of(table.schema.field(name).type, column=name)))
    # key columns first, then event time, then features in frame order
    order = {n: i for i, n in enumerate([*spec.primary_key, spec.event_time or ""])}
    out.sort(key=lambda f: order.get(f.name, len(order)))
    return tuple(out)


def missing_features(spec: FeatureGroupSpec, table: pa.Table) -> list[str]:
    """Feature columns of ``spec`` the frame does not carry, in schema order."""
    given = set(table.column_names)
    return [f.name for f in spec.feature_columns if f.name not in given]


def normalize_frame(spec: FeatureGroupSpec, table: pa.Table, *, partial: bool = False) -> pa.Table:
    """Validate ``table`` against ``spec`` (whose columns must be known) and cast it to the
    stored Arrow types, in schema order. A missing feature column is an error unless
    ``partial``; then it is a null column here, which the caller fills from stored rows."""
    fg = spec.name
    check_column_names(table, fg)
    names = set(table.column_names)
    for k in spec.primary_key:
        if k not in names:
            raise ValidationError(
                f"Primary key column {k!r} is missing from the insert into feature group {fg!r}. "
                f"Columns given: {table.column_names}."
            )
    if spec.event_time is not None and spec.event_time not in names:
        raise ValidationError(
            f"Event time column {spec.event_time!r} is missing from the insert into feature group "
            f"{fg!r}. Columns given: {table.column_names}."
        )
    # Nulls and NaNs first: pandas turns an int key with a missing value into float64, and the
    # user should hear about the missing value, not about the dtype it caused.
    for k in spec.primary_key:
        _check_not_null(table, k, "Primary key", fg)
    if spec.event_time is not None:
        _check_not_null(table, spec.event_time, "Event time", fg)
    known = set(spec.column_names)
    unknown = [n for n in table.column_names if n not in known]
    if unknown:
        raise SchemaError(
            f"Unknown column(s) {unknown} for feature group {fg!r} version {spec.version}; its "
            f"columns are {spec.column_names}. To add a nullable feature in place, call "
            f"fg.add_features({{{unknown[0]!r}: '<dtype>'}}); for other changes create version "
            f"{spec.version + 1}."
        )
    missing = missing_features(spec, table)
    if missing and not partial:
        # Nulls in their place would be written as corrections over the stored values.
        raise SchemaError(
            f"The insert into feature group {fg!r} version {spec.version} lacks feature "
            f"column(s) {missing} (columns given: {table.column_names}). Every insert carries "
            "every feature column, so that missing values are not written as nulls over stored "
            "ones. Add the column(s) (None for a null value), or call "
            "fg.insert(df, partial=True) to keep the stored values of the missing columns for "
            "these keys."
        )
    arrays: list[pa.ChunkedArray] = []
    for field in spec.columns:
        target = arrow_type(field.dtype)
        if field.name not in names:
            arrays.append(pa.chunked_array([pa.nulls(table.num_rows, target)], type=target))
            continue
        col = table.column(field.name)
        if pa.types.is_null(col.type):
            arrays.append(pa.chunked_array([pa.nulls(table.num_rows, target)], type=target))
            continue
        source = dtype_of(col.type, column=field.name)
        if not can_widen(source, field.dtype):
            hint = (
                "Event time columns must hold timezone-aware timestamps."
                if field.name == spec.event_time
                else f"Cast it to {field.dtype}, or create version {spec.version + 1} with the "
                "new type."
            )
            raise SchemaError(
                f"Column {field.name!r} has dtype {source} but feature group {fg!r} stores it as "
                f"{field.dtype}. {hint}"
            )
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        if col.type != target:
            # timestamps: any unit/zone -> µs UTC (sub-µs digits are truncated).
            try:
                col = col.cast(target, safe=not pa.types.is_timestamp(target))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise SchemaError(
                    f"Column {field.name!r} cannot be stored as {field.dtype} in feature group "
                    f"{fg!r}: {e}. Convert the values first."
                ) from None
        arrays.append(col)
    out = pa.Table.from_arrays(
        arrays, schema=pa.schema([pa.field(f.name, arrow_type(f.dtype)) for f in spec.columns])
    )
    return out
