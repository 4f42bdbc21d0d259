"""Run a pipeline: parse and check its parameters, inject the store and the time window, record
the run with its lineage.

>>> run = fti.run_pipeline(weather, fs=fs, params={"days": "7"})            # doctest: +SKIP
>>> run.status, run.outputs                                                 # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import traceback
import types
import typing
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from fti._internal import lineage_events
from fti.errors import ValidationError
from fti.pipelines.function import STORE_PARAMETER, PipelineFunction
from fti.pipelines.runs import PipelineRun, finish_run, jsonable, start_run
from fti.store import FeatureStore, connect, context_of

__all__ = [
    "StepOutcome",
    "bind",
    "call_directly",
    "execute",
    "parse_datetime",
    "parse_value",
    "run_pipeline",
]

_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}
SUPPORTED = "int, float, str, bool, datetime (ISO 8601 with timezone), date, list[str], Path"
WINDOW = ("start", "end")


def parse_datetime(text: str, *, what: str = "value") -> datetime:
    """ISO 8601 with a timezone (``Z`` or ``+00:00``); a naive time is rejected."""
    try:
        value = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"{what}={text!r} is not an ISO 8601 date-time. Use e.g. 2013-01-01T00:00:00Z."
        ) from None
    if value.tzinfo is None:
        raise ValidationError(
            f"{what}={text!r} has no timezone. Add one, e.g. {text}Z or {text}+00:00."
        )
    return value


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


def parse_value(text: str, annotation: Any, *, name: str = "value") -> Any:
    """Parse a command-line string by the parameter's type hint."""
    inner, optional = _unwrap_optional(annotation)
    if optional and text.strip().lower() in ("none", "null"):
        return None
    origin = typing.get_origin(inner)
    try:
        if inner is str:
            return text
        if inner is bool:
            low = text.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(text)
        if inner is int:
            return int(text)
        if inner is float:
            return float(text)
        if inner is datetime:
            return parse_datetime(text, what=name)
        if inner is date:
            return date.fromisoformat(text.strip())
        if inner is Path:
            return Path(text)
        if origin is list and typing.get_args(inner) in ((str,), ()):
            return [part.strip() for part in text.split(",") if part.strip()]
    except ValidationError:
        raise
    except ValueError:
        raise ValidationError(
            f"Parameter {name!r} expects {_type_name(annotation)}; got {text!r}. "
            f"Pass e.g. {_example(inner)}."
        ) from None
    raise ValidationError(
        f"Parameter {name!r} has type {_type_name(annotation)}, which cannot be given as text. "
        f"Supported types: {SUPPORTED}. Pass it from Python instead, or change its type."
    )


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _example(annotation: Any) -> str:
    return {
        int: f"{_type_name(annotation)}=3",
        float: "0.5",
        bool: "true",
        datetime: "2013-01-01T00:00:00Z",
        date: "2013-01-01",
    }.get(annotation, "a,b,c")


def _coerce(value: Any, annotation: Any, name: str) -> Any:
    if isinstance(value, str) and _unwrap_optional(annotation)[0] is not str:
        return parse_value(value, annotation, name=name)
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValidationError(
            f"Parameter {name!r}={value!r} is a naive datetime. Make it timezone-aware, e.g. "
            "value.replace(tzinfo=timezone.utc)."
        )
    return value


def bind(
    pipeline: PipelineFunction,
    fs: FeatureStore | None,
    params: dict[str, Any] | None = None,
    *,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
) -> dict[str, Any]:
    """Keyword arguments for the function: checked, parsed by type hints, store injected."""
    params = dict(params or {})
    declared = pipeline.signature.parameters
    for key, value in (("start", start), ("end", end)):
        if value is None:
            continue
        if key not in declared:
            raise ValidationError(
                f"Pipeline {pipeline.name!r} has no '{key}' parameter, so it cannot take a time "
                f"window. Its parameters: {pipeline.parameters}. Add 'start: datetime, end: "
                "datetime' to the function or drop --start/--end."
            )
        if key in params:
            raise ValidationError(f"'{key}' was given twice (as a parameter and as {key}=).")
        params[key] = value
    unknown = sorted(k for k in params if k not in declared or k == STORE_PARAMETER)
    if unknown:
        raise ValidationError(
            f"Unknown parameter(s) {unknown} for pipeline {pipeline.name!r}. "
            f"It takes: {pipeline.parameters or 'no parameters'}."
        )
    kwargs: dict[str, Any] = {}
    for name, p in declared.items():
        if name == STORE_PARAMETER:
            kwargs[name] = fs if fs is not None else connect()
        elif name in params:
            kwargs[name] = _coerce(params[name], pipeline.hints[name], name)
        elif p.default is not inspect.Parameter.empty:
            kwargs[name] = p.default  # recorded too: the run says what it really used
        else:
            missing = [
                n
                for n, q in declared.items()
                if n != STORE_PARAMETER and n not in params and q.default is inspect.Parameter.empty
            ]
            flags = " ".join(f"--{n} ISO" if n in WINDOW else f"--param {n}=..." for n in missing)
            raise ValidationError(
                f"Pipeline {pipeline.name!r} needs parameter(s) {missing}. Give them, e.g. {flags}."
            )
    s, e = kwargs.get("start"), kwargs.get("end")
    if isinstance(s, datetime) and isinstance(e, datetime) and not s < e:
        raise ValidationError(
            f"The window start {s.isoformat()} must be before end {e.isoformat()}."
        )
    return kwargs


@dataclass
class StepOutcome:
    """What one function call did."""

    status: str
    error: str | None
    traceback: str | None
    exception: BaseException | None
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    result: Any
    started_at: datetime
    ended_at: datetime


def execute(pipeline: PipelineFunction, kwargs: dict[str, Any]) -> StepOutcome:
    """Call the function while collecting the lineage events it reports; never raises."""
    started = datetime.now(UTC)
    with lineage_events.recording() as rec:
        try:
            result = pipeline.fn(**kwargs)
        except Exception as e:
            tb = "".join(traceback.format_exception(e)[-12:])
            return StepOutcome(
                "failed", f"{type(e).__name__}: {e}", tb, e, rec.inputs, rec.outputs, None,
                started, datetime.now(UTC),
            )  # fmt: skip
    return StepOutcome(
        "succeeded", None, None, None, rec.inputs, rec.outputs, result, started, datetime.now(UTC)
    )


def _recorded_parameters(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: jsonable(v) for k, v in kwargs.items() if k != STORE_PARAMETER}


def _source(pipeline: PipelineFunction) -> str | None:
    try:
        return inspect.getsourcefile(pipeline.fn)
    except TypeError:
        return None


def run_pipeline(
    pipeline: PipelineFunction,
    *,
    fs: FeatureStore | None = None,
    params: dict[str, Any] | None = None,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    extra: dict[str, Any] | None = None,
    raise_on_error: bool = True,
) -> PipelineRun:
    """Run ``pipeline`` once and record the run. String parameters are parsed by type hint.

    If the function raises, the run is recorded as failed and the exception re-raised
    (``raise_on_error=False`` returns the failed run instead).

    >>> run = fti.run_pipeline(weather, fs=fs, start="2013-01-01T00:00:00Z",
    ...                        end="2013-01-02T00:00:00Z")                  # doctest: +SKIP
    """
    if not isinstance(pipeline, PipelineFunction):
        raise ValidationError(
            f"{pipeline!r} is not a pipeline. Mark the function with @fti.feature_pipeline, "
            "@fti.training_pipeline or @fti.inference_pipeline."
        )
    fs = fs if fs is not None else connect()
    kwargs = bind(pipeline, fs, params, start=start, end=end)
    ctx = context_of(fs)
    record = start_run(
        ctx,
        kind=pipeline.kind,
        pipeline=pipeline.name,
        function=pipeline.function_ref,
        parameters=_recorded_parameters(kwargs),
        source=_source(pipeline),
        extra=extra,
    )
    outcome = execute(pipeline, kwargs)
    record = finish_run(
        ctx,
        record,
        status=outcome.status,
        error=outcome.error,
        inputs=outcome.inputs,
        outputs=outcome.outputs,
        extra={"traceback": outcome.traceback} if outcome.traceback else None,
    )
    run = PipelineRun.from_body(record.body, result=outcome.result)
    if outcome.exception is not None and raise_on_error:
        _annotate(outcome.exception, run.id)
        raise outcome.exception
    return run


def _annotate(exc: BaseException, run_id: str) -> None:
    exc.add_note(f"(recorded as failed run {run_id}; see 'fti runs show {run_id}')")


def call_directly(pipeline: PipelineFunction, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A plain call of a decorated function: recorded as a run when given a feature store and
    no run is already active (inside a run it is just a call; its lineage joins that run)."""
    if lineage_events.active() is not None:
        return pipeline.fn(*args, **kwargs)
    try:
        bound = pipeline.signature.bind(*args, **kwargs)
    except TypeError as e:
        raise ValidationError(f"Bad arguments for pipeline {pipeline.name!r}: {e}.") from None
    fs = bound.arguments.get(STORE_PARAMETER)
    if not isinstance(fs, FeatureStore):
        return pipeline.fn(*args, **kwargs)
    params = {k: v for k, v in bound.arguments.items() if k != STORE_PARAMETER}
    return run_pipeline(pipeline, fs=fs, params=params).result
