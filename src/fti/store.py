"""``FeatureStore``: the facade users start from. Thin: it wires config to backends and hands
out handles; the work happens in ``fti.services``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from fti.config import StoreConfig, resolve_config
from fti.definitions.expectations import Expectation
from fti.definitions.feature_group import FeaturesArg, normalize_features
from fti.handles.feature_group import FeatureGroup
from fti.handles.feature_view import FeatureView
from fti.handles.model import ModelRegistry
from fti.services import feature_groups, feature_views, lineage_graph, materialization
from fti.services.context import StoreContext
from fti.services.lineage_graph import LineageGraph

__all__ = ["FeatureStore", "connect"]

_UNSET: Any = feature_groups._UNSET


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
        event_time: str | None = _UNSET,
        online: bool = _UNSET,
        ttl: timedelta | None = _UNSET,
        description: str = _UNSET,
        features: FeaturesArg = _UNSET,
        expectations: Sequence[Expectation] = _UNSET,
        on_invalid: str = _UNSET,
    ) -> FeatureGroup:
        """Get or create a feature group version. Arguments given must match a stored one.

        ``expectations`` are data-quality rules (``fti.expect.*``) checked on every write;
        ``on_invalid`` is "reject" (default), "quarantine" or "warn".

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
            features=_UNSET if features is _UNSET else normalize_features(features),
            expectations=expectations,
            on_invalid=on_invalid,
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

    def feature_groups(self) -> list[FeatureGroup]:
        """Every feature group version, by name then version."""
        return [FeatureGroup(self._ctx, s) for s in feature_groups.list_specs(self._ctx)]

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

    def feature_views(self) -> list[FeatureView]:
        """Every feature view version, by name then version."""
        return [FeatureView(self._ctx, s) for s in feature_views.list_specs(self._ctx)]

    # ------------------------------------------------------------------ models
    @property
    def models(self) -> ModelRegistry:
        """The model registry.

        >>> mv = fs.models.register("delays", model, metrics={"auc": 0.7}, feature_view=fv,
        ...                         training_dataset=td)                    # doctest: +SKIP
        >>> fs.models.get("delays", alias="production").load()             # doctest: +SKIP
        """
        return ModelRegistry(self._ctx, self)


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
