"""``fs.models`` (:class:`ModelRegistry`) and the :class:`ModelVersion` handles it returns."""

from __future__ import annotations

import builtins
import functools
import inspect
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from fti.definitions.model_version import (
    ArtifactInfo,
    FeatureViewRef,
    ModelVersionSpec,
    Signature,
    TrainingDatasetRef,
)
from fti.services import (
    deletion,
    model_performance,
    model_registry,
    outcomes,
    prediction_logs,
    record_state,
    skew,
)
from fti.services.context import StoreContext

__all__ = ["BoundFeatureView", "ModelRegistry", "ModelVersion"]


class BoundFeatureView:
    """A feature view with its training dataset version fixed (from ``mv.feature_view()``).

    Attribute access goes to the view; a method with a ``training_dataset_version`` parameter
    gets this version unless the call passes one. ``.unbound`` is the view itself.
    """

    def __init__(self, view: Any, training_dataset_version: int) -> None:
        self._view = view
        self._td_version = training_dataset_version

    @property
    def unbound(self) -> Any:
        return self._view

    @property
    def training_dataset_version(self) -> int:
        return self._td_version

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._view, name)
        if callable(attr):
            try:
                params = inspect.signature(attr).parameters
            except (TypeError, ValueError):
                return attr
            if "training_dataset_version" in params:
                return functools.partial(attr, training_dataset_version=self._td_version)
        return attr

    def __repr__(self) -> str:
        return f"BoundFeatureView({self._view!r}, training_dataset_version={self._td_version})"


class ModelVersion:
    """One registered model version. Get it from ``fs.models.register/get/best/list``.

    >>> mv = fs.models.get("delays", alias="production")                     # doctest: +SKIP
    >>> mv.version, mv.metrics["auc"], mv.signature.input_names               # doctest: +SKIP
    >>> model = mv.load()                                                     # doctest: +SKIP
    """

    def __init__(self, ctx: StoreContext, spec: ModelVersionSpec, store: object = None) -> None:
        self._ctx = ctx
        self._spec = spec
        # The FeatureStore facade (typed loosely: handles may not import it); used to resolve
        # feature views and training datasets when the store offers them.
        self._store = store

    # ------------------------------------------------------------------ properties
    @property
    def spec(self) -> ModelVersionSpec:
        """The frozen definition."""
        return self._spec

    @property
    def name(self) -> str:
        return self._spec.name

    @property
    def version(self) -> int:
        return self._spec.version

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self._spec.metrics)

    @property
    def signature(self) -> Signature:
        """Input (and output) names and dtypes the model was registered with."""
        return self._spec.signature

    @property
    def format(self) -> str:
        """Storage format: skops, lightgbm, xgboost, onnx or pickle."""
        return self._spec.format

    @property
    def framework(self) -> str:
        return self._spec.framework

    @property
    def libraries(self) -> dict[str, str]:
        """Library versions at registration (python, fti, the framework, ...)."""
        return dict(self._spec.libraries)

    @property
    def artifact(self) -> ArtifactInfo:
        """Artifact key, sha256 and size."""
        return self._spec.artifact

    @property
    def description(self) -> str:
        return self._spec.description

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._spec.tags)

    @property
    def status(self) -> str:
        """``ready``, or ``pending``/``failed`` if the artifact was never completely stored."""
        return self._spec.status

    @property
    def created_at(self) -> datetime:
        return self._spec.created_at

    @property
    def feature_view_ref(self) -> FeatureViewRef | None:
        """The recorded feature view ``(name, version)``, without opening it."""
        return self._spec.feature_view

    @property
    def training_dataset_ref(self) -> TrainingDatasetRef | None:
        """The recorded training dataset ``(feature_view, fv_version, version)``."""
        return self._spec.training_dataset

    @property
    def aliases(self) -> list[str]:
        """Aliases currently pointing at this version (read from the registry)."""
        known = model_registry.aliases(self._ctx, self.name)
        return sorted(a for a, v in known.items() if v == self.version)

    def __repr__(self) -> str:
        return (
            f"ModelVersion({self.name!r}, version={self.version}, format={self.format!r}, "
            f"metrics={self.metrics})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelVersion) and other._spec == self._spec

    __hash__ = None  # type: ignore[assignment]

    # ------------------------------------------------------------------ actions
    def load(self, *, allow_pickle: bool = False, trusted: Sequence[str] = ()) -> Any:
        """The model object, after verifying the artifact's sha256 (IntegrityError if not).

        A model stored with pickle loads only with ``allow_pickle=True``; never pass it for a
        store you do not trust, and never on a network path. A scikit-learn (skops) model loads
        if every type it uses is a scikit-learn, LightGBM, XGBoost, scipy.sparse or NumPy class;
        other types (a custom transformer class) must be named by you in ``trusted=[...]`` —
        this is never read from the registry, so whoever can edit the registry cannot extend it.

        >>> model = fs.models.get("delays", alias="production").load()        # doctest: +SKIP
        """
        return model_registry.load(
            self._ctx, self._spec, allow_pickle=allow_pickle, trusted=trusted
        )

    def feature_view(self) -> Any:
        """The feature view the model reads its inputs through, bound to the training dataset
        version it was trained on, so batch data and feature vectors get the transformations
        fitted for that version.

        Resolved through the store's ``get_feature_view(name, version=...)``. With a recorded
        training dataset the view comes wrapped in a :class:`BoundFeatureView`, which passes
        ``training_dataset_version=`` to every method that takes it (``batch_data``,
        ``feature_vector``, ``feature_vectors``; an explicit argument still wins). If the store
        has no feature views, returns the recorded :class:`FeatureViewRef`. None if the model
        was registered without a feature view.

        >>> X = mv.feature_view().batch_data(start=day, end=next_day)          # doctest: +SKIP
        """
        ref = self._spec.feature_view
        if ref is None:
            return None
        getter = getattr(self._store, "get_feature_view", None)
        if getter is None:
            return ref
        fv = getter(ref.name, version=ref.version)
        td = self._spec.training_dataset
        return fv if td is None else BoundFeatureView(fv, td.version)

    def training_dataset(self) -> Any:
        """The training dataset the model was trained on: ``fv.get_training_dataset(version)``
        of its feature view when available, else the recorded :class:`TrainingDatasetRef`.
        None if it was registered without one."""
        ref = self._spec.training_dataset
        if ref is None:
            return None
        getter = getattr(self._store, "get_feature_view", None)
        if getter is None:
            return ref
        fv = getter(ref.feature_view, version=ref.fv_version)
        get_td = getattr(fv, "get_training_dataset", None)
        return ref if get_td is None else get_td(ref.version)

    def set_alias(self, alias: str) -> ModelVersion:
        """Point ``alias`` (e.g. "production") at this version."""
        model_registry.set_alias(self._ctx, self.name, alias, self.version)
        return self

    @property
    def deprecated(self) -> bool:
        """Whether this version is deprecated (read from the registry)."""
        return record_state.is_deprecated(self._ctx, model_registry.KIND, self.name, self.version)

    def deprecate(self, deprecated: bool = True, *, reason: str = "") -> ModelVersion:
        """Mark this version deprecated: kept and loadable, hidden from ``fs.models.list()``,
        a ``DeprecatedWarning`` when fetched by number or alias. ``deprecate(False)`` undoes
        it."""
        record_state.set_deprecated(
            self._ctx, model_registry.KIND, self.name, self.version, deprecated, reason
        )
        return self

    def delete(self, *, force: bool = False) -> list[str]:
        """Delete this version and its artifact. Refused (``DependantsError``) while an alias
        points at it, unless ``force=True``, which removes the alias too."""
        return deletion.delete(
            self._ctx, deletion.model_version(self.name, self.version), force=force
        )


class ModelRegistry:
    """The model registry of a store: ``fs.models``.

    >>> mv = fs.models.register("delays", model, metrics={"auc": 0.71}, feature_view=fv,
    ...                         training_dataset=td)                        # doctest: +SKIP
    >>> fs.models.set_alias("delays", "production", mv.version)              # doctest: +SKIP
    >>> fs.models.get("delays", alias="production").load()                   # doctest: +SKIP
    """

    def __init__(self, ctx: StoreContext, store: object = None) -> None:
        self._ctx = ctx
        self._store = store

    def __repr__(self) -> str:
        return f"ModelRegistry({self._ctx.config.registry!r})"

    def _handle(self, spec: ModelVersionSpec) -> ModelVersion:
        return ModelVersion(self._ctx, spec, self._store)

    def register(
        self,
        name: str,
        model: object,
        *,
        metrics: Mapping[str, Any] | None = None,
        feature_view: Any = None,
        training_dataset: Any = None,
        input_example: Any = None,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        allow_pickle: bool = False,
    ) -> ModelVersion:
        """Store ``model`` as the next version of ``name`` and return it.

        The format follows the model's kind: scikit-learn via skops, LightGBM native text,
        XGBoost native JSON, ONNX as is; anything else needs ``allow_pickle=True``. The
        signature comes from the training dataset or feature view (checked against the
        features the model was fitted on) or from ``input_example``.

        >>> mv = fs.models.register("delays", clf, metrics={"auc": 0.71},
        ...                         feature_view=fv, training_dataset=td)      # doctest: +SKIP
        """
        spec = model_registry.register(
            self._ctx,
            name,
            model,
            metrics=metrics,
            feature_view=feature_view,
            training_dataset=training_dataset,
            input_example=input_example,
            description=description,
            tags=tags,
            allow_pickle=allow_pickle,
        )
        return self._handle(spec)

    def get(
        self, name: str, *, version: int | None = None, alias: str | None = None
    ) -> ModelVersion:
        """A version by number or alias; the latest ready version if neither is given.

        >>> fs.models.get("delays", alias="production")                       # doctest: +SKIP
        """
        spec = model_registry.get_spec(self._ctx, name, version, alias)
        if version is None and alias is None:  # the latest: warn if it is deprecated
            record_state.warn_if_deprecated(self._ctx, model_registry.KIND, name, spec.version)
        return self._handle(spec)

    def best(self, name: str, metric: str, *, direction: str = "max") -> ModelVersion:
        """The version with the best ``metric`` (``direction="max"`` or ``"min"``).

        >>> fs.models.best("delays", "log_loss", direction="min")             # doctest: +SKIP
        """
        spec = model_registry.best(self._ctx, name, metric, direction)
        record_state.warn_if_deprecated(self._ctx, model_registry.KIND, name, spec.version)
        return self._handle(spec)

    def list(
        self, name: str | None = None, *, include_deprecated: bool = False
    ) -> builtins.list[ModelVersion]:
        """Every version of one model, or of all models, by name then version (deprecated
        ones on request)."""
        specs = model_registry.list_specs(self._ctx, name, include_deprecated=include_deprecated)
        return [self._handle(s) for s in specs]

    def delete(self, name: str, *, version: int, force: bool = False) -> builtins.list[str]:
        """Delete one version and its artifact. Refused (``DependantsError``) while an alias
        points at it, unless ``force=True``, which removes the alias too. Returns what was
        deleted (also finishes a deletion that was interrupted).

        >>> fs.models.delete("delays", version=2)                           # doctest: +SKIP
        """
        return deletion.delete(self._ctx, deletion.model_version(name, version), force=force)

    def deprecate(
        self, name: str, *, version: int, deprecated: bool = True, reason: str = ""
    ) -> None:
        """Mark a version deprecated (``deprecated=False`` undoes it): kept and loadable,
        hidden from ``list()``, a ``DeprecatedWarning`` when fetched.

        >>> fs.models.deprecate("delays", version=1, reason="retrained")     # doctest: +SKIP
        """
        record_state.set_deprecated(
            self._ctx, model_registry.KIND, name, version, deprecated, reason
        )

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` at ``version``; an alias names one version per model, so this moves
        it if it pointed elsewhere. Every change is kept in the alias history.

        >>> fs.models.set_alias("delays", "production", 3)                    # doctest: +SKIP
        """
        model_registry.set_alias(self._ctx, name, alias, version)

    def remove_alias(self, name: str, alias: str) -> int:
        """Remove an alias; returns the version it pointed to."""
        return model_registry.remove_alias(self._ctx, name, alias)

    def aliases(self, name: str) -> dict[str, int]:
        """``{alias: version}`` of one model."""
        return model_registry.aliases(self._ctx, name)

    def skew_check(
        self,
        name: str,
        *,
        version: int | None = None,
        sample: int | None = 1_000,
        start: datetime | None = None,
        end: datetime | None = None,
        seed: int = 0,
    ) -> skew.SkewReport:
        """Training-serving skew: recompute up to ``sample`` logged predictions of ``name``
        (``start <= logged_at < end``; all versions unless ``version=``) offline, as the store
        knew them at their request time, and compare every feature: match, mismatch (both
        values), missing online, missing offline (floats within 1e-9 relative).

        >>> report = fs.models.skew_check("delays", sample=1_000)          # doctest: +SKIP
        >>> report.ok, report.counts, report.frame()                       # doctest: +SKIP
        """
        return skew.check(
            self._ctx, name, version=version, sample=sample, start=start, end=end, seed=seed
        )

    def alias_history(self, name: str) -> builtins.list[dict[str, Any]]:
        """Every alias change of a model (set/remove, version, previous), oldest first."""
        return model_registry.alias_history(self._ctx, name)

    # ------------------------------------------------------------------ monitoring
    def log_predictions(
        self, name: str, data: Any, *, keys: Sequence[str], version: int | None = None
    ) -> int:
        """Log predictions made in batch into the prediction log the model server writes
        (``<view>_log``), so outcomes and live metrics cover them too. ``data``: the entity
        ``keys``, ``prediction``, optional ``probability``, ``logged_at`` (default now),
        ``request_id`` (default a new id per row); other columns are logged as features.
        Returns the rows written.

        >>> fs.models.log_predictions("delays", scored, keys=["flight_id"])  # doctest: +SKIP
        """
        return prediction_logs.log_batch(self._ctx, name, data, keys=keys, version=version)

    def log_outcomes(
        self,
        name: str,
        data: Any,
        *,
        on_unknown: str = "error",
        outcome_time: datetime | None = None,
    ) -> outcomes.OutcomeReport:
        """Attach outcomes (delayed labels) to logged predictions of model ``name``; they are
        stored in the feature group ``<name>_outcomes`` (version 1).

        ``data`` holds the label column(s) and either ``request_id`` (plus ``position`` when
        a request predicted several entities; ``outcome_time``, when it became known, defaults
        to ``outcome_time=`` or now) or the view's entity keys and ``outcome_time``: then an
        outcome labels the predictions of its key logged since the previous outcome of that
        key, up to its own time. An outcome that matches no logged prediction is an error
        with nothing written, unless ``on_unknown="skip"`` (reported in the result).

        >>> fs.models.log_outcomes("delays", df[["request_id", "delayed"]])    # doctest: +SKIP
        """
        return outcomes.log(self._ctx, name, data, on_unknown=on_unknown, outcome_time=outcome_time)

    def performance(
        self,
        name: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        every: str | timedelta = "1D",
        label_delay: timedelta | None = None,
        version: int | None = None,
        label: str | None = None,
        task: str = "auto",
        format: str = "pandas",
    ) -> Any:
        """Live metrics of model ``name`` per time bucket of its logged predictions, joined
        to the logged outcomes: bucket_start/end, model_version, predictions, labelled,
        coverage, pending (the bucket ends within ``label_delay`` of now: counted, not
        scored), then AUC, log loss, accuracy and calibration error (classifiers) or MAE and
        RMSE (regressors), and ``test_<metric>`` columns with the training dataset's test
        metrics as registered (``test_auc``, else ``auc``) for the version that served in the
        bucket. Every logged version is read as one timeline
        unless ``version=`` picks one.

        >>> fs.models.performance("delays", every="7D", label_delay=timedelta(days=1))
        ... # doctest: +SKIP
        """
        return model_performance.performance(
            self._ctx,
            name,
            start=start,
            end=end,
            every=every,
            label_delay=label_delay,
            version=version,
            label=label,
            task=task,
            format=format,
        )
