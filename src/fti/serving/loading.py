"""Load what the server serves from the store: a model version, its feature view and the
statistics of the training dataset it was trained on."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fti.definitions.feature_view import FeatureViewSpec
from fti.errors import NotFoundError, ValidationError
from fti.services import feature_vectors, feature_views, training_datasets
from fti.services.model_formats import handles_missing_values
from fti.serving.runtime import ModelRef, Served, VectorSource, predictor
from fti.store import context_of

__all__ = ["fitted_statistics", "model_loader", "plan_getter"]


def fitted_statistics(
    ctx: Any, spec: FeatureViewSpec, td_version: int
) -> Mapping[str, Mapping[str, Any]]:
    """The transformation statistics stored with a training dataset version."""
    return dict(training_datasets.get(ctx, spec, td_version).fitted)


def _plan(
    ctx: Any, name: str, version: int, td_version: int | None, order: list[str] | None
) -> VectorSource:
    spec = feature_views.get_spec(ctx, name, version)
    fitted = None
    if td_version is not None:
        fitted = fitted_statistics(ctx, spec, td_version)
    elif spec.transformations:
        raise ValidationError(
            f"Feature view {name!r} version {version} has model-dependent transformations; "
            "pass training_dataset_version= to apply the statistics fitted for it."
        )
    return feature_vectors.plan_for_view(ctx, spec, fitted=fitted, order=order)


def plan_getter(fs: Any) -> Callable[[str, int, int | None], VectorSource]:
    """Plans for ``/v1/feature-views/{name}/{version}/vectors``."""
    ctx = context_of(fs)

    def get(name: str, version: int, td_version: int | None) -> VectorSource:
        return _plan(ctx, name, version, td_version, None)

    return get


def model_loader(fs: Any, ref: ModelRef) -> Callable[[], Served]:
    """Resolve ``ref`` (an alias is resolved on every call, so reload follows it) and load."""
    ctx = context_of(fs)
    last: list[tuple[tuple[str, int, str], Served]] = []

    def load() -> Served:
        mv = fs.models.get(ref.name, version=ref.version, alias=ref.alias)
        spec = mv.spec
        key = (spec.name, spec.version, spec.artifact.sha256)
        if last and last[0][0] == key:
            return last[0][1]  # the alias still names the loaded version: nothing to load
        if spec.feature_view is None:
            raise NotFoundError(
                f"Model {spec.name!r} version {spec.version} was registered without a feature "
                "view, so the server cannot look up its features. Register it with "
                "fs.models.register(..., feature_view=fv, training_dataset=td)."
            )
        model = mv.load()
        td_version = None if spec.training_dataset is None else spec.training_dataset.version
        order = spec.signature.input_names or None
        plan = _plan(ctx, spec.feature_view.name, spec.feature_view.version, td_version, order)
        served = Served(
            model_name=spec.name,
            model_version=spec.version,
            fv_name=spec.feature_view.name,
            fv_version=spec.feature_view.version,
            training_dataset_version=td_version,
            plan=plan,
            predict=predictor(model, plan.names),
            handles_missing=handles_missing_values(model),
        )
        last[:] = [(key, served)]
        return served

    return load
