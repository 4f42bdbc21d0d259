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
from collections.abc import Callable
from typing import Any, overload

from fti.pipelines.function import KINDS, STORE_PARAMETER, PipelineFunction
from fti.pipelines.runner import call_directly

__all__ = [
    "KINDS",
    "STORE_PARAMETER",
    "Pipeline",
    "feature_pipeline",
    "inference_pipeline",
    "training_pipeline",
]


class Pipeline(PipelineFunction):
    """A marked pipeline function: its kind, name, signature and resolved type hints. Calling
    it with a feature store records a run, like ``fti run``."""

    def __init__(self, fn: Callable[..., Any], *, kind: str, name: str | None = None) -> None:
        super().__init__(fn, kind=kind, name=name)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return call_directly(self, args, kwargs)


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
