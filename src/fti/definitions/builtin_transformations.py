"""The transformation contract and the built-in kinds (scalers, encoders, imputers, log).

Import them from :mod:`fti.definitions.transformations`, which adds the public factories
(``standard_scaler()``, ...), custom transformations and the functions that fit and apply a whole
set; the module docstring there states the null, NaN and unseen-category rules.
"""

from __future__ import annotations

import contextlib
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Literal, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fti.definitions.fields import arrow_type, dtype_of
from fti.errors import ValidationError

__all__ = [
    "KINDS",
    "STATISTICS",
    "ImputeConstant",
    "ImputeMean",
    "LabelEncoder",
    "LogTransform",
    "MinMaxScaler",
    "OneHotEncoder",
    "RobustScaler",
    "StandardScaler",
    "Transformation",
    "Values",
    "cast_value",
    "compute_statistics",
]

#: Statistics a custom transformation may declare. Numeric ones ignore nulls, NaN and ±inf
#: (so they are always finite, strict JSON); ``std`` is the population standard deviation;
#: quantiles interpolate linearly; ``nulls`` counts the ignored values.
STATISTICS = ("count", "nulls", "mean", "std", "min", "max", "median", "q1", "q3", "categories")
_NUMERIC_STATS = frozenset(STATISTICS) - {"count", "nulls", "categories"}

Values: TypeAlias = "pa.ChunkedArray | pa.Array"


# --------------------------------------------------------------------------- column helpers
def _chunked(values: Values) -> pa.ChunkedArray:
    if isinstance(values, pa.ChunkedArray):
        return values
    if isinstance(values, pa.Array):
        return pa.chunked_array([values])
    raise ValidationError(f"Expected a pyarrow Array or ChunkedArray, got {type(values).__name__}.")


def _decoded(values: Values) -> pa.ChunkedArray:
    col = _chunked(values)
    return col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col


def _as_array(values: Values) -> pa.Array:
    if isinstance(values, pa.Array):
        return values
    if values.num_chunks == 1:
        return values.chunk(0)
    return values.combine_chunks()


_INT_BITS = {"int8": 8, "int16": 16, "int32": 32, "int64": 64}


def cast_value(value: Any, dtype: str) -> Any:
    """Convert one Python value exactly as ``pa.array([value], type=arrow_type(dtype))`` would.

    The row paths use this so that a value computed online has the same type and number as the
    same value computed in a batch column; common cases skip Arrow for speed.
    """
    if value is None:
        return None
    kind = type(value)
    if dtype == "float64":
        if kind is float:
            return value
        if kind is int and -(2**53) <= value <= 2**53:
            return float(value)
    elif kind is int and dtype in _INT_BITS:
        bits = _INT_BITS[dtype] - 1
        if -(2**bits) <= value < 2**bits:
            return value
    elif (dtype == "string" and kind is str) or (dtype == "bool" and kind is bool):
        return value
    try:
        return pa.array([value], type=arrow_type(dtype))[0].as_py()
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError) as e:
        raise ValidationError(f"The value {value!r} does not convert to {dtype} ({e}).") from None


def _is_numeric(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t))


def _float64(values: Values, kind: str) -> pa.ChunkedArray:
    """The column as float64 (ints round to nearest like Python's ``float``)."""
    col = _chunked(values)
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if not _is_numeric(col.type):
        raise ValidationError(
            f"{kind} needs a numeric column; got type {col.type}. Cast the column to a number "
            "first, or use one_hot_encoder()/label_encoder() for categories."
        )
    # safe=False: int64 beyond 2**53 rounds (as float(int) does) instead of raising.
    return col.cast(pa.float64(), safe=False)


def _categorical(values: Values, kind: str) -> pa.ChunkedArray:
    col = _chunked(values)
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    t = col.type
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return col.cast(pa.string())
    if pa.types.is_string(t) or pa.types.is_integer(t) or pa.types.is_boolean(t):
        return col
    raise ValidationError(
        f"{kind} needs a string, integer or bool column; got type {t}. Cast it first "
        "(e.g. to string), or use a scaler for continuous numbers."
    )


def _number(value: Any, kind: str) -> float:
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)  # numpy scalars, Decimal
    except (TypeError, ValueError):
        raise ValidationError(
            f"{kind} needs a number; got {value!r} ({type(value).__name__})."
        ) from None


def compute_statistics(values: Values, names: Sequence[str]) -> dict[str, Any]:
    """Compute the named statistics (a subset of :data:`STATISTICS`) of one column.

    Nulls, NaN and ±inf are ignored by every numeric statistic (``nulls`` counts them), so the
    result is strict JSON (finite floats, ints and a sorted list of categories) that any registry,
    PostgreSQL's JSONB included, stores as is.
    """
    unknown = [n for n in names if n not in STATISTICS]
    if unknown:
        raise ValidationError(
            f"Unknown statistic(s) {unknown}. Known statistics: {list(STATISTICS)}."
        )
    col = _chunked(values)
    out: dict[str, Any] = {}
    if "categories" in names:
        cats = _categorical(col, "The 'categories' statistic")
        out["categories"] = sorted(v for v in pc.unique(cats).to_pylist() if v is not None)
    wanted = [n for n in names if n in _NUMERIC_STATS]
    if not wanted and not {"count", "nulls"} & set(names):
        return out
    if _is_numeric(col.type) or pa.types.is_dictionary(col.type):
        x = _float64(col, "A numeric statistic")
        clean = pc.filter(x, pc.is_finite(x))  # the null mask drops nulls too
    elif wanted:
        raise ValidationError(
            f"Statistics {wanted} need a numeric column; got type {col.type}. Cast it first."
        )
    else:
        clean = pc.drop_null(col)
    n = len(clean)
    if "count" in names:
        out["count"] = n
    if "nulls" in names:
        out["nulls"] = len(col) - n
    if not wanted:
        return out
    if n == 0:
        raise ValidationError(
            "There are no finite, non-null values to fit on (the train split is empty or all "
            "missing). Add rows to the train split or impute the column first."
        )
    if "mean" in wanted:
        out["mean"] = float(pc.mean(clean).as_py())
    if "std" in wanted:
        out["std"] = float(pc.stddev(clean, ddof=0).as_py())
    if "min" in wanted or "max" in wanted:
        mm = pc.min_max(clean).as_py()
        if "min" in wanted:
            out["min"] = float(mm["min"])
        if "max" in wanted:
            out["max"] = float(mm["max"])
    qs = [("q1", 0.25), ("median", 0.5), ("q3", 0.75)]
    asked = [(k, q) for k, q in qs if k in wanted]
    if asked:
        got = pc.quantile(clean, q=[q for _, q in asked], interpolation="linear").to_pylist()
        out.update({k: float(v) for (k, _), v in zip(asked, got, strict=True)})
    overflow = [k for k in wanted if not math.isfinite(out[k])]
    if overflow:  # e.g. the mean of [1e308, 1e308]
        raise ValidationError(
            f"The statistics {overflow} overflow a float64 for this column (values up to "
            f"{max(abs(out.get('min', 0.0)), abs(out.get('max', 0.0)))!r}). Scale the column down "
            "first, e.g. with log_transform() in the feature pipeline."
        )
    return out


def _scale(denominator: float) -> float:
    """A zero (or non-finite) spread divides by 1 instead of producing inf/NaN everywhere."""
    return denominator if denominator != 0 and math.isfinite(denominator) else 1.0


# --------------------------------------------------------------------------- the contract
@dataclass(frozen=True)
class Transformation(ABC):
    """A model-dependent transformation of one column; concrete kinds subclass it."""

    kind: ClassVar[str] = ""

    @abstractmethod
    def fit(self, values: Values) -> dict[str, Any]:
        """Statistics of ``values`` (the train split) as a JSON-serialisable dict."""

    def output_names(self, column: str, stats: Mapping[str, Any]) -> list[str]:
        """Names of the output columns: ``[column]``, or several (one-hot)."""
        return [column]

    @abstractmethod
    def transform(self, values: Values, stats: Mapping[str, Any]) -> list[pa.Array]:
        """Vectorised path: one array per output name, each as long as ``values``."""

    @abstractmethod
    def transform_value(self, value: Any, stats: Mapping[str, Any]) -> list[Any]:
        """One-row path (online): the same numbers ``transform`` gives for this value."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable definition; :func:`transformation_from_dict` reads it back."""
        return {"kind": self.kind}


class _Affine(Transformation):
    """``(x - center) / scale`` with scale 1 when the spread is 0."""

    def _params(self, stats: Mapping[str, Any]) -> tuple[float, float]:
        raise NotImplementedError

    def transform(self, values: Values, stats: Mapping[str, Any]) -> list[pa.Array]:
        center, scale = self._params(stats)
        x = _float64(values, self.kind)
        return [_as_array(pc.divide(pc.subtract(x, center), scale))]

    def transform_value(self, value: Any, stats: Mapping[str, Any]) -> list[Any]:
        if value is None:
            return [None]
        center, scale = self._params(stats)
        return [(_number(value, self.kind) - center) / scale]


@dataclass(frozen=True)
class StandardScaler(_Affine):
    """``(x - mean) / std`` with the population std of the train split (1 if it is 0)."""

    kind: ClassVar[str] = "standard_scaler"

    def fit(self, values: Values) -> dict[str, Any]:
        return compute_statistics(_float64(values, self.kind), ["mean", "std"])

    def _params(self, stats: Mapping[str, Any]) -> tuple[float, float]:
        return float(stats["mean"]), _scale(float(stats["std"]))


@dataclass(frozen=True)
class MinMaxScaler(_Affine):
    """``(x - min) / (max - min)``: the train split maps to [0, 1] (range 0 divides by 1)."""

    kind: ClassVar[str] = "min_max_scaler"

    def fit(self, values: Values) -> dict[str, Any]:
        return compute_statistics(_float64(values, self.kind), ["min", "max"])

    def _params(self, stats: Mapping[str, Any]) -> tuple[float, float]:
        lo, hi = float(stats["min"]), float(stats["max"])
        return lo, _scale(hi - lo)


@dataclass(frozen=True)
class RobustScaler(_Affine):
    """``(x - median) / (q3 - q1)`` (linear quantiles; an IQR of 0 divides by 1)."""

    kind: ClassVar[str] = "robust_scaler"

    def fit(self, values: Values) -> dict[str, Any]:
        return compute_statistics(_float64(values, self.kind), ["median", "q1", "q3"])

    def _params(self, stats: Mapping[str, Any]) -> tuple[float, float]:
        return float(stats["median"]), _scale(float(stats["q3"]) - float(stats["q1"]))


@dataclass(frozen=True)
class LogTransform(Transformation):
    """``log1p(x)``; a negative value raises (``negative="error"``) or becomes null."""

    kind: ClassVar[str] = "log_transform"
    negative: Literal["error", "null"] = "error"

    def __post_init__(self) -> None:
        if self.negative not in ("error", "null"):
            raise ValidationError(
                "The 'negative' parameter must be 'error' or 'null'. "
                f"Got {self.negative!r} instead."
            )

    def fit(self, values: Values) -> dict[str, Any]:
        _float64(values, self.kind)  # type check only: log1p needs no statistics
        return {}

    def _negative_error(self, value: Any) -> ValidationError:
        return ValidationError(
            f"log_transform got the negative value {value!r}; log1p is only defined for "
            "values >= 0. Clip or shift the column first, or use log_transform(negative='null')."
        )

    def transform(self, values: Values, stats: Mapping[str, Any]) -> list[pa.Array]:
        x = _float64(values, self.kind)
        neg = pc.less(x, 0.0)
        if self.negative == "error":
            if pc.any(neg).as_py():
                raise self._negative_error(pc.filter(x, neg)[0].as_py())
        else:
            x = pc.if_else(neg, pa.scalar(None, pa.float64()), x)
        return [_as_array(pc.log1p(x))]

    def transform_value(self, value: Any, stats: Mapping[str, Any]) -> list[Any]:
        if value is None:
            return [None]
        x = _number(value, self.kind)
        if x < 0:
            if self.negative == "error":
                raise self._negative_error(value)
            return [None]
        return [math.log1p(x)]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "negative": self.negative}


@dataclass(frozen=True)
class ImputeMean(Transformation):
    """Replace null and NaN with the train split's mean; the output is float64."""

    kind: ClassVar[str] = "impute_mean"

    def fit(self, values: Values) -> dict[str, Any]:
        return compute_statistics(_float64(values, self.kind), ["mean"])

    def transform(self, values: Values, stats: Mapping[str, Any]) -> list[pa.Array]:
        x = _float64(values, self.kind)
        mean = float(stats["mean"])
        return [_as_array(pc.fill_null(pc.if_else(pc.is_nan(x), mean, x), mean))]

    def transform_value(self, value: Any, stats: Mapping[str, Any]) -> list[Any]:
        if value is None:
            return [float(stats["mean"])]
        x = _number(value, self.kind)
        return [float(stats["mean"]) if math.isnan(x) else x]


@dataclass(frozen=True)
class ImputeConstant(Transformation):
    """Replace null (and NaN in float columns) with ``value``.

    The output type is fixed when fitting and recorded in the statistics (``{"dtype": ...}``),
    so the row path returns the same type: float columns, and integer columns filled with a
    float, come out as float64; other integer, bool and string columns keep their type, and
    ``value`` must fit it.
    """

    kind: ClassVar[str] = "impute_constant"
    value: bool | int | float | str = 0

    def __post_init__(self) -> None:
        v = self.value
        if not isinstance(v, bool | int | float | str) or (isinstance(v, float) and math.isnan(v)):
            raise ValidationError(
                f"The 'value' parameter of impute_constant must be a number, bool or string "
                f"(not NaN). Got {v!r} instead."
            )

    def _output_dtype(self, t: pa.DataType) -> str:
        v = self.value
        number = isinstance(v, int | float) and not isinstance(v, bool)
        if pa.types.is_floating(t) and number:
            return "float64"
        if pa.types.is_integer(t) and isinstance(v, float):
            return "float64"
        if pa.types.is_integer(t) and number:
            dtype = dtype_of(t, column="?")
            with contextlib.suppress(ValidationError):  # out of range: the error below
                cast_value(v, dtype)
                return dtype
        if pa.types.is_boolean(t) and isinstance(v, bool):
            return "bool"
        if (pa.types.is_string(t) or pa.types.is_large_string(t)) and isinstance(v, str):
            return "string"
        raise ValidationError(
            f"impute_constant({v!r}) does not fit a column of type {t}. Pass a value of the "
            "column's type (a number for numeric columns, a bool or a string)."
        )

    def fit(self, values: Values) -> dict[str, Any]:
        return {"dtype": self._output_dtype(_decoded(values).type)}

    def transform(self, values: Values, stats: Mapping[str, Any]) -> list[pa.Array]:
        col = _decoded(values)
        dtype = stats.get("dtype") or self._output_dtype(col.type)
        t = arrow_type(dtype)
        col = col.cast(t)
        fill = pa.scalar(cast_value(self.value, dtype), t)
        if pa.types.is_floating(t):
            col = pc.if_else(pc.is_nan(col), fill, col)
        return [_as_array(pc.fill_null(col, fill))]

    def transform_value(self, value: Any, stats: Mapping[str, Any]) -> list[Any]:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            value = self.value
        dtype = stats.get("dtype")
        return [value if dtype is None else cast_value(value, dtype)]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value}


def _unseen_error(kind: str, value: Any, categories: Sequence[Any]) -> ValidationError:
    shown = list(categories[:20]) + (["..."] if len(categories) > 20 else [])
    return ValidationError(
        f"{kind} got the category {value!r}, which was not in the train split "
        f"(known: {shown}). Declare {kind}(unknown='ignore') to encode unseen values as all "
        "zeros, or add the category to the training data."
    )


class _Encoder(Transformation):
    def fit(self, values: Values) -> dict[str, Any]:
        return compute_statistics(_categorical(values, self.kind), ["categories"])

    def _indices(self, values: Values, stats: Mapping[str, Any]) -> tuple[pa.ChunkedArray, Any]:
        col = _categorical(values, self.kind)
        value_set = pa.array(list(stats["categories"]), type=col.type)
        idx = pc.index_in(col, value_set=value_set)
        unseen = pc.and_(pc.is_valid(col), pc.is_null(idx))
        first = pc.filter(col, unseen)[0].as_py() if pc.any(unseen).as_py() else None
        return idx, first


@dataclass(frozen=True)
class OneHotEncoder(_Encoder):
    """One int8 column ``<column>_<category>`` per train-split category (sorted).

    Category names are made valid identifiers (other characters become ``_``, at most 63
    characters); clashes get ``_2``, ``_3``, ... in category order. Null is all zeros, and so is
    an unseen category with ``unknown="ignore"``; ``unknown="error"`` raises instead.
    """

    kind: ClassVar[str] = "one_hot_encoder"
    unknown: Literal["ignore", "error"] = "ignore"

    def __post_init__(self) -> None:
        if self.unknown not in ("ignore", "error"):
            raise ValidationError(
                "The 'unknown' parameter must be 'ignore' or 'error'. "
                f"Got {self.unknown!r} instead."
            )

    def output_names(self, column: str, stats: Mapping[str, Any]) -> list[str]:
        return list(_one_hot_names(column, tuple(stats["categories"])))

    def transform(self, values: Values, stats: Mapping[str, Any]) -> list[pa.Array]:
        idx, first_unseen = self._indices(values, stats)
        if first_unseen is not None and self.unknown == "error":
            raise _unseen_error(self.kind, first_unseen, stats["categories"])
        # One scatter into a (categories x rows) int8 matrix instead of one pass per category.
        codes = pc.fill_null(idx, -1).to_numpy()
        rows = np.flatnonzero(codes >= 0)
        matrix = np.zeros((len(stats["categories"]), len(codes)), dtype=np.int8)
        matrix[codes[rows], rows] = 1
        return [pa.array(line) for line in matrix]

    def transform_value(self, value: Any, stats: Mapping[str, Any]) -> list[Any]:
        categories = stats["categories"]
        out = [0] * len(categories)
        if value is None:
            return out
        try:
            out[categories.index(value)] = 1
        except ValueError:
            if self.unknown == "error":
                raise _unseen_error(self.kind, value, categories) from None
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "unknown": self.unknown}


@lru_cache(maxsize=1024)
def _one_hot_names(column: str, categories: tuple[Any, ...]) -> tuple[str, ...]:
    names: list[str] = []
    used: set[str] = set()
    for cat in categories:
        base = re.sub(r"[^A-Za-z0-9_]", "_", f"{column}_{cat}")[:63]
        name, n = base, 1
        while name.lower() in used:
            n += 1
            suffix = f"_{n}"
            name = base[: 63 - len(suffix)] + suffix
        used.add(name.lower())
        names.append(name)
    return tuple(names)


@dataclass(frozen=True)
class LabelEncoder(_Encoder):
    """The index of the value among the sorted train-split categories (int64).

    Null stays null; an unseen category becomes ``unknown_value``.
    """

    kind: ClassVar[str] = "label_encoder"
    unknown_value: int = -1

    def __post_init__(self) -> None:
        if not isinstance(self.unknown_value, int) or isinstance(self.unknown_value, bool):
            raise ValidationError(
                f"The 'unknown_value' parameter must be an int. Got {self.unknown_value!r} instead."
            )

    def transform(self, values: Values, stats: Mapping[str, Any]) -> list[pa.Array]:
        col = _categorical(values, self.kind)
        idx, _ = self._indices(col, stats)
        unseen = pc.and_(pc.is_valid(col), pc.is_null(idx))
        out = pc.if_else(unseen, pa.scalar(self.unknown_value, pa.int64()), idx.cast(pa.int64()))
        return [_as_array(out)]

    def transform_value(self, value: Any, stats: Mapping[str, Any]) -> list[Any]:
        if value is None:
            return [None]
        try:
            return [stats["categories"].index(value)]
        except ValueError:
            return [self.unknown_value]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "unknown_value": self.unknown_value}


KINDS: dict[str, type[Transformation]] = {
    cls.kind: cls
    for cls in (
        StandardScaler,
        MinMaxScaler,
        RobustScaler,
        LogTransform,
        ImputeMean,
        ImputeConstant,
        OneHotEncoder,
        LabelEncoder,
    )
}
