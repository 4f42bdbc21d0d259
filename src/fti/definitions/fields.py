"""Column data types and fields.

fti stores a small, explicit set of logical types. Every frame is normalised to these Arrow
types before it is written, so all backends see the same thing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fti._internal.names import check_identifier
from fti.errors import SchemaError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["DTYPES", "Field", "arrow_type", "dtype_of"]

DTYPES: tuple[str, ...] = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "float32",
    "float64",
    "string",
    "timestamp",
    "date",
)


@functools.cache
def _arrow_types() -> dict[str, pa.DataType]:
    # pyarrow is imported on first use so that reading definitions (``fti fg list``) stays light
    import pyarrow as pa

    return {
        "bool": pa.bool_(),
        "int8": pa.int8(),
        "int16": pa.int16(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float32": pa.float32(),
        "float64": pa.float64(),
        "string": pa.string(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "date": pa.date32(),
    }


_INT_ORDER = ["int8", "int16", "int32", "int64"]


def arrow_type(dtype: str) -> pa.DataType:
    """The Arrow type fti stores for a logical dtype name."""
    try:
        return _arrow_types()[dtype]
    except KeyError:
        raise SchemaError(f"Unknown dtype {dtype!r}. Known dtypes: {sorted(DTYPES)}.") from None


def dtype_of(t: pa.DataType, *, column: str) -> str:
    """Map an Arrow type from user data to the logical dtype fti will store it as."""
    import pyarrow as pa

    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        if pa.types.is_unsigned_integer(t):
            # uint8/16/32 fit the next signed type; uint64 is stored as int64 if it fits.
            return {8: "int16", 16: "int32", 32: "int64", 64: "int64"}[t.bit_width]
        return f"int{t.bit_width}"
    if pa.types.is_floating(t):
        return "float32" if t.bit_width <= 32 else "float64"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_dictionary(t):
        return dtype_of(t.value_type, column=column)
    if pa.types.is_timestamp(t):
        if t.tz is None:
            raise SchemaError(
                f"Column {column!r} holds naive timestamps (no time zone). fti compares times in "
                "UTC and cannot guess the zone: localize it first, e.g. "
                f"df[{column!r}] = df[{column!r}].dt.tz_localize('UTC')."
            )
        return "timestamp"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_null(t):
        raise SchemaError(
            f"Column {column!r} has only null values, so its type cannot be inferred. "
            "Declare it with features={" + repr(column) + ": 'float64'} (or another dtype)."
        )
    raise SchemaError(
        f"Column {column!r} has type {t}, which fti does not store. "
        f"Supported dtypes: {sorted(DTYPES)}. Convert the column first."
    )


def can_widen(source: str, target: str) -> bool:
    """True if values of dtype ``source`` convert to ``target`` without loss."""
    if source == target:
        return True
    if source in _INT_ORDER and target in _INT_ORDER:
        return _INT_ORDER.index(source) <= _INT_ORDER.index(target)
    if source in ("int8", "int16", "int32") and target in ("float64",):
        return True
    if source in ("int8", "int16") and target == "float32":
        return True
    if source == "int64" and target == "float64":
        return True  # what pandas users expect; exact up to 2**53
    return source == "float32" and target == "float64"


@dataclass(frozen=True)
class Field:
    """A named, typed column of a feature group.

    >>> Field("temp", "float64")
    Field(name='temp', dtype='float64', description='')
    """

    name: str
    dtype: str
    description: str = ""

    def __post_init__(self) -> None:
        check_identifier(self.name)
        if self.dtype not in DTYPES:
            arrow_type(self.dtype)  # raises the unknown-dtype error

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "description": self.description}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Field:
        return cls(d["name"], d["dtype"], d.get("description", ""))
