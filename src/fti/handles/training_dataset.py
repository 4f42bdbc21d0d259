"""``TrainingDataset``: the handle returned by ``fv.create_training_dataset(...)``."""

from __future__ import annotations

from typing import Any

from fti.definitions.feature_view import FeatureViewSpec
from fti.definitions.training_dataset import TrainingDatasetSpec
from fti.services import deletion, record_state, training_datasets
from fti.services.context import StoreContext
from fti.services.profile_sketches import summarize

__all__ = ["TrainingDataset"]


class TrainingDataset:
    """A stored, reproducible training dataset version of a feature view version.

    >>> td = fv.create_training_dataset(split={"train": 0.8, "test": 0.2}, seed=7)
    ... # doctest: +SKIP
    >>> X_train, y_train = td.read("train")                                   # doctest: +SKIP
    """

    def __init__(self, ctx: StoreContext, fv: FeatureViewSpec, spec: TrainingDatasetSpec) -> None:
        self._ctx = ctx
        self._fv = fv
        self._spec = spec

    @property
    def spec(self) -> TrainingDatasetSpec:
        """The frozen record."""
        return self._spec

    @property
    def version(self) -> int:
        return self._spec.version

    @property
    def feature_view(self) -> str:
        return self._fv.name

    @property
    def feature_view_version(self) -> int:
        return self._fv.version

    @property
    def splits(self) -> list[str]:
        """Split names, e.g. ``["train", "test"]``."""
        return list(self._spec.files)

    @property
    def seed(self) -> int | None:
        return self._spec.seed

    @property
    def table_versions(self) -> dict[str, int | None]:
        """The offline table version read per feature group (``name_v<version>``)."""
        return dict(self._spec.table_versions)

    @property
    def fitted(self) -> dict[str, Any]:
        """Transformation statistics, fitted on the train split only."""
        return dict(self._spec.fitted)

    @property
    def statistics(self) -> dict[str, Any]:
        """Per split, per column: count, nulls, mean, std, min, max, distinct, histogram."""
        return dict(self._spec.statistics)

    def profile(self, split: str = "train") -> dict[str, dict[str, Any]]:
        """Statistics of a split from its stored sketches (the format of ``fg.statistics``):
        quantiles with their rank error, distinct estimates, frequent strings. The sketches
        merge with feature group commit profiles, e.g. as a monitoring reference."""
        return {
            name: summarize(p)
            for name, p in training_datasets.read_profile(self._ctx, self._spec, split).items()
        }

    def __repr__(self) -> str:
        rows = {k: v.get("rows") for k, v in self._spec.files.items()}
        return (
            f"TrainingDataset({self._fv.name!r}, feature_view_version={self._fv.version}, "
            f"version={self.version}, rows={rows})"
        )

    def read(self, split: str = "train", *, format: str = "pandas") -> tuple[Any, Any]:
        """``(X, y)`` of a split: features transformed with the train-fitted statistics, labels.

        ``y`` is a Series (one label), a frame (several) or None (no labels).

        >>> X_test, y_test = td.read("test")                                  # doctest: +SKIP
        """
        return training_datasets.read(self._ctx, self._fv, self._spec, split, format)

    def read_raw(self, split: str = "train", *, format: str = "pandas") -> Any:
        """The stored rows of a split, untransformed, with entity and label columns."""
        from fti._internal.frames import from_arrow

        return from_arrow(training_datasets.read_rows(self._ctx, self._spec, split), format)

    # ------------------------------------------------------------------ lifecycle
    @property
    def deprecated(self) -> bool:
        """Whether this version is deprecated (read from the registry)."""
        return record_state.is_deprecated(
            self._ctx, training_datasets.KIND, self._fv.key, self.version
        )

    def deprecate(self, deprecated: bool = True, *, reason: str = "") -> TrainingDataset:
        """Mark this version deprecated: kept and readable, hidden from
        ``fv.training_datasets()``, a ``DeprecatedWarning`` when opened. ``deprecate(False)``
        undoes it."""
        record_state.set_deprecated(
            self._ctx, training_datasets.KIND, self._fv.key, self.version, deprecated, reason
        )
        return self

    def delete(self, *, force: bool = False) -> list[str]:
        """Delete this version and its split files. Refused (``DependantsError``) while a
        registered model was trained on it, unless ``force=True``, which deletes those models
        (and their aliases) too. Returns what was deleted.

        >>> fv.get_training_dataset(1).delete()                              # doctest: +SKIP
        """
        node = deletion.training_dataset(self._fv.name, self._fv.version, self.version)
        return deletion.delete(self._ctx, node, force=force)
