"""Model-dependent transformations: scalers, encoders, imputers and custom ones.

A transformation is a frozen, JSON-serialisable definition. ``fit`` computes its statistics from
the values the caller passes (the train split, never more), and the same statistics drive two
paths that return the same numbers: ``transform`` (vectorised over an Arrow column, for training
and batch data) and ``transform_value`` (one value, for online feature vectors). Both paths use
the same formula in the same order, and the batch path uses ``pyarrow.compute`` kernels that give
the same IEEE results as Python's ``float`` arithmetic and ``math.log1p``.

Null and NaN handling (the same in both paths):

- statistics ignore nulls, NaN and ±inf (they are finite, strict JSON); ``std`` is the
  population standard deviation;
- scalers and ``log_transform`` keep null as null and NaN as NaN; ``impute_*`` fill both;
- ``label_encoder`` keeps null as null, ``one_hot_encoder`` turns it into all zeros; a category
  not seen when fitting becomes ``unknown_value`` / all zeros, or raises a ValidationError naming
  the value and the column when the one-hot encoder was declared with ``unknown="error"``;
- ``log_transform`` computes ``log1p``; a negative input raises a ValidationError by default
  (``negative="error"``) or becomes null with ``negative="null"``.

Custom transformations are plain functions ``(value, stats) -> value`` decorated with
:func:`transformation`; they are stored by reference (``"module:qualname"``) and imported again
when read, never pickled.

>>> t = standard_scaler()
>>> fitted = fit_transformations({"x": t}, pa.table({"x": [1.0, 3.0]}))
>>> fitted
{'x': {'mean': 2.0, 'std': 1.0}}
>>> apply_transformations_row({"x": t}, fitted, {"x": 4.0, "y": "a"})
{'x': 2.0, 'y': 'a'}
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, overload

import pyarrow as pa

from fti._internal.names import check_identifier, check_unique
from fti.definitions.builtin_transformations import (
    KINDS,
    STATISTICS,
    ImputeConstant,
    ImputeMean,
    LabelEncoder,
    LogTransform,
    MinMaxScaler,
    OneHotEncoder,
    RobustScaler,
    StandardScaler,
    Transformation,
    Values,
    cast_value,
    compute_statistics,
)
from fti.definitions.fields import arrow_type
from fti.errors import NotFoundError, ValidationError

__all__ = [
    "STATISTICS",
    "CustomTransformation",
    "ImputeConstant",
    "ImputeMean",
    "LabelEncoder",
    "LogTransform",
    "MinMaxScaler",
    "OneHotEncoder",
    "RobustScaler",
    "StandardScaler",
    "Transformation",
    "apply_transformations",
    "apply_transformations_row",
    "cast_value",
    "compute_statistics",
    "fit_transformations",
    "impute_constant",
    "impute_mean",
    "label_encoder",
    "log_transform",
    "min_max_scaler",
    "one_hot_encoder",
    "reference_of",
    "resolve_reference",
    "robust_scaler",
    "standard_scaler",
    "transformation",
    "transformation_from_dict",
    "transformations_from_dict",
    "transformations_to_dict",
    "validate_transformations",
]


# --------------------------------------------------------------------------- factories
def standard_scaler() -> Transformation:
    """``(x - mean) / std``, fitted on the train split.

    >>> standard_scaler().transform_value(3.0, {"mean": 1.0, "std": 2.0})
    [1.0]
    """
    return StandardScaler()


def min_max_scaler() -> Transformation:
    """``(x - min) / (max - min)``, fitted on the train split."""
    return MinMaxScaler()


def robust_scaler() -> Transformation:
    """``(x - median) / IQR``, fitted on the train split."""
    return RobustScaler()


def log_transform(*, negative: Literal["error", "null"] = "error") -> Transformation:
    """``log1p(x)``; a negative value raises (or is null with ``negative="null"``)."""
    return LogTransform(negative=negative)


def impute_mean() -> Transformation:
    """Fill null and NaN with the train split's mean."""
    return ImputeMean()


def impute_constant(value: bool | int | float | str) -> Transformation:
    """Fill null (and NaN) with ``value``.

    >>> impute_constant(0).transform_value(None, {})
    [0]
    """
    return ImputeConstant(value=value)


def one_hot_encoder(*, unknown: Literal["ignore", "error"] = "ignore") -> Transformation:
    """One 0/1 column per train-split category; unseen categories are all zeros (or an error)."""
    return OneHotEncoder(unknown=unknown)


def label_encoder(*, unknown_value: int = -1) -> Transformation:
    """The category's index among the sorted train-split categories; unseen -> ``unknown_value``."""
    return LabelEncoder(unknown_value=unknown_value)


# --------------------------------------------------------------------------- references
def reference_of(fn: Callable[..., Any]) -> str:
    """``"module:qualname"`` of a function (importable only if defined at module level)."""
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


def check_storable(ref: str, what: str) -> None:
    """Raise unless ``ref`` names a module-level object (the only kind that can be imported)."""
    if "<" in ref:
        raise ValidationError(
            f"The {what} {ref!r} cannot be stored: it is defined inside a function or is a "
            "lambda, so it cannot be imported again when the definition is read. Define it at "
            "the top level of a module."
        )


def resolve_reference(ref: str, *, what: str = "function") -> Any:
    """Import the object named by ``"module:qualname"``; a NotFoundError says why it failed."""
    module_name, sep, qualname = ref.partition(":")
    if not sep or not module_name or not qualname:
        raise ValidationError(f"Invalid {what} reference {ref!r}: expected 'module:qualname'.")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise NotFoundError(
            f"The {what} {ref!r} cannot be imported: {e}. Make the module importable where this "
            "definition is read (install the package or put it on PYTHONPATH), under the same "
            "name it had when the definition was stored."
        ) from e
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise NotFoundError(
                f"The {what} {ref!r} cannot be imported: module {module_name!r} has no attribute "
                f"{qualname!r}. It was renamed or removed since the definition was stored; "
                "restore it, or create a new version of the definition."
            ) from None
    return obj


def _to_column(values: list[Any], dtype: str, what: str) -> pa.Array:
    try:
        return pa.array(values, type=arrow_type(dtype))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError) as e:
        raise ValidationError(
            f"{what} returned a value that does not convert to its declared dtype {dtype!r} "
            f"({e}). Return {dtype} values (or None), or declare another dtype."
        ) from None


# --------------------------------------------------------------------------- custom
@dataclass(frozen=True)
class CustomTransformation(Transformation):
    """A user function ``fn(value, stats) -> value`` applied element-wise.

    Made by :func:`transformation`. ``statistics`` (from :data:`STATISTICS`) are fitted on the
    train split and passed to ``fn`` as a dict. With ``skip_nulls`` (default) a null input gives
    a null output without calling ``fn``. The result is converted to ``dtype``.
    """

    kind: ClassVar[str] = "custom"
    fn: Callable[[Any, Mapping[str, Any]], Any]
    statistics: tuple[str, ...] = ()
    dtype: str = "float64"
    skip_nulls: bool = True

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise ValidationError(f"A custom transformation needs a function; got {self.fn!r}.")
        unknown = [s for s in self.statistics if s not in STATISTICS]
        if unknown:
            raise ValidationError(
                f"Unknown statistic(s) {unknown} in @transformation for {self.ref!r}. "
                f"Known statistics: {list(STATISTICS)}."
            )
        arrow_type(self.dtype)

    @property
    def ref(self) -> str:
        """The stored reference, ``"module:qualname"``."""
        return reference_of(self.fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``t()`` returns ``t`` (like the built-in factories); ``t(value, stats)`` runs ``fn``."""
        if not args and not kwargs:
            return self
        return self.fn(*args, **kwargs)

    def fit(self, values: Values) -> dict[str, Any]:
        return compute_statistics(values, self.statistics) if self.statistics else {}

    def _call(self, value: Any, stats: Mapping[str, Any]) -> Any:
        if value is None and self.skip_nulls:
            return None
        try:
            return self.fn(value, stats)
        except ValidationError:
            raise
        except Exception as e:
            # A user function's bug surfaces as a readable error naming it and the value.
            raise ValidationError(
                f"The transformation {self.ref!r} raised {type(e).__name__}: {e} for the value "
                f"{value!r}. Make the function handle this value"
                + (" (None reaches it because skip_nulls=False)." if value is None else ".")
            ) from e

    def transform(self, values: Values, stats: Mapping[str, Any]) -> list[pa.Array]:
        out = [self._call(v, stats) for v in values.to_pylist()]
        return [_to_column(out, self.dtype, f"The transformation {self.ref!r}")]

    def transform_value(self, value: Any, stats: Mapping[str, Any]) -> list[Any]:
        return [cast_value(self._call(value, stats), self.dtype)]

    def to_dict(self) -> dict[str, Any]:
        check_storable(self.ref, "transformation")
        return {
            "kind": self.kind,
            "ref": self.ref,
            "statistics": list(self.statistics),
            "dtype": self.dtype,
            "skip_nulls": self.skip_nulls,
        }


TransformFn = Callable[[Any, Mapping[str, Any]], Any]


@overload
def transformation(fn: TransformFn, /) -> CustomTransformation: ...
@overload
def transformation(
    *, statistics: Sequence[str] = (), dtype: str = "float64", skip_nulls: bool = True
) -> Callable[[TransformFn], CustomTransformation]: ...
def transformation(
    fn: TransformFn | None = None,
    /,
    *,
    statistics: Sequence[str] = (),
    dtype: str = "float64",
    skip_nulls: bool = True,
) -> CustomTransformation | Callable[[TransformFn], CustomTransformation]:
    """Declare a custom model-dependent transformation and the statistics it needs.

    Define it at the top level of a module: it is stored as ``"module:qualname"`` and imported
    again when a feature view or training dataset is read. A function in a script run directly
    is stored as ``"__main__:name"`` and resolves only while that script is the program; put it
    in an importable module for serving and scheduled pipelines.

    >>> @transformation(statistics=["mean", "std"])
    ... def clipped_z(value, stats):
    ...     return max(-3.0, min(3.0, (value - stats["mean"]) / (stats["std"] or 1.0)))
    >>> clipped_z.transform_value(10.0, {"mean": 0.0, "std": 1.0})
    [3.0]
    """

    def wrap(f: TransformFn) -> CustomTransformation:
        return CustomTransformation(
            fn=f, statistics=tuple(statistics), dtype=dtype, skip_nulls=skip_nulls
        )

    return wrap if fn is None else wrap(fn)


# --------------------------------------------------------------------------- (de)serialising
def transformation_from_dict(d: Mapping[str, Any]) -> Transformation:
    """Rebuild a transformation from :meth:`Transformation.to_dict` output."""
    kind = d.get("kind")
    params = {k: v for k, v in d.items() if k != "kind"}
    if kind == CustomTransformation.kind:
        ref = str(params.get("ref", ""))
        obj = resolve_reference(ref, what="transformation")
        if not isinstance(obj, CustomTransformation):
            raise ValidationError(
                f"{ref!r} is a {type(obj).__name__}, not a transformation. Decorate the function "
                "with @fti.transformation(...)."
            )
        if obj.to_dict() != dict(d):
            raise ValidationError(
                f"The transformation {ref!r} changed since it was stored: stored {dict(d)}, now "
                f"{obj.to_dict()}. Restore the old declaration, or create a new version of the "
                "feature view."
            )
        return obj
    cls = KINDS.get(str(kind))
    if cls is None:
        known = [*sorted(KINDS), CustomTransformation.kind]
        raise ValidationError(f"Unknown transformation kind {kind!r}. Known kinds: {known}.")
    try:
        return cls(**params)
    except TypeError as e:
        raise ValidationError(f"Invalid parameters for {kind}: {params} ({e}).") from None


def validate_transformations(
    transformations: Mapping[str, Any] | None,
) -> dict[str, Transformation]:
    """Check a ``{column: transformation}`` mapping; the error names the bad entry."""
    out: dict[str, Transformation] = {}
    for column, t in (transformations or {}).items():
        check_identifier(column, what="transformed column")
        if not isinstance(t, Transformation):
            hint = (
                f" Call it: {t.__name__}()."
                if callable(t) and getattr(t, "__module__", "").startswith("fti.")
                else ""
            )
            raise ValidationError(
                f"The transformation for column {column!r} must be an fti transformation such as "
                f"fti.standard_scaler(); got {t!r}.{hint}"
            )
        out[column] = t
    return out


def transformations_to_dict(transformations: Mapping[str, Transformation]) -> dict[str, Any]:
    """``{column: t.to_dict()}``, JSON-serialisable."""
    return {c: t.to_dict() for c, t in validate_transformations(transformations).items()}


def transformations_from_dict(d: Mapping[str, Mapping[str, Any]]) -> dict[str, Transformation]:
    """Inverse of :func:`transformations_to_dict`."""
    return {c: transformation_from_dict(v) for c, v in d.items()}


# --------------------------------------------------------------------------- whole sets
def _missing(transformations: Mapping[str, Transformation], have: Sequence[str], what: str) -> None:
    missing = [c for c in transformations if c not in have]
    if missing:
        raise ValidationError(
            f"Transformed column(s) {missing} are not in the {what}. Available columns: "
            f"{list(have)}. Remove the transformation or select the column."
        )


def _in_column(column: str, t: Transformation, e: ValidationError) -> ValidationError:
    err = ValidationError(f"Column {column!r} ({t.kind}): {e}")
    err.__cause__ = e
    return err


def fit_transformations(
    transformations: Mapping[str, Transformation], train: pa.Table
) -> dict[str, dict[str, Any]]:
    """Fit every transformation on its column of ``train`` (the train split only).

    Returns ``{column: statistics}``, JSON-serialisable; store it with the training dataset.
    """
    ts = validate_transformations(transformations)
    _missing(ts, train.column_names, "train split")
    fitted: dict[str, dict[str, Any]] = {}
    for column, t in ts.items():
        try:
            fitted[column] = t.fit(train.column(column))
        except ValidationError as e:
            raise _in_column(column, t, e) from e
    return fitted


def _stats(fitted: Mapping[str, Mapping[str, Any]], column: str) -> Mapping[str, Any]:
    try:
        return fitted[column]
    except KeyError:
        raise ValidationError(
            f"No fitted statistics for column {column!r}. Fit the transformations with "
            "fit_transformations on the train split first."
        ) from None


def apply_transformations(
    transformations: Mapping[str, Transformation],
    fitted: Mapping[str, Mapping[str, Any]],
    table: pa.Table,
) -> pa.Table:
    """Replace (or expand, for one-hot) each transformed column in place; others are untouched."""
    _missing(transformations, table.column_names, "data")
    names: list[str] = []
    columns: list[pa.Array | pa.ChunkedArray] = []
    for name, col in zip(table.column_names, table.columns, strict=True):
        t = transformations.get(name)
        if t is None:
            names.append(name)
            columns.append(col)
            continue
        stats = _stats(fitted, name)
        try:
            outputs = t.transform(col, stats)
        except ValidationError as e:
            raise _in_column(name, t, e) from e
        names.extend(t.output_names(name, stats))
        columns.extend(outputs)
    check_unique(names, what="output column")
    if not names:  # e.g. one-hot of a column with no categories: keep the row count
        return table.select([])
    return pa.Table.from_arrays(columns, names=names)


def apply_transformations_row(
    transformations: Mapping[str, Transformation],
    fitted: Mapping[str, Mapping[str, Any]],
    row: Mapping[str, Any],
) -> dict[str, Any]:
    """The one-row (online) form of :func:`apply_transformations`: same numbers, same order."""
    _missing(transformations, list(row), "row")
    out: dict[str, Any] = {}
    for name, value in row.items():
        t = transformations.get(name)
        if t is None:
            out[name] = value
            continue
        stats = _stats(fitted, name)
        try:
            values = t.transform_value(value, stats)
        except ValidationError as e:
            raise _in_column(name, t, e) from e
        out.update(zip(t.output_names(name, stats), values, strict=True))
    return out
