"""``@fti.feature_pipeline``, ``@fti.training_pipeline``, ``@fti.inference_pipeline``.

A pipeline is a plain function with type hints. Its parameters are its configuration; a
parameter named ``fs`` receives the feature store, ``start`` / ``end`` receive the time window.
The decorator keeps the function callable as before; a direct call that passes a feature store
is recorded as a run like ``fti run`` would record it.

>>> @fti.feature_pipeline
... def weather(fs: fti.FeatureStore, start: datetime, end: datetime) -> None:
...     ...                                                                 # doctest: +SKIP
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, overload

from fti.errors import ValidationError

__all__ = [
    "KINDS",
    "STORE_PARAMETER",
    "Pipeline",
    "feature_pipeline",
    "inference_pipeline",
    "training_pipeline",
]

KINDS = ("feature", "training", "inference")
STORE_PARAMETER = "fs"


class Pipeline:
    """A marked pipeline function: its kind, name, signature and resolved type hints."""

    def __init__(self, fn: Callable[..., Any], *, kind: str, name: str | None = None) -> None:
        if kind not in KINDS:
            raise ValidationError(f"Unknown pipeline kind {kind!r}; expected one of {KINDS}.")
        self.fn = fn
        self.kind = kind
        self.name = name or fn.__name__
        self.signature = inspect.signature(fn)
        self.hints = _hints(fn, self.signature)
        functools.update_wrapper(self, fn)

    @property
    def function_ref(self) -> str:
        """``"/abs/path/file.py:func"`` (or ``"module:func"`` when there is no file)."""
        try:
            source = inspect.getsourcefile(self.fn)
        except TypeError:
            source = None
        where = str(Path(source).resolve()) if source else self.fn.__module__
        return f"{where}:{self.fn.__qualname__}"

    @property
    def parameters(self) -> list[str]:
        """Names of the configurable parameters (everything except ``fs``)."""
        return [p for p in self.signature.parameters if p != STORE_PARAMETER]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from fti.pipelines.runner import call_directly

        return call_directly(self, args, kwargs)

    def __repr__(self) -> str:
        return f"<{self.kind} pipeline {self.name}{self.signature}>"


def _hints(fn: Callable[..., Any], signature: inspect.Signature) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(fn)
    except NameError as e:
        raise ValidationError(
            f"Cannot resolve the type hints of pipeline {fn.__qualname__!r}: {e}. Import the "
            "types the annotations name at module level."
        ) from None
    missing = []
    for p in signature.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ValidationError(
                f"Pipeline {fn.__qualname__!r} takes *{p.name}; pipelines need named, typed "
                "parameters so that runs can be configured and recorded. Replace it with "
                "explicit parameters."
            )
        if p.name not in hints and p.name != STORE_PARAMETER:
            missing.append(p.name)
    if missing:
        raise ValidationError(
            f"Pipeline {fn.__qualname__!r} has parameters without type hints: {missing}. "
            "Annotate every parameter (e.g. 'day: datetime', 'limit: int = 10') so that "
            "'fti run --param' can parse its value."
        )
    return hints


def _mark(
    kind: str, fn: Callable[..., Any] | None, name: str | None
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    if fn is not None:
        return Pipeline(fn, kind=kind, name=name)
    return lambda f: Pipeline(f, kind=kind, name=name)


@overload
def feature_pipeline(fn: Callable[..., Any], /) -> Pipeline: ...


@overload
def feature_pipeline(*, name: str | None = None) -> Callable[[Callable[..., Any]], Pipeline]: ...


def feature_pipeline(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Mark a typed function as a feature pipeline (raw data -> feature groups).

    Use as ``@fti.feature_pipeline`` or ``@fti.feature_pipeline(name="...")``.
    """
    return _mark("feature", fn, name)


@overload
def training_pipeline(fn: Callable[..., Any], /) -> Pipeline: ...


@overload
def training_pipeline(*, name: str | None = None) -> Callable[[Callable[..., Any]], Pipeline]: ...


def training_pipeline(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Mark a typed function as a training pipeline (trains and registers a model).

    Use as ``@fti.training_pipeline`` or ``@fti.training_pipeline(name="...")``.
    """
    return _mark("training", fn, name)


@overload
def inference_pipeline(fn: Callable[..., Any], /) -> Pipeline: ...


@overload
def inference_pipeline(*, name: str | None = None) -> Callable[[Callable[..., Any]], Pipeline]: ...


def inference_pipeline(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Mark a typed function as an inference pipeline (reads features and a model, predicts).

    Use as ``@fti.inference_pipeline`` or ``@fti.inference_pipeline(name="...")``.
    """
    return _mark("inference", fn, name)
