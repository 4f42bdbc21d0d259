"""On-demand features: functions of request parameters and stored features.

An on-demand feature is a plain Python function decorated with :func:`on_demand`. It declares
the stored features it reads (``inputs``), the request parameters it needs (``request``) and the
dtype of its result. The *same* function computes the feature when training data is built
(:func:`compute_on_demand`, applied row by row over the table, where request parameters are
columns with the same names) and at request time (:func:`compute_on_demand_row`). Results are
converted to the declared dtype identically in both paths.

Like custom transformations, the function is stored by reference (``"module:qualname"``) and
imported again when a feature view is read; it is never pickled. Features are computed in the
order given, so a later one may use an earlier one as an input.

>>> @on_demand(inputs=["distance"], request=["hours"], dtype="float64")
... def speed(distance, hours):
...     return None if distance is None or not hours else distance / hours
>>> compute_on_demand_row([speed], {"distance": 100.0}, {"hours": 2})
{'distance': 100.0, 'speed': 50.0}
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from fti._internal.names import check_identifier, check_unique
from fti.definitions.fields import arrow_type
from fti.definitions.transformations import (
    cast_value,
    check_storable,
    reference_of,
    resolve_reference,
)
from fti.errors import ValidationError

__all__ = [
    "OnDemandFeature",
    "compute_on_demand",
    "compute_on_demand_row",
    "on_demand",
    "on_demand_from_dict",
]


@dataclass(frozen=True)
class OnDemandFeature:
    """A feature computed from stored features (``inputs``) and request parameters (``request``).

    Made by :func:`on_demand`; calling it calls the function.
    """

    name: str
    inputs: tuple[str, ...]
    request: tuple[str, ...]
    dtype: str
    fn: Callable[..., Any]

    def __post_init__(self) -> None:
        check_identifier(self.name, what="on-demand feature")
        for c in self.inputs:
            check_identifier(c, what="on-demand input")
        for c in self.request:
            check_identifier(c, what="request parameter")
        check_unique([*self.inputs, *self.request], what="on-demand argument")
        if self.name in (*self.inputs, *self.request):
            raise ValidationError(
                f"On-demand feature {self.name!r} reads a column of its own name; give the "
                "feature another name with @on_demand(..., name='...')."
            )
        arrow_type(self.dtype)
        if not callable(self.fn):
            raise ValidationError(f"An on-demand feature needs a function; got {self.fn!r}.")
        self._check_signature()

    def _check_signature(self) -> None:
        try:
            params = inspect.signature(self.fn).parameters
        except (TypeError, ValueError):
            return  # builtins without a signature: checked when called
        takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        names = [*self.inputs, *self.request]
        missing = [n for n in names if n not in params and not takes_kwargs]
        if missing:
            raise ValidationError(
                f"On-demand feature {self.name!r}: the function has no parameter(s) {missing}. "
                f"It is called with keyword arguments {names}; rename its parameters to match."
            )
        required = [
            p.name
            for p in params.values()
            if p.default is inspect.Parameter.empty
            and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
            and p.name not in names
        ]
        if required:
            raise ValidationError(
                f"On-demand feature {self.name!r}: the function requires {required}, which are "
                "neither inputs nor request parameters. Declare them in inputs=[...] or "
                "request=[...], or give them defaults."
            )

    @property
    def ref(self) -> str:
        """The stored reference, ``"module:qualname"``."""
        return reference_of(self.fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def compute(self, arguments: Mapping[str, Any]) -> Any:
        """Call the function with its keyword arguments and convert the result to ``dtype``."""
        try:
            result = self.fn(**arguments)
        except ValidationError:
            raise
        except Exception as e:
            raise ValidationError(
                f"On-demand feature {self.name!r} ({self.ref}) raised {type(e).__name__}: {e} "
                f"for the arguments {dict(arguments)!r}. Make the function handle these values "
                "(e.g. None)."
            ) from e
        try:
            return cast_value(result, self.dtype)
        except ValidationError as e:
            raise ValidationError(f"On-demand feature {self.name!r}: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable definition; :func:`on_demand_from_dict` reads it back."""
        check_storable(self.ref, "on-demand feature")
        return {
            "name": self.name,
            "inputs": list(self.inputs),
            "request": list(self.request),
            "dtype": self.dtype,
            "ref": self.ref,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OnDemandFeature:
        """Import the function again by reference and check it still has this declaration."""
        ref = str(d.get("ref", ""))
        obj = resolve_reference(ref, what="on-demand feature")
        if not isinstance(obj, OnDemandFeature):
            raise ValidationError(
                f"{ref!r} is a {type(obj).__name__}, not an on-demand feature. Decorate the "
                "function with @fti.on_demand(...)."
            )
        stored = {k: d.get(k) for k in ("name", "inputs", "request", "dtype", "ref")}
        if obj.to_dict() != stored:
            raise ValidationError(
                f"The on-demand feature {ref!r} changed since it was stored: stored {stored}, "
                f"now {obj.to_dict()}. Restore the old declaration, or create a new version of "
                "the feature view."
            )
        return obj


def on_demand(
    *,
    inputs: Sequence[str] = (),
    request: Sequence[str] = (),
    dtype: str = "float64",
    name: str | None = None,
) -> Callable[[Callable[..., Any]], OnDemandFeature]:
    """Declare an on-demand feature; the function is called with keyword arguments.

    Define it at the top level of an importable module: it is stored as ``"module:qualname"``
    (a script's ``"__main__:name"`` resolves only while that script runs). The feature is named
    after the function unless ``name`` is given.
    """
    if isinstance(inputs, str) or isinstance(request, str):
        raise ValidationError("inputs and request take lists of names, e.g. inputs=['distance'].")

    def wrap(fn: Callable[..., Any]) -> OnDemandFeature:
        return OnDemandFeature(
            name=name if name is not None else getattr(fn, "__name__", ""),
            inputs=tuple(inputs),
            request=tuple(request),
            dtype=dtype,
            fn=fn,
        )

    return wrap


def on_demand_from_dict(d: Mapping[str, Any]) -> OnDemandFeature:
    """Alias of :meth:`OnDemandFeature.from_dict`."""
    return OnDemandFeature.from_dict(d)


def _check_features(features: Sequence[OnDemandFeature]) -> None:
    for f in features:
        if not isinstance(f, OnDemandFeature):
            raise ValidationError(
                f"Expected on-demand features made with @fti.on_demand(...); got {f!r}."
            )
    check_unique([f.name for f in features], what="on-demand feature")


def compute_on_demand(features: Sequence[OnDemandFeature], table: pa.Table) -> pa.Table:
    """Append one column per on-demand feature, computed row by row with the same function.

    ``table`` holds the stored features and the request parameters as columns of the same name
    (in training data: the spine's columns). An unknown column raises a ValidationError naming it.
    """
    _check_features(features)
    for f in features:
        have = table.column_names
        missing = [c for c in (*f.inputs, *f.request) if c not in have]
        if missing:
            raise ValidationError(
                f"On-demand feature {f.name!r} needs column(s) {missing}, which are not in the "
                f"data. Available columns: {have}. Select the feature(s), or pass the request "
                "parameters as columns of the spine."
            )
        if f.name in have:
            raise ValidationError(
                f"On-demand feature {f.name!r} clashes with an existing column of that name. "
                "Rename the feature with @on_demand(..., name='...')."
            )
        names = [*f.inputs, *f.request]
        columns = [table.column(c).to_pylist() for c in names]
        rows = zip(*columns, strict=True) if names else ((),) * table.num_rows
        values = [f.compute(dict(zip(names, args, strict=True))) for args in rows]
        table = table.append_column(f.name, pa.array(values, type=arrow_type(f.dtype)))
    return table


def compute_on_demand_row(
    features: Sequence[OnDemandFeature], row: Mapping[str, Any], request: Mapping[str, Any]
) -> dict[str, Any]:
    """The online form: ``row`` (stored features) plus the computed features, in order.

    Request parameters come from ``request``; a missing one raises a ValidationError naming it.
    """
    _check_features(features)
    out = dict(row)
    for f in features:
        missing_inputs = [c for c in f.inputs if c not in out]
        missing_request = [c for c in f.request if c not in request]
        if missing_inputs or missing_request:
            parts = []
            if missing_inputs:
                parts.append(f"feature(s) {missing_inputs} (have {list(out)})")
            if missing_request:
                parts.append(f"request parameter(s) {missing_request} (got {list(request)})")
            raise ValidationError(
                f"On-demand feature {f.name!r} is missing {' and '.join(parts)}. Pass them with "
                "the request."
            )
        args = {c: out[c] for c in f.inputs}
        args.update({c: request[c] for c in f.request})
        out[f.name] = f.compute(args)
    return out
