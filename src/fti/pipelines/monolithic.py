"""A monolithic pipeline: a feature pipeline followed by a training or a batch inference pipeline
in one process, recorded as one run with two steps.

>>> run = fti.run_monolithic(weather, train, fs=fs, params={"days": "30"})  # doctest: +SKIP
>>> [s["pipeline"] for s in run.steps]                                     # doctest: +SKIP
['weather', 'train']
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fti.errors import ValidationError
from fti.pipelines.decorators import STORE_PARAMETER, Pipeline
from fti.pipelines.runner import bind, execute
from fti.pipelines.runs import PipelineRun, finish_run, jsonable, start_run
from fti.store import FeatureStore, connect, context_of

__all__ = ["run_monolithic"]


def _split(
    steps: tuple[Pipeline, Pipeline], params: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Give each step the parameters it declares; a parameter neither declares is an error."""
    unknown = sorted(k for k in params if not any(k in p.parameters for p in steps))
    if unknown:
        raise ValidationError(
            f"Unknown parameter(s) {unknown} for the monolithic run {steps[0].name!r} -> "
            f"{steps[1].name!r}. The steps take: {steps[0].name}: {steps[0].parameters}, "
            f"{steps[1].name}: {steps[1].parameters}."
        )
    first, second = ({k: v for k, v in params.items() if k in p.parameters} for p in steps)
    return first, second


def run_monolithic(
    feature: Pipeline,
    then: Pipeline,
    *,
    fs: FeatureStore | None = None,
    params: dict[str, Any] | None = None,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    raise_on_error: bool = True,
) -> PipelineRun:
    """Run ``feature`` then ``then`` (a training or inference pipeline) as one recorded run.

    Each parameter goes to the step(s) that declare it; ``start``/``end`` likewise. If the
    feature step fails, the second step is skipped and the run is recorded as failed.
    """
    for p in (feature, then):
        if not isinstance(p, Pipeline):
            raise ValidationError(
                f"{p!r} is not a pipeline. Mark it with @fti.feature_pipeline, "
                "@fti.training_pipeline or @fti.inference_pipeline."
            )
    if feature.kind != "feature" or then.kind not in ("training", "inference"):
        raise ValidationError(
            "A monolithic run is a feature pipeline followed by a training or an inference "
            f"pipeline; got {feature.kind} pipeline {feature.name!r} then {then.kind} pipeline "
            f"{then.name!r}."
        )
    if start is not None or end is not None:
        takers = [p for p in (feature, then) if "start" in p.parameters or "end" in p.parameters]
        if not takers:
            # Let bind() produce its message about the missing window parameters.
            bind(feature, fs, {}, start=start, end=end)
    fs = fs if fs is not None else connect()
    first_params, second_params = _split((feature, then), dict(params or {}))

    def window(p: Pipeline) -> dict[str, Any]:
        return {
            "start": start if "start" in p.parameters else None,
            "end": end if "end" in p.parameters else None,
        }

    kwargs = [
        bind(feature, fs, first_params, **window(feature)),
        bind(then, fs, second_params, **window(then)),
    ]
    ctx = context_of(fs)
    recorded = {k: jsonable(v) for kw in kwargs for k, v in kw.items() if k != STORE_PARAMETER}
    record = start_run(
        ctx,
        kind="monolithic",
        pipeline=f"{feature.name}+{then.name}",
        function=f"{feature.function_ref} {then.function_ref}",
        parameters=recorded,
        source=_first_source(feature),
        extra={"second_kind": then.kind},
    )
    steps: list[dict[str, Any]] = []
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    failure = None
    failed_step = 0
    result = None
    for number, (pipeline, kw) in enumerate(zip((feature, then), kwargs, strict=True), start=1):
        step: dict[str, Any] = {
            "step": number,
            "kind": pipeline.kind,
            "pipeline": pipeline.name,
            "function": pipeline.function_ref,
            "parameters": {k: jsonable(v) for k, v in kw.items() if k != STORE_PARAMETER},
        }
        if failure is not None:
            steps.append({**step, "status": "skipped"})
            continue
        outcome = execute(pipeline, kw)
        step.update(
            status=outcome.status,
            error=outcome.error,
            started_at=outcome.started_at.isoformat(),
            ended_at=outcome.ended_at.isoformat(),
            inputs=outcome.inputs,
            outputs=outcome.outputs,
        )
        steps.append(step)
        inputs += [i for i in outcome.inputs if i not in inputs]
        outputs += [o for o in outcome.outputs if o not in outputs]
        if outcome.exception is not None:
            failure, failed_step = outcome, number
        result = outcome.result
    record = finish_run(
        ctx,
        record,
        status="failed" if failure else "succeeded",
        error=None
        if failure is None
        else f"step {failed_step} ({steps[failed_step - 1]['pipeline']}): {failure.error}",
        inputs=inputs,
        outputs=outputs,
        steps=steps,
        extra={"traceback": failure.traceback} if failure else None,
    )
    run = PipelineRun.from_body(record.body, result=result)
    if failure is not None and failure.exception is not None and raise_on_error:
        failure.exception.add_note(
            f"(recorded as failed run {run.id}; see 'fti runs show {run.id}')"
        )
        raise failure.exception
    return run


def _first_source(p: Pipeline) -> str | None:
    where = p.function_ref.rpartition(":")[0]
    return where if where.endswith(".py") else None
