"""Load what the server serves from the store: a model version and the vector plan of its
feature view, and the plans of other feature views for ``/vectors``.

Plans come from :func:`fti.services.feature_vectors.plan_of`, the code behind
``fv.feature_vector``: the same training dataset decision (the one given, else the latest) and
the same plan cache.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from fti.definitions.feature_view import FeatureViewSpec
from fti.errors import NotFoundError
from fti.services import feature_vectors, feature_views, model_registry
from fti.services.model_formats import handles_missing_values, predictor
from fti.serving.runtime import ModelRef, PlanGetter, Served, VectorSource
from fti.store import context_of

if TYPE_CHECKING:
    from fti.store import FeatureStore

__all__ = ["model_loader", "plan_getter"]

_MAX_VIEWS = 64


def plan_getter(fs: FeatureStore) -> PlanGetter:
    """Plans for ``/v1/feature-views/{name}/{version}/vectors``: ``(training dataset version
    applied, plan)``. Each view's definition is read once and kept, so the plan cache (keyed
    by the definition) finds its plans again on the next request."""
    ctx = context_of(fs)
    specs: dict[tuple[str, int], FeatureViewSpec] = {}
    lock = threading.Lock()

    def get(name: str, version: int, td_version: int | None) -> tuple[int | None, VectorSource]:
        spec = specs.get((name, version))
        if spec is None:
            spec = feature_views.get_spec(ctx, name, version)
            with lock:
                if len(specs) >= _MAX_VIEWS:
                    specs.clear()
                spec = specs.setdefault((name, version), spec)
        return feature_vectors.plan_of(ctx, spec, td_version)

    return get


def model_loader(fs: FeatureStore, ref: ModelRef) -> Callable[[], Served]:
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
        # A LightGBM model is served through LightGBM's C library when it can be: the same
        # predictions, without the second that importing the lightgbm package costs.
        model = model_registry.load(ctx, spec, native=True)
        fv = feature_views.get_spec(ctx, spec.feature_view.name, spec.feature_view.version)
        td_version, plan = feature_vectors.plan_of(
            ctx,
            fv,
            None if spec.training_dataset is None else spec.training_dataset.version,
            order=spec.signature.input_names or None,
        )
        served = Served(
            model_name=spec.name,
            model_version=spec.version,
            fv_name=fv.name,
            fv_version=fv.version,
            training_dataset_version=td_version,
            plan=plan,
            predict=predictor(model, plan.names),
            handles_missing=handles_missing_values(model),
        )
        last[:] = [(key, served)]
        return served

    return load
