"""``FeatureView``: the handle returned by ``fs.feature_view(...)``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from fti._internal.frames import from_arrow
from fti.definitions.feature_view import FeatureViewSpec
from fti.handles.training_dataset import TrainingDataset
from fti.services import (
    deletion,
    feature_vectors,
    feature_views,
    prediction_logs,
    record_state,
    training_datasets,
)
from fti.services.context import StoreContext
from fti.services.training_data import point_in_time

__all__ = ["FeatureView"]


class FeatureView:
    """Features (and labels) of a query, read point-in-time correct.

    >>> fv = fs.feature_view("delays", query=flights.select(["distance"]), labels=["delayed"])
    ... # doctest: +SKIP
    >>> df = fv.training_data(spine=spine_df)                                 # doctest: +SKIP
    """

    def __init__(self, ctx: StoreContext, spec: FeatureViewSpec) -> None:
        self._ctx = ctx
        self._spec = spec

    # ------------------------------------------------------------------ properties
    @property
    def spec(self) -> FeatureViewSpec:
        """The frozen definition."""
        return self._spec

    @property
    def name(self) -> str:
        return self._spec.name

    @property
    def version(self) -> int:
        return self._spec.version

    @property
    def labels(self) -> list[str]:
        return list(self._spec.labels)

    @property
    def features(self) -> list[str]:
        """Model inputs before transformation: selected features, then on-demand ones."""
        return self._spec.features

    @property
    def query(self) -> Any:
        return self._spec.query

    def __repr__(self) -> str:
        return (
            f"FeatureView({self.name!r}, version={self.version}, features={self.features}, "
            f"labels={self.labels})"
        )

    # ------------------------------------------------------------------ reads
    def training_data(
        self,
        *,
        spine: Any = None,
        start: datetime | None = None,
        end: datetime | None = None,
        format: str = "pandas",
        engine: Any = "duckdb",
        known_at: datetime | str | None = None,
    ) -> Any:
        """Point-in-time features and labels, untransformed, as one frame.

        One row per spine row in spine order (or, without a spine, per row of the left-most
        feature group with ``start <= event_time < end``). Spine columns are passed through.

        ``engine="spark"`` (or a SparkSession) runs the join in Spark instead of DuckDB.
        ``known_at`` adds the second time axis: only rows ingested at or before it are seen, a
        datetime for all rows or the name of a spine column for a cut-off per row (what an
        online request at that time saw). DuckDB only.

        >>> df = fv.training_data(spine=spine_df)                             # doctest: +SKIP
        >>> df = fv.training_data(spine=spine_df, known_at="requested_at")    # doctest: +SKIP
        """
        result = point_in_time(
            self._ctx,
            self._spec.query,
            spine=spine,
            start=start,
            end=end,
            columns=self._spec.feature_columns(),
            labels=self._spec.label_sources,
            on_demand=self._spec.on_demand,
            engine=engine,
            known_at=known_at,
        )
        return from_arrow(result.table, format)

    def batch_data(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        spine: Any = None,
        training_dataset_version: int | None = None,
        with_entities: bool = False,
        format: str = "pandas",
        engine: Any = "duckdb",
    ) -> Any:
        """Point-in-time features for scoring, transformed with a training dataset's statistics.

        ``training_dataset_version=None`` takes the latest training dataset (needed only when
        the view has transformations). ``with_entities=True`` keeps key, time and spine columns.

        >>> X = fv.batch_data(start=day, end=next_day, training_dataset_version=1)
        ... # doctest: +SKIP
        """
        if training_dataset_version is None:
            td = training_datasets.latest(self._ctx, self._spec)
        else:
            td = training_datasets.get(self._ctx, self._spec, training_dataset_version)
        table = training_datasets.batch_data(
            self._ctx,
            self._spec,
            td,
            spine=spine,
            start=start,
            end=end,
            entities=with_entities,
            engine=engine,
        )
        return from_arrow(table, format)

    # ------------------------------------------------------------------ training datasets
    def create_training_dataset(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        spine: Any = None,
        split: Any = None,
        seed: int | None = None,
        description: str = "",
        engine: Any = "duckdb",
    ) -> TrainingDataset:
        """Create the next training dataset version: join, split, fit on train, describe, store.

        ``split``: ``{"train": 0.8, "test": 0.2}`` (random, reproducible by ``seed``) or
        ``{"train": (start, end), "test": (start, end)}`` (by event time, end exclusive).

        >>> td = fv.create_training_dataset(split={"train": 0.8, "test": 0.2}, seed=1)
        ... # doctest: +SKIP
        """
        spec = training_datasets.create(
            self._ctx,
            self._spec,
            start=start,
            end=end,
            spine=spine,
            split=split,
            seed=seed,
            description=description,
            engine=engine,
        )
        return TrainingDataset(self._ctx, self._spec, spec)

    def get_training_dataset(self, version: int) -> TrainingDataset:
        """A stored training dataset version; reads return the rows it was created with.

        >>> td = fv.get_training_dataset(1)                                   # doctest: +SKIP
        """
        return TrainingDataset(
            self._ctx, self._spec, training_datasets.get(self._ctx, self._spec, version)
        )

    def training_datasets(self, *, include_deprecated: bool = False) -> list[TrainingDataset]:
        """Every training dataset version, oldest first (deprecated ones on request)."""
        return [
            TrainingDataset(self._ctx, self._spec, s)
            for s in training_datasets.list_specs(
                self._ctx, self._spec, include_deprecated=include_deprecated
            )
        ]

    # ------------------------------------------------------------------ online
    _serving_td: int | None = None  # set by bind(): the default training dataset version

    def bind(self, *, training_dataset_version: int) -> FeatureView:
        """A handle whose feature vectors use ``training_dataset_version`` by default (what
        ``mv.feature_view()`` returns: the view bound to the model's training dataset).

        >>> fv1 = fv.bind(training_dataset_version=1)                         # doctest: +SKIP
        """
        training_datasets.get(self._ctx, self._spec, training_dataset_version)  # must exist
        bound = FeatureView(self._ctx, self._spec)
        bound._serving_td = training_dataset_version
        return bound

    def feature_vector(
        self,
        entity: Mapping[str, Any],
        *,
        request: Mapping[str, Any] | None = None,
        training_dataset_version: int | None = None,
        allow_missing: bool = False,
        format: str = "dict",
    ) -> Any:
        """One feature vector from the online store, as the model was trained on it.

        ``entity`` is the primary key of the left-most feature group; ``request`` holds the
        parameters of on-demand features. Transformations use the statistics of
        ``training_dataset_version`` (default: the latest training dataset, when the view has
        transformations). An unknown key raises NotFoundError unless ``allow_missing=True``
        (nulls). ``format``: "dict" (default), "list", "numpy", "pandas", "polars", "arrow".

        >>> fv.feature_vector({"flight_id": 7}, request={"dep_hour": 9},
        ...                   training_dataset_version=1)                      # doctest: +SKIP
        """
        return feature_vectors.for_view(
            self._ctx,
            self._spec,
            [entity],
            request=request,
            training_dataset_version=training_dataset_version or self._serving_td,
            allow_missing=allow_missing,
            format=format,
            single=True,
        )

    def feature_vectors(
        self,
        entities: Sequence[Mapping[str, Any]],
        *,
        request: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        training_dataset_version: int | None = None,
        allow_missing: bool = False,
        format: str = "dict",
    ) -> Any:
        """Feature vectors of many entities (one online read per feature group);
        ``request`` is one mapping for all entities or one per entity.

        >>> fv.feature_vectors([{"flight_id": 7}, {"flight_id": 8}], format="pandas")
        ... # doctest: +SKIP
        """
        return feature_vectors.for_view(
            self._ctx,
            self._spec,
            list(entities),
            request=request,
            training_dataset_version=training_dataset_version or self._serving_td,
            allow_missing=allow_missing,
            format=format,
            single=False,
        )

    def read_log(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        model: str | None = None,
        versions: str | Sequence[int] | None = None,
        format: str = "pandas",
    ) -> Any:
        """Logged predictions (``start <= logged_at < end``), oldest first: request id, time,
        keys, request parameters and features as columns, prediction, model and training
        dataset versions, transformed features as JSON.

        ``versions="all"`` (or a list of view versions) reads the logs of those versions of
        this view as one timeline, with a ``view_version`` column next to ``model_version``.

        >>> fv.read_log(start=datetime(2026, 1, 1, tzinfo=UTC), model="delays")  # doctest: +SKIP
        >>> fv.read_log(versions="all", model="delays")                       # doctest: +SKIP
        """
        if versions is not None:
            return prediction_logs.read_versions(
                self._ctx, self.name, versions, start=start, end=end, model=model, format=format
            )
        return prediction_logs.read(
            self._ctx, self.name, self.version, start=start, end=end, model=model, format=format
        )

    # ------------------------------------------------------------------ lifecycle
    @property
    def deprecated(self) -> bool:
        """Whether this version is deprecated (read from the registry)."""
        return record_state.is_deprecated(self._ctx, feature_views.KIND, self.name, self.version)

    def deprecate(self, deprecated: bool = True, *, reason: str = "") -> FeatureView:
        """Mark this version deprecated: kept and working, hidden from ``fs.feature_views()``,
        a ``DeprecatedWarning`` when opened. ``deprecate(False)`` undoes it."""
        record_state.set_deprecated(
            self._ctx, feature_views.KIND, self.name, self.version, deprecated, reason
        )
        return self

    def delete(self, *, force: bool = False) -> list[str]:
        """Delete this version. Refused (``DependantsError`` listing them) while training
        datasets, models, aliases or its prediction log depend on it, unless ``force=True``,
        which deletes those too. Its feature groups are kept. Returns what was deleted.

        >>> fs.get_feature_view("delays", version=1).delete(force=True)      # doctest: +SKIP
        """
        return deletion.delete(
            self._ctx, deletion.feature_view(self.name, self.version), force=force
        )
