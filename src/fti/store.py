"""``FeatureStore``: the facade users start from. Thin: it wires config to backends and hands
out handles; the work happens in ``fti.services``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from fti.config import StoreConfig, resolve_config
from fti.definitions.expectations import Expectation
from fti.definitions.feature_group import FeaturesArg, normalize_features
from fti.handles.feature_group import FeatureGroup
from fti.handles.feature_view import FeatureView
from fti.handles.model import ModelRegistry
from fti.handles.monitor import Monitor
from fti.services import (
    deletion,
    feature_groups,
    feature_views,
    lineage_graph,
    materialization,
    monitoring,
)
from fti.services.context import StoreContext
from fti.services.lineage_graph import LineageGraph

__all__ = ["FeatureStore", "connect", "context_of"]

# Defaults of get-or-create arguments: "keep the stored value, else this on creation".
_KEEP_OR_NONE: Any = feature_groups.Unset(None)
_KEEP_OR_FALSE: Any = feature_groups.Unset(False)
_KEEP_OR_EMPTY: Any = feature_groups.Unset("")
_KEEP_OR_NO_COLUMNS: Any = feature_groups.Unset(())
_KEEP_OR_NO_RULES: Any = feature_groups.Unset(())
_KEEP_OR_REJECT: Any = feature_groups.Unset("reject")
_KEEP_OR_NO_TAGS: Any = feature_groups.Unset({})


class FeatureStore:
    """A feature store: offline + online store, registry and artifacts.

    >>> fs = fti.connect()                                                    # doctest: +SKIP
    >>> fg = fs.feature_group("weather", primary_key=["origin"], event_time="time_hour")
    ... # doctest: +SKIP
    """

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self._ctx = StoreContext(config)
        config.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.config.root)!r})"

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release connections."""
        self._ctx.close()

    # ------------------------------------------------------------------ lineage
    def lineage(self, obj: Any) -> LineageGraph:
        """What ``obj`` was built from (upstream) and what was built on it (downstream), from
        the records of pipeline runs. ``obj``: a feature group, feature view, training dataset,
        model version, pipeline run, or a tuple ``(kind, name, version)``.

        >>> lin = fs.lineage(mv)                                              # doctest: +SKIP
        >>> [n.name for n in lin.upstream("file")]   # raw input files        # doctest: +SKIP
        >>> print(lin)                                                        # doctest: +SKIP
        """
        kind, name, version = lineage_graph.target_of(obj)
        return lineage_graph.lineage(self._ctx, kind, name, version)

    # ------------------------------------------------------------------ feature groups
    def feature_group(
        self,
        name: str,
        *,
        version: int = 1,
        primary_key: list[str] | tuple[str, ...] | None = None,
        event_time: str | None = _KEEP_OR_NONE,
        online: bool = _KEEP_OR_FALSE,
        ttl: timedelta | None = _KEEP_OR_NONE,
        description: str = _KEEP_OR_EMPTY,
        features: FeaturesArg = _KEEP_OR_NO_COLUMNS,
        expectations: Sequence[Expectation] = _KEEP_OR_NO_RULES,
        on_invalid: str = _KEEP_OR_REJECT,
        tags: Mapping[str, str] = _KEEP_OR_NO_TAGS,
    ) -> FeatureGroup:
        """Get or create a feature group version. Arguments given must match a stored one;
        arguments left out keep the stored values, or take the shown default on creation
        (``features``: inferred from the first insert).

        ``expectations`` are data-quality rules (``fti.expect.*``) checked on every write;
        ``on_invalid`` is "reject" (default), "quarantine" or "warn". ``tags``: free-form labels
        (``{"owner": "risk-team"}``), shown by ``fti fg show`` and the UI; change them with
        ``fg.set_tags``.

        >>> fg = fs.feature_group("weather", version=1, primary_key=["origin"],
        ...                       event_time="time_hour", online=True, ttl=timedelta(hours=6),
        ...                       expectations=[fti.expect.not_null("temp")])
        ... # doctest: +SKIP
        """
        spec = feature_groups.get_or_create(
            self._ctx,
            name,
            version=version,
            primary_key=primary_key,
            event_time=event_time,
            online=online,
            ttl=ttl,
            description=description,
            features=features
            if isinstance(features, feature_groups.Unset)
            else normalize_features(features),
            expectations=expectations,
            on_invalid=on_invalid,
            tags=tags,
        )
        materialization.catch_up(self._ctx, spec)
        return FeatureGroup(self._ctx, spec)

    def get_feature_group(self, name: str, *, version: int | None = None) -> FeatureGroup:
        """An existing feature group (latest version if not given).

        >>> fs.get_feature_group("weather", version=1)                         # doctest: +SKIP
        """
        spec = feature_groups.get_spec(self._ctx, name, version)
        materialization.catch_up(self._ctx, spec)
        return FeatureGroup(self._ctx, spec)

    def feature_groups(self, *, include_deprecated: bool = False) -> list[FeatureGroup]:
        """Every feature group version, by name then version (deprecated ones on request)."""
        specs = feature_groups.list_specs(self._ctx, include_deprecated=include_deprecated)
        return [FeatureGroup(self._ctx, s) for s in specs]

    def delete_feature_group(self, name: str, *, version: int, force: bool = False) -> list[str]:
        """Delete a feature group version: its offline table, online rows and registry records
        (nothing else). Refused with a ``DependantsError`` listing the feature views, training
        datasets, models and aliases that depend on it, unless ``force=True``, which deletes
        those first. Returns what was deleted; also finishes an interrupted deletion.

        >>> fs.delete_feature_group("weather", version=1)                     # doctest: +SKIP
        """
        return deletion.delete(self._ctx, deletion.feature_group(name, version), force=force)

    # ------------------------------------------------------------------ feature views
    def feature_view(
        self,
        name: str,
        *,
        version: int = 1,
        query: Any = None,
        labels: list[str] | tuple[str, ...] | None = None,
        transformations: dict[str, Any] | None = None,
        on_demand: list[Any] | tuple[Any, ...] | None = None,
        description: str | None = None,
    ) -> FeatureView:
        """Get or create a feature view version. A given definition must match a stored one.

        >>> fv = fs.feature_view("delays", version=1,
        ...         query=flights.select(["distance"]).join(weather.select_all(), prefix="w_"),
        ...         labels=["delayed"], transformations={"distance": fti.standard_scaler()})
        ... # doctest: +SKIP
        """
        spec = feature_views.get_or_create(
            self._ctx,
            name,
            version=version,
            query=query,
            labels=labels,
            transformations=transformations,
            on_demand=on_demand,
            description=description,
        )
        return FeatureView(self._ctx, spec)

    def get_feature_view(self, name: str, *, version: int | None = None) -> FeatureView:
        """An existing feature view (latest version if not given).

        >>> fv = fs.get_feature_view("delays", version=1)                     # doctest: +SKIP
        """
        return FeatureView(self._ctx, feature_views.get_spec(self._ctx, name, version))

    def feature_views(self, *, include_deprecated: bool = False) -> list[FeatureView]:
        """Every feature view version, by name then version (deprecated ones on request)."""
        specs = feature_views.list_specs(self._ctx, include_deprecated=include_deprecated)
        return [FeatureView(self._ctx, s) for s in specs]

    def delete_feature_view(self, name: str, *, version: int, force: bool = False) -> list[str]:
        """Delete a feature view version (its feature groups stay). Refused with a
        ``DependantsError`` while training datasets, models, aliases or its prediction log
        depend on it, unless ``force=True``. Returns what was deleted.

        >>> fs.delete_feature_view("delays", version=1, force=True)           # doctest: +SKIP
        """
        return deletion.delete(self._ctx, deletion.feature_view(name, version), force=force)

    def delete_training_dataset(
        self,
        feature_view: str,
        *,
        version: int,
        training_dataset_version: int,
        force: bool = False,
    ) -> list[str]:
        """Delete a training dataset version of feature view ``feature_view`` version
        ``version``, with its split files. Refused with a ``DependantsError`` while models
        were trained on it, unless ``force=True``. Returns what was deleted.

        >>> fs.delete_training_dataset("delays", version=1, training_dataset_version=2)
        ... # doctest: +SKIP
        """
        node = deletion.training_dataset(feature_view, version, training_dataset_version)
        return deletion.delete(self._ctx, node, force=force)

    # ------------------------------------------------------------------ monitors
    def monitor(
        self,
        name: str,
        *,
        feature_view: Any = None,
        feature_group: Any = None,
        features: list[str] | tuple[str, ...] | None = None,
        reference: Any = None,
        detection: Any = None,
        metric: str = "auto",
        threshold: float | None = None,
        schedule: str | None = None,
        webhook: str | None = None,
        model: Any = None,
        sample: int | None = 1_000,
    ) -> Monitor:
        """Get or create a drift or skew monitor. ``fs.monitor(name)`` alone gets a stored
        one; a definition given must match the stored one. ``features`` defaults to every
        stored numeric and categorical feature of the source (a model's: its view's features).
        ``model=`` (a name, or a model version to pin it) with ``metric="skew"`` runs the
        training-serving skew check over up to ``sample`` requests logged in ``detection``.

        >>> mon = fs.monitor("amount_drift", feature_view=fv, features=["amount", "country"],
        ...                  reference=td, detection=fti.window(last=timedelta(days=1)),
        ...                  schedule="0 * * * *")                          # doctest: +SKIP
        >>> mon.run()                                                         # doctest: +SKIP
        >>> fs.monitor("delays_skew", model="delays", metric="skew",
        ...            detection=fti.window(last=timedelta(hours=1)))       # doctest: +SKIP
        """
        given = (feature_view, feature_group, features, reference, detection, model)
        if all(v is None for v in given):
            return Monitor(self._ctx, monitoring.get_spec(self._ctx, name))
        spec = monitoring.build_spec(
            name,
            feature_view=feature_view,
            feature_group=feature_group,
            features=features,
            reference=reference,
            detection=detection,
            metric=metric,
            threshold=threshold,
            schedule=schedule,
            webhook=webhook,
            model=model,
            sample=sample,
            ctx=self._ctx,
        )
        return Monitor(self._ctx, monitoring.get_or_create(self._ctx, spec))

    def monitors(self) -> list[Monitor]:
        """Every drift monitor, by name."""
        return [Monitor(self._ctx, s) for s in monitoring.list_specs(self._ctx)]

    def delete_monitor(self, name: str) -> list[str]:
        """Delete a drift monitor with its schedule and stored runs (to change a monitor's
        definition, delete it and create it again). Returns what was deleted.

        >>> fs.delete_monitor("amount_drift")                                 # doctest: +SKIP
        """
        return monitoring.delete(self._ctx, name)

    # ------------------------------------------------------------------ models
    @property
    def models(self) -> ModelRegistry:
        """The model registry.

        >>> mv = fs.models.register("delays", model, metrics={"auc": 0.7}, feature_view=fv,
        ...                         training_dataset=td)                    # doctest: +SKIP
        >>> fs.models.get("delays", alias="production").load()             # doctest: +SKIP
        """
        return ModelRegistry(self._ctx, self)


def context_of(fs: FeatureStore) -> StoreContext:
    """The backends of ``fs`` for fti's own layers above the store (serving, UI, CLI, pipelines).

    The one typed way in: these layers call services with it instead of reaching into the
    store's private attributes. Not part of the user-facing API.
    """
    return fs._ctx


def connect(
    root: str | os.PathLike[str] | None = None,
    *,
    offline: str | None = None,
    online: str | None = None,
    registry: str | None = None,
    artifacts: str | None = None,
) -> FeatureStore:
    """Open (creating if needed) a feature store.

    The root is ``root``, else ``$FTI_HOME``, else ``root`` in ``./fti.toml``, else ``./.fti``.
    Each part can point elsewhere by URL (argument > ``FTI_<PART>`` env var > ``fti.toml``).

    >>> fs = fti.connect()                                     # embedded, zero servers
    ... # doctest: +SKIP
    >>> fs = fti.connect("demo", online="redis://127.0.0.1:6379/0")            # doctest: +SKIP
    """
    return FeatureStore(
        resolve_config(root, offline=offline, online=online, registry=registry, artifacts=artifacts)
    )
