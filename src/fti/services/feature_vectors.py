"""Feature vectors from the online store: the online half of a feature view.

For an entity (the primary key of the query's left-most feature group) the vector is built as
the point-in-time join would build it for the spine row ``(entity, now)``:

1. the left-most group's online row (one batched read for all entities);
2. each joined group, keyed by the join columns of the row built so far (one batched read per
   group, in join order, so a join may use a column an earlier join added);
3. on-demand features, from the stored features and the request parameters;
4. model-dependent transformations with the statistics fitted for the training dataset version;
5. the values in the order of the model's signature (or the feature view's output order).

An entity whose left-most row is unknown or expired is an error naming the key unless
``allow_missing=True``, which gives nulls. A joined group without a row for the key gives
nulls, exactly as the point-in-time join does.

Only the groups a vector needs are read (and must be online): those that give a model input,
and those whose columns key such a group's join or feed an on-demand feature. A group that gives
only labels (or nothing) is skipped and may be offline-only; when that is the left-most group,
the entity alone keys the joins and an unknown key gives nulls (as the join would).
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fti._internal.previews import preview
from fti.definitions.feature_view import FeatureViewSpec
from fti.definitions.on_demand import OnDemandFeature, compute_on_demand_row
from fti.definitions.query import Query
from fti.definitions.transformations import Transformation, apply_transformations_row
from fti.errors import NotFoundError, ValidationError
from fti.services import online_health, training_datasets
from fti.services.context import StoreContext
from fti.services.online_lookup import OnlineReader

__all__ = [
    "FORMATS",
    "VectorBatch",
    "VectorPlan",
    "for_view",
    "format_vectors",
    "online_groups",
    "plan_for_view",
    "plan_of",
    "resolve_fitted",
]

FORMATS = ("dict", "list", "pandas", "numpy", "polars", "arrow")


@dataclass(frozen=True)
class VectorBatch:
    """The vectors of a batch of entities, with what went into them (for prediction logs)."""

    names: list[str]  # vector order (transformed names)
    vectors: list[list[Any]]
    features: list[dict[str, Any]]  # untransformed, on-demand included
    missing: list[int]  # positions of entities without a left-most online row


class VectorPlan:
    """Prepared online lookups for one feature view version and training dataset version.

    Build once (e.g. per handle and training dataset version), call :meth:`compute` per request.
    """

    def __init__(
        self,
        ctx: StoreContext,
        query: Query,
        *,
        feature_names: Sequence[str],
        columns: Sequence[tuple[int, str, str]] | None = None,
        on_demand: Sequence[OnDemandFeature] = (),
        transformations: Mapping[str, Transformation] | None = None,
        fitted: Mapping[str, Mapping[str, Any]] | None = None,
        order: Sequence[str] | None = None,
        what: str = "feature view",
    ) -> None:
        self.what = what
        self.query = query
        cols = query.feature_columns() if columns is None else list(columns)
        needed = online_groups(query, cols, on_demand)
        self.groups = [query.selections[i].group for i in needed]
        for spec in self.groups:
            if not spec.online:
                raise ValidationError(
                    f"{what}: feature group {spec.name!r} version {spec.version} is not online, "
                    "so feature vectors cannot be read from the online store. Create the "
                    "feature group with online=True (a new version), or use batch data."
                )
        self._readers = {i: OnlineReader(ctx, query.selections[i].group) for i in needed}
        left = query.left.group
        # The left-most group's reader also checks the entities' keys when it is not read.
        self._left = self._readers.get(0) or OnlineReader(ctx, left)
        self._read_left = 0 in self._readers
        self.entity_keys = list(left.primary_key)
        # Each join: (reader index, [(row column, group key column)], [(source, output)]).
        self._joins: list[tuple[int, list[tuple[str, str]], list[tuple[str, str]]]] = []
        for i, j in enumerate(query.joins, start=1):
            if i not in self._readers:
                continue
            pairs = list(zip(j.left_on, j.right_on, strict=True))
            outputs = [(c, j.output_name(c)) for c in j.selection.features]
            self._joins.append((i, pairs, outputs))
        self.feature_names = list(feature_names)
        self.on_demand = list(on_demand)
        self.transformations = dict(transformations or {})
        self.fitted = dict(fitted or {})
        if self.transformations and not self.fitted:
            raise ValidationError(
                f"{what} has model-dependent transformations but no fitted statistics: pass "
                "training_dataset_version= of a training dataset created from it."
            )
        self._order = list(order) if order else None
        self.names = self._vector_names()
        # Per feature, in order: its transformation, statistics and output names, resolved once
        # (the per-row work is then exactly each transformation's ``transform_value``, which is
        # what ``apply_transformations_row`` runs too).
        self._steps: list[tuple[str, Transformation | None, Mapping[str, Any], list[str]]] = []
        for name in self.feature_names:
            t = self.transformations.get(name)
            if t is None:
                self._steps.append((name, None, {}, [name]))
                continue
            if name not in self.fitted:
                raise ValidationError(
                    f"{what}: no fitted statistics for the transformed column {name!r}. Use a "
                    "training dataset created from this feature view version."
                )
            stats = self.fitted[name]
            self._steps.append((name, t, stats, list(t.output_names(name, stats))))

    def _vector_names(self) -> list[str]:
        # Run a row of nulls through the transformations to learn the output names.
        row = dict.fromkeys(self.feature_names)
        if self.transformations:
            # An "error" encoder may refuse null; then the view's names are the best we know.
            with contextlib.suppress(ValidationError):
                row = apply_transformations_row(self.transformations, self.fitted, row)
        names = list(row)
        if self._order is not None:
            unknown = [n for n in self._order if n not in names]
            if unknown:
                raise ValidationError(
                    f"The model's signature names input(s) {unknown} that {self.what} does not "
                    f"produce (it produces {names}). Register the model with this feature view "
                    "and its training dataset."
                )
            return list(self._order)
        return names

    def problems(self) -> list[str]:
        """Why this plan cannot build vectors now (empty when it can): each feature group it
        reads is checked against the registry and probed through the online store."""
        return [p for reader in self._readers.values() for p in reader.problems()]

    def online_problems(self) -> list[str]:
        """Why the online store cannot answer for this plan's groups now (empty: it can)."""
        return online_health.problems(
            self._left.ctx, [r.spec for r in self._readers.values()]
        )

    def compute(
        self,
        entities: Sequence[Mapping[str, Any]],
        request: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        allow_missing: bool = False,
    ) -> VectorBatch:
        """Vectors for ``entities``; ``request`` is one mapping for all or one per entity."""
        n = len(entities)
        requests = _requests(request, n)
        if self._read_left:
            left_rows = self._left.rows(entities)
        else:
            for e in entities:
                self._left.encode_key(e)  # the entity must still be the left group's key
            left_rows = [dict(e) for e in entities]
        missing = [i for i, r in enumerate(left_rows) if r is None]
        if missing and not allow_missing:
            shown = [dict(entities[i]) for i in missing[:5]]
            group = self.query.left.group
            raise NotFoundError(
                f"No online row for {'key' if len(missing) == 1 else f'{len(missing)} keys'} "
                f"{preview(shown[0]) if len(missing) == 1 else preview(shown)} in feature group "
                f"{group.name!r} version {group.version} (unknown key, or older than the ttl). "
                "Pass allow_missing=True (model server: fti serve --allow-missing) to get nulls "
                "instead."
            )
        left_names = [*self._left.key_names, *self._left.value_names]
        rows: list[dict[str, Any]] = [
            r if r is not None else {**dict.fromkeys(left_names), **dict(entities[i])}
            for i, r in enumerate(left_rows)
        ]
        for index, pairs, outputs in self._joins:
            reader = self._readers[index]
            wanted: list[int] = []
            lookups: list[dict[str, Any]] = []
            for pos, row in enumerate(rows):
                key = {right: row.get(left) for left, right in pairs}
                if any(v is None for v in key.values()):
                    continue  # a null join key matches nothing, as in SQL
                wanted.append(pos)
                lookups.append(key)
            found = reader.rows(lookups) if lookups else []
            for row in rows:
                for _, out in outputs:
                    row.setdefault(out, None)
            for pos, hit in zip(wanted, found, strict=True):
                if hit is not None:
                    for source, out in outputs:
                        rows[pos][out] = hit[source]
        features: list[dict[str, Any]] = []
        vectors: list[list[Any]] = []
        base = self.feature_names
        for built, req in zip(rows, requests, strict=True):
            full = compute_on_demand_row(self.on_demand, built, req) if self.on_demand else built
            feats = {name: full.get(name) for name in base}
            features.append(feats)
            final = self._transform(feats) if self.transformations else feats
            vectors.append([final.get(name) for name in self.names])
        return VectorBatch(self.names, vectors, features, missing)

    def _transform(self, row: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, t, stats, names in self._steps:
            value = row[name]
            if t is None:
                out[name] = value
                continue
            try:
                values = t.transform_value(value, stats)
            except ValidationError as e:
                raise ValidationError(f"Column {name!r} ({t.kind}): {e}") from e
            if len(names) == 1:
                out[names[0]] = values[0]
            else:
                out.update(zip(names, values, strict=True))
        return out


def online_groups(
    query: Query,
    columns: Sequence[tuple[int, str, str]],
    on_demand: Sequence[OnDemandFeature] = (),
) -> list[int]:
    """Indexes of the selections a feature vector reads online, in query order.

    A selection is read if it gives a model input (a ``columns`` entry), if a read join is keyed
    on one of its columns, or if an on-demand feature reads one of its columns. The online row
    of the left-most group holds all its columns, a joined group's its selected outputs; the
    left-most group's primary key comes with the entity, so it needs no read.
    """
    left = query.left.group
    entity = set(left.primary_key)

    def producer(column: str, before: int) -> int | None:
        for k in range(before - 1, 0, -1):
            j = query.joins[k - 1]
            if column in (j.output_name(c) for c in j.selection.features):
                return k
        if column in entity or column not in left.column_names:
            return None
        return 0

    needed = {i for i, _src, _out in columns}
    for f in on_demand:
        for c in f.inputs:
            k = producer(c, len(query.joins) + 1)
            if k is not None:
                needed.add(k)
    for i in range(len(query.joins), 0, -1):
        if i in needed:
            for c in query.joins[i - 1].left_on:
                k = producer(c, i)
                if k is not None:
                    needed.add(k)
    return sorted(needed)


def _requests(
    request: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None, n: int
) -> list[Mapping[str, Any]]:
    if request is None:
        return [{}] * n
    if isinstance(request, Mapping):
        return [request] * n
    reqs = list(request)
    if len(reqs) != n:
        raise ValidationError(
            f"Got {len(reqs)} request mappings for {n} entities: pass one mapping for all "
            "entities or one per entity."
        )
    return reqs


def format_vectors(batch: VectorBatch, fmt: str, *, single: bool) -> Any:
    """Return vectors as dicts, lists, a pandas/polars frame, an Arrow table or a numpy array."""
    if fmt not in FORMATS:
        raise ValidationError(f"Unknown format {fmt!r}. Known formats: {list(FORMATS)}.")
    if fmt == "dict":
        dicts = [dict(zip(batch.names, v, strict=True)) for v in batch.vectors]
        return dicts[0] if single else dicts
    if fmt == "list":
        return batch.vectors[0] if single else batch.vectors
    if fmt == "numpy":
        import numpy as np

        array = np.array(
            [[np.nan if x is None else x for x in v] for v in batch.vectors], dtype=object
        )
        with contextlib.suppress(TypeError, ValueError):  # strings among them: keep objects
            array = array.astype(np.float64)
        return array[0] if single else array
    import pyarrow as pa

    from fti._internal.frames import from_arrow

    table = (
        pa.Table.from_pylist([dict(zip(batch.names, v, strict=True)) for v in batch.vectors])
        if batch.vectors
        else pa.table({n: pa.array([], pa.null()) for n in batch.names})
    )
    return from_arrow(table, fmt)


def plan_for_view(
    ctx: StoreContext,
    spec: FeatureViewSpec,
    *,
    fitted: Mapping[str, Mapping[str, Any]] | None,
    order: Sequence[str] | None = None,
) -> VectorPlan:
    """The plan of a feature view version; ``fitted`` are the statistics of a training dataset
    version (None: the view has no transformations, or untransformed vectors are wanted)."""
    return VectorPlan(
        ctx,
        spec.query,
        feature_names=spec.features,
        columns=spec.feature_columns(),
        on_demand=spec.on_demand,
        transformations=spec.transformations if fitted is not None else None,
        fitted=fitted,
        order=order,
        what=f"Feature view {spec.name!r} version {spec.version}",
    )


def resolve_fitted(
    ctx: StoreContext, spec: FeatureViewSpec, training_dataset_version: int | None
) -> tuple[int | None, dict[str, Any] | None]:
    """``(training dataset version, fitted statistics)`` to apply.

    No version given: a view without transformations needs none; a view with them uses its
    latest training dataset (and says so if it has none)."""
    if training_dataset_version is not None:
        td = training_datasets.get(ctx, spec, training_dataset_version)
        return td.version, dict(td.fitted)
    if not spec.transformations:
        return None, None
    latest = training_datasets.latest(ctx, spec)
    if latest is None:
        raise ValidationError(
            f"Feature view {spec.name!r} version {spec.version} has model-dependent "
            "transformations but no training dataset, so there are no fitted statistics to "
            "apply. Create one with fv.create_training_dataset(...) first."
        )
    return latest.version, dict(latest.fitted)


_Key = tuple[int, int | None, tuple[str, ...] | None]
_Cache = dict[_Key, tuple[FeatureViewSpec, VectorPlan]]
_plans: weakref.WeakKeyDictionary[StoreContext, _Cache] = weakref.WeakKeyDictionary()
_plans_lock = threading.Lock()
_MAX_PLANS = 256


# The latest training dataset version per view, valid while the registry's summary of training
# dataset records (their count and last change, one aggregate query) is unchanged: reading the
# records themselves (with their fitted statistics) on every request costs milliseconds.
_Fingerprint = tuple[int, datetime | None]
_latest: weakref.WeakKeyDictionary[StoreContext, dict[str, tuple[_Fingerprint, int | None]]] = (
    weakref.WeakKeyDictionary()
)


def _latest_training_dataset(ctx: StoreContext, spec: FeatureViewSpec) -> int | None:
    fingerprint = ctx.registry.summary(training_datasets.KIND)
    with _plans_lock:
        known = _latest.setdefault(ctx, {}).get(spec.key)
    if known is not None and known[0] == fingerprint:
        return known[1]
    version = training_datasets.latest_version(ctx, spec)
    with _plans_lock:
        cache = _latest.setdefault(ctx, {})
        if len(cache) >= _MAX_PLANS:
            cache.clear()
        cache[spec.key] = (fingerprint, version)
    return version


def plan_of(
    ctx: StoreContext,
    spec: FeatureViewSpec,
    training_dataset_version: int | None,
    *,
    order: Sequence[str] | None = None,
) -> tuple[int | None, VectorPlan]:
    """The vector plan of a feature view version and the training dataset version whose
    statistics it applies: the one given, else (for a view with transformations) the latest,
    resolved on every call so a new training dataset is picked up at once. ``order``: the
    model signature's input order (default: the view's).

    The one decision and the one plan cache behind ``fv.feature_vector(s)`` and the model
    server's ``/vectors`` and ``/predict``, so they cannot drift apart.
    """
    td_version = training_dataset_version
    if td_version is None and spec.transformations:
        td_version = _latest_training_dataset(ctx, spec)
        if td_version is None:
            resolve_fitted(ctx, spec, None)  # raises: says how to create one
    # Keyed by the spec object (kept alive in the entry, so its id is not reused): a handle
    # keeps its spec, a re-read definition builds a new plan.
    key = (id(spec), td_version, tuple(order) if order else None)
    with _plans_lock:
        found = _plans.setdefault(ctx, {}).get(key)
    if found is not None and found[0] is spec:
        return td_version, found[1]
    td_version, fitted = resolve_fitted(ctx, spec, td_version)
    plan = plan_for_view(ctx, spec, fitted=fitted, order=order)
    with _plans_lock:
        cache = _plans.setdefault(ctx, {})
        if len(cache) >= _MAX_PLANS:
            cache.clear()
        cache[key] = (spec, plan)
    return td_version, plan


def for_view(
    ctx: StoreContext,
    spec: FeatureViewSpec,
    entities: Sequence[Mapping[str, Any]],
    *,
    request: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
    training_dataset_version: int | None,
    allow_missing: bool,
    format: str,
    single: bool,
) -> Any:
    """``fv.feature_vector(s)``: vectors of ``entities`` in the requested format."""
    if format not in FORMATS:
        raise ValidationError(f"Unknown format {format!r}. Known formats: {list(FORMATS)}.")
    _, plan = plan_of(ctx, spec, training_dataset_version)
    batch = plan.compute(entities, request, allow_missing=allow_missing)
    return format_vectors(batch, format, single=single)
