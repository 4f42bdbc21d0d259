"""What the server serves: a model version, its feature view's vector plan and its log.

``Served`` is an immutable snapshot; ``Runtime.reload`` builds a new one and swaps it in with a
single assignment, so a request in flight finishes with the snapshot it started with.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from fti.definitions.feature_group import FeatureGroupSpec
from fti.errors import ConflictError, ValidationError
from fti.services import prediction_logs
from fti.services.context import StoreContext
from fti.services.feature_vectors import VectorBatch
from fti.services.model_formats import Predict
from fti.services.prediction_logs import LogRow
from fti.serving.missing_values import refuse_missing

__all__ = [
    "LogTarget",
    "ModelRef",
    "PlanGetter",
    "PredictCall",
    "Runtime",
    "Served",
    "VectorSource",
    "json_safe",
]


class VectorSource(Protocol):
    """Anything that turns entities into vectors (``VectorPlan`` in production)."""

    names: list[str]

    def compute(
        self,
        entities: Sequence[Mapping[str, Any]],
        request: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        allow_missing: bool = False,
    ) -> VectorBatch: ...

    def problems(self) -> list[str]:
        """Why vectors cannot be built now (empty when they can)."""
        ...

    def online_problems(self) -> list[str]: ...


@dataclass(frozen=True)
class ModelRef:
    """``NAME``, ``NAME@ALIAS`` or ``NAME:VERSION`` as given to ``fti serve --model``."""

    name: str
    alias: str | None = None
    version: int | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        if "@" in text:
            name, _, alias = text.partition("@")
            if not name or not alias:
                raise ValidationError(
                    f"Invalid model {text!r}: use NAME, NAME@ALIAS or NAME:VERSION."
                )
            return cls(name, alias=alias)
        name, _, version = text.partition(":")
        if version and not version.isdigit():
            raise ValidationError(
                f"Invalid model version in {text!r}: use NAME:VERSION with a number, e.g. delays:3."
            )
        if not name:
            raise ValidationError(f"Invalid model {text!r}: use NAME, NAME@ALIAS or NAME:VERSION.")
        return cls(name, version=int(version) if version else None)

    def __str__(self) -> str:
        if self.alias:
            return f"{self.name}@{self.alias}"
        return self.name if self.version is None else f"{self.name}:{self.version}"


@dataclass(frozen=True)
class Served:
    """One loaded model version and everything needed to answer for it."""

    model_name: str
    model_version: int
    fv_name: str
    fv_version: int
    training_dataset_version: int | None
    plan: VectorSource
    predict: Predict
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # False: vectors with missing values are refused (422) before the model sees them.
    handles_missing: bool = False


@dataclass(frozen=True)
class PredictCall:
    """One predict request: its entities, request parameters and options."""

    entities: Sequence[Mapping[str, Any]]
    request: Mapping[str, Any]
    return_features: bool = False
    request_id: str | None = None


Loader = Callable[[], Served]
# (feature view name, version, training dataset version or None) -> (version applied, plan)
PlanGetter = Callable[[str, int, int | None], tuple[int | None, VectorSource]]


def json_safe(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null in HTTP responses (in-process callers get
    them unchanged). numpy scalars become Python numbers, datetimes ISO strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


class Runtime:
    """The served model, the log writer hook and feature-vector plans for other views."""

    def __init__(
        self,
        loader: Loader,
        *,
        plan_getter: PlanGetter | None = None,
        allow_missing: bool = False,
        submit_log: Callable[[str, int, list[LogRow]], bool] | None = None,
    ) -> None:
        self._loader = loader
        self._plan_getter = plan_getter
        self.allow_missing = allow_missing
        self.submit_log = submit_log
        self._lock = threading.Lock()
        self.served: Served | None = None

    def load(self) -> Served:
        served = self._loader()
        self.served = served
        return served

    def reload(self) -> tuple[Served | None, Served]:
        """Load the model again (an alias may point elsewhere now) and swap it in.

        A model whose inputs cannot be served (see :meth:`problems`) is refused with a
        ``ConflictError`` naming the reasons, and the current model keeps serving."""
        with self._lock:
            old = self.served
            new = self._loader()
            if new is not old:
                problems = new.plan.problems()
                if problems:
                    keeps = (
                        f"Version {old.model_version} keeps serving"
                        if old is not None
                        else "Nothing is served"
                    )
                    raise ConflictError(
                        f"Model {new.model_name!r} version {new.model_version} cannot be served: "
                        f"{' '.join(problems)} {keeps}; fix the cause and reload again."
                    )
            self.served = new
            return old, new

    def problems(self) -> list[str]:
        """Why the served model cannot answer now (empty when it can): its feature view's
        groups are checked against the registry and probed through the online store."""
        served = self.served
        return [] if served is None else served.plan.problems()

    def current(self) -> Served:
        served = self.served
        if served is None:
            raise ValidationError("The model is not loaded yet; retry when /readyz answers 200.")
        return served

    def predict(
        self,
        entities: Sequence[Mapping[str, Any]],
        request: Mapping[str, Any],
        *,
        return_features: bool = False,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        call = PredictCall(entities, request, return_features, request_id)
        return self._predict(self.current(), [call])[0]

    def predict_many(self, calls: Sequence[PredictCall]) -> list[dict[str, Any] | Exception]:
        """The answers to several requests, with one pass of online lookups and one model call
        for all their entities (what the server does with the requests that arrived while the
        previous ones were computed). Each answer is what :meth:`predict` gives for that request
        alone; if the batch fails (a bad entity, a missing value), each request is answered
        alone, so only the ones at fault get their error."""
        try:
            served = self.current()
        except Exception as e:
            return [e] * len(calls)
        if len(calls) > 1:
            try:
                return list(self._predict(served, calls))
            except Exception:  # noqa: S110 - answered one by one below, each with its error
                pass
        out: list[dict[str, Any] | Exception] = []
        for call in calls:
            try:
                out.append(self._predict(served, [call])[0])
            except Exception as e:
                out.append(e)
        return out

    def _predict(self, served: Served, calls: Sequence[PredictCall]) -> list[dict[str, Any]]:
        entities: Sequence[Mapping[str, Any]]
        requests: Mapping[str, Any] | list[Mapping[str, Any]]
        if len(calls) == 1:
            entities, requests = calls[0].entities, calls[0].request
        else:
            entities = [e for c in calls for e in c.entities]
            requests = [c.request for c in calls for _ in c.entities]
        batch = served.plan.compute(entities, requests, allow_missing=self.allow_missing)
        if not served.handles_missing:
            refuse_missing(served.model_name, served.model_version, entities, batch)
        predictions, probabilities = served.predict(batch.vectors)
        now = datetime.now(UTC)
        answers: list[dict[str, Any]] = []
        logs: list[list[LogRow]] = []
        start = 0
        for call in calls:
            stop = start + len(call.entities)
            answer, rows = self._answer(
                served, call, batch, predictions, probabilities, start, stop, now
            )
            answers.append(answer)
            logs.append(rows)
            start = stop
        # Logged once every answer exists: a batch that fails is answered (and logged) again
        # request by request, and must not have logged some of its rows already.
        if self.submit_log is not None:
            for rows in logs:
                self.submit_log(served.fv_name, served.fv_version, rows)
        return answers

    def _answer(
        self,
        served: Served,
        call: PredictCall,
        batch: VectorBatch,
        predictions: list[Any],
        probabilities: list[Any] | None,
        start: int,
        stop: int,
        now: datetime,
    ) -> tuple[dict[str, Any], list[LogRow]]:
        """The answer and the log rows of one request: positions ``start:stop`` of ``batch``."""
        rid = call.request_id or uuid.uuid4().hex
        preds = predictions[start:stop]
        probs = None if probabilities is None else probabilities[start:stop]
        rows: list[LogRow] = []
        if self.submit_log is not None:
            rows = [
                LogRow(
                    request_id=rid,
                    position=i,
                    logged_at=now,
                    entity=call.entities[i],
                    request=call.request,
                    features=batch.features[start + i],
                    transformed=dict(zip(batch.names, batch.vectors[start + i], strict=True)),
                    prediction=preds[i],
                    probability=None if probs is None else probs[i],
                    model_name=served.model_name,
                    model_version=served.model_version,
                    training_dataset_version=served.training_dataset_version,
                )
                for i in range(stop - start)
            ]
        out: dict[str, Any] = {
            "request_id": rid,
            "model": served.model_name,
            "model_version": served.model_version,
            "feature_view": served.fv_name,
            "feature_view_version": served.fv_version,
            "training_dataset_version": served.training_dataset_version,
            "predictions": json_safe(preds),
        }
        if probs is not None:
            out["probabilities"] = json_safe(probs)
        missing = [i - start for i in batch.missing if start <= i < stop]
        if missing:
            out["missing"] = missing
        if call.return_features:
            out["feature_names"] = batch.names
            out["features"] = json_safe(batch.vectors[start:stop])
            out["untransformed"] = json_safe(batch.features[start:stop])
        return out, rows

    def plan(
        self, name: str, version: int, td_version: int | None
    ) -> tuple[int | None, VectorSource]:
        """The plan of a feature view version and the training dataset version it applies
        (``td_version``, else the latest when the view has transformations), as
        ``fv.feature_vector`` decides it."""
        if self._plan_getter is None:
            raise ValidationError("This server only serves its model's feature view.")
        return self._plan_getter(name, version, td_version)

    def vectors(
        self,
        name: str,
        version: int,
        entities: Sequence[Mapping[str, Any]],
        request: Mapping[str, Any],
        *,
        training_dataset_version: int | None = None,
    ) -> dict[str, Any]:
        td_version, plan = self.plan(name, version, training_dataset_version)
        batch = plan.compute(entities, request, allow_missing=self.allow_missing)
        out: dict[str, Any] = {
            "feature_view": name,
            "feature_view_version": version,
            "training_dataset_version": td_version,
            "feature_names": batch.names,
            "vectors": json_safe(batch.vectors),
        }
        if batch.missing:
            out["missing"] = batch.missing
        return out


class LogTarget:
    """Writes log rows into the log feature group of each feature view version (specs cached)."""

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx
        self._specs: dict[tuple[str, int], FeatureGroupSpec] = {}

    def __call__(self, fv_name: str, fv_version: int, rows: Sequence[LogRow]) -> int:
        spec = self._specs.get((fv_name, fv_version))
        if spec is None:
            spec = prediction_logs.log_spec(self._ctx, fv_name, fv_version)
            self._specs[(fv_name, fv_version)] = spec
        return prediction_logs.append(self._ctx, spec, rows)
