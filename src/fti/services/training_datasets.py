"""Versioned training datasets: create (join, split, fit, describe, store), read, batch data.

Storage choice: each split's rows (untransformed: entity columns, spine columns, features and
labels) are written once as a Parquet file to the artifact store, with its sha256 checked on
every read. The record also pins the offline table version read per feature group, the split
definition and seed, and the transformation statistics fitted on the train split, so reading a
version again returns the same rows (also after later inserts, deletes or vacuums) and the same
transformed numbers.
"""

from __future__ import annotations

import secrets
import tempfile
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fti._internal.frames import from_arrow
from fti.backends.artifacts import ArtifactRef
from fti.definitions.feature_view import FeatureViewSpec
from fti.definitions.training_dataset import SplitSpec, TrainingDatasetSpec
from fti.definitions.transformations import apply_transformations, fit_transformations
from fti.errors import NotFoundError, ValidationError
from fti.services import profile_store, record_state
from fti.services.context import StoreContext
from fti.services.profile_sketches import ColumnProfile
from fti.services.statistics import describe
from fti.services.training_data import point_in_time

__all__ = [
    "KIND",
    "batch_data",
    "create",
    "get",
    "latest",
    "latest_version",
    "list_specs",
    "read",
    "read_rows",
]

KIND = "training_dataset"


def _times_us(table: pa.Table, column: str | None) -> np.ndarray | None:
    if column is None or column not in table.column_names:
        return None
    return np.asarray(table.column(column).cast(pa.int64()).to_numpy(zero_copy_only=False))


def create(
    ctx: StoreContext,
    fv: FeatureViewSpec,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    spine: Any = None,
    split: Any = None,
    seed: int | None = None,
    description: str = "",
    engine: Any = "duckdb",
) -> TrainingDatasetSpec:
    """Build, split, fit and store a new training dataset version of ``fv``."""
    split_spec = SplitSpec.parse(split)
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ValidationError(f"The 'seed' parameter must be an int. Got {seed!r} instead.")
    if seed is None and split_spec.kind == "random":
        seed = secrets.randbits(32)  # recorded, so the split stays reproducible
    result = point_in_time(
        ctx,
        fv.query,
        spine=spine,
        start=start,
        end=end,
        columns=fv.feature_columns(),
        labels=fv.label_sources,
        on_demand=fv.on_demand,
        engine=engine,
    )
    table = result.table
    parts = split_spec.assign(table.num_rows, seed=seed, times_us=_times_us(table, fv.event_time))
    tables = {name: table.take(pa.array(idx, pa.int64())) for name, idx in parts.items()}
    fit_on = tables[split_spec.fit_split]
    fitted = fit_transformations(fv.transformations, fit_on.select(list(fv.transformations)))
    statistics = {name: describe(t, engine=ctx.compute) for name, t in tables.items()}
    folder = f"training_datasets/{fv.key}/{uuid.uuid4().hex}"
    files: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="fti-td-") as tmp:
        for name, t in tables.items():
            path = Path(tmp) / f"{name}.parquet"
            pq.write_table(t, path, compression="zstd")
            ref = ctx.artifacts.put(f"{folder}/{name}.parquet", path)
            files[name] = {
                "key": ref.key,
                "sha256": ref.sha256,
                "size": ref.size,
                "rows": t.num_rows,
                "profile": _store_profile(ctx, t, f"{folder}/{name}.profile.parquet", tmp),
            }

    def body(version: int) -> dict[str, Any]:
        return TrainingDatasetSpec(
            feature_view=fv.name,
            feature_view_version=fv.version,
            version=version,
            split=split_spec,
            seed=seed,
            table_versions=result.table_versions,
            fitted=fitted,
            statistics=statistics,
            files=files,
            start=start,
            end=end,
            spine_rows=None if spine is None else table.num_rows,
            description=description,
        ).to_dict()

    record = ctx.registry.create_next(KIND, fv.key, body)
    return TrainingDatasetSpec.from_dict(record.body)


def list_specs(
    ctx: StoreContext, fv: FeatureViewSpec, *, include_deprecated: bool = False
) -> list[TrainingDatasetSpec]:
    """Every training dataset version of ``fv``, oldest first (deprecated ones on request)."""
    return [
        TrainingDatasetSpec.from_dict(r.body)
        for r in ctx.registry.records(KIND, fv.key)
        if record_state.listed(r.body, include_deprecated=include_deprecated)
    ]


def get(ctx: StoreContext, fv: FeatureViewSpec, version: int) -> TrainingDatasetSpec:
    """One version; warns if it is deprecated."""
    rec = ctx.registry.get(KIND, fv.key, version)
    if rec is None:
        have = [r.version for r in ctx.registry.records(KIND, fv.key)]
        raise NotFoundError(
            f"Feature view {fv.name!r} version {fv.version} has no training dataset version "
            f"{version}. Existing versions: {have}. Create one with fv.create_training_dataset()."
        )
    record_state.check_usable(rec)
    return TrainingDatasetSpec.from_dict(rec.body)


def latest(ctx: StoreContext, fv: FeatureViewSpec) -> TrainingDatasetSpec | None:
    """The newest version (a deprecated one too: it still works), None if there is none."""
    specs = list_specs(ctx, fv, include_deprecated=True)
    return specs[-1] if specs else None


def latest_version(ctx: StoreContext, fv: FeatureViewSpec) -> int | None:
    """The version :func:`latest` returns, without building every version's spec (a request
    path asks this on every call)."""
    versions = [
        r.version
        for r in ctx.registry.records(KIND, fv.key)
        if record_state.listed(r.body, include_deprecated=True)
    ]
    return max(versions, default=None)


def _store_profile(ctx: StoreContext, table: pa.Table, key: str, tmp: str) -> dict[str, Any]:
    """Mergeable sketches of a split (the format of feature group commit profiles), so the
    split can serve as a monitoring reference."""
    path = Path(tmp) / "profile.parquet"
    pq.write_table(profile_store.whole_table_rows(table, 0), path)
    ref = ctx.artifacts.put(key, path)
    return {"key": ref.key, "sha256": ref.sha256, "size": ref.size}


def read_profile(
    ctx: StoreContext, td: TrainingDatasetSpec, split: str
) -> dict[str, ColumnProfile]:
    """The stored sketches of one split, per column (sha256-verified)."""
    if split not in td.files:
        raise NotFoundError(
            f"Training dataset version {td.version} has no split {split!r}. Splits: "
            f"{list(td.files)}."
        )
    f = td.files[split].get("profile")
    if f is None:
        raise NotFoundError(
            f"Training dataset version {td.version} was created before splits stored sketches; "
            "create a new version to get them."
        )
    ref = ArtifactRef(key=str(f["key"]), sha256=str(f["sha256"]), size=int(f["size"]))
    with tempfile.TemporaryDirectory(prefix="fti-td-") as tmp:
        path = ctx.artifacts.fetch(ref, Path(tmp) / "profile.parquet")
        return profile_store.decode_profiles(pq.read_table(path))


def read_rows(ctx: StoreContext, td: TrainingDatasetSpec, split: str) -> pa.Table:
    """The stored, untransformed rows of one split (sha256-verified)."""
    if split not in td.files:
        raise NotFoundError(
            f"Training dataset version {td.version} has no split {split!r}. Splits: "
            f"{list(td.files)}."
        )
    f = td.files[split]
    ref = ArtifactRef(key=str(f["key"]), sha256=str(f["sha256"]), size=int(f["size"]))
    with tempfile.TemporaryDirectory(prefix="fti-td-") as tmp:
        path = ctx.artifacts.fetch(ref, Path(tmp) / "split.parquet")
        return pq.read_table(path)


def _transform(fv: FeatureViewSpec, fitted: Any, table: pa.Table) -> pa.Table:
    return apply_transformations(fv.transformations, fitted, table.select(fv.features))


def _labels(fv: FeatureViewSpec, table: pa.Table, fmt: str) -> Any:
    if not fv.labels:
        return None
    missing = [c for c in fv.labels if c not in table.column_names]
    if missing:
        raise ValidationError(f"Label column(s) {missing} are not in the data.")
    if len(fv.labels) == 1:
        column = table.column(fv.labels[0])
        if fmt == "pandas":
            return column.to_pandas().rename(fv.labels[0])
        if fmt == "polars":
            import polars as pl

            return pl.Series(fv.labels[0], column)
        return column
    return from_arrow(table.select(list(fv.labels)), fmt)


def read(
    ctx: StoreContext, fv: FeatureViewSpec, td: TrainingDatasetSpec, split: str, fmt: str
) -> tuple[Any, Any]:
    """``(X, y)``: transformed features (with the stored statistics) and labels of a split."""
    rows = read_rows(ctx, td, split)
    return from_arrow(_transform(fv, td.fitted, rows), fmt), _labels(fv, rows, fmt)


def batch_data(
    ctx: StoreContext,
    fv: FeatureViewSpec,
    td: TrainingDatasetSpec | None,
    *,
    spine: Any = None,
    start: datetime | None = None,
    end: datetime | None = None,
    entities: bool = False,
    engine: Any = "duckdb",
) -> pa.Table:
    """Point-in-time features of the latest table versions, transformed with ``td``'s statistics.

    ``entities=True`` puts the entity (key, event time) and spine columns first.
    """
    if td is None and fv.transformations:
        raise ValidationError(
            f"Feature view {fv.name!r} version {fv.version} has transformations but no training "
            "dataset to take their statistics from. Create one with "
            "fv.create_training_dataset(...) first."
        )
    result = point_in_time(
        ctx,
        fv.query,
        spine=spine,
        start=start,
        end=end,
        columns=fv.feature_columns(),  # no labels: a selected label is not a model input
        on_demand=fv.on_demand,
        engine=engine,
    )
    table = result.table
    features = _transform(fv, td.fitted if td else {}, table)
    if not entities:
        return features
    keep: Sequence[str] = [
        c for c in table.column_names if c not in fv.features and c not in fv.labels
    ]
    return pa.Table.from_arrays(
        [*table.select(list(keep)).columns, *features.columns],
        names=[*keep, *features.column_names],
    )
