"""Feature view definitions in the registry: get-or-create, get, list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fti.definitions.feature_group import FeatureGroupSpec
from fti.definitions.feature_view import FeatureViewSpec, normalize_labels
from fti.definitions.on_demand import OnDemandFeature
from fti.definitions.query import Query
from fti.definitions.transformations import Transformation
from fti.errors import ConflictError, NameConflictError, NotFoundError
from fti.services import feature_groups, record_state
from fti.services.context import StoreContext

__all__ = ["KIND", "get_or_create", "get_spec", "list_specs"]

KIND = "feature_view"


def _lookup(ctx: StoreContext, *, warn: bool = True) -> Any:
    cache: dict[tuple[str, int], FeatureGroupSpec] = {}

    def lookup(name: str, version: int) -> FeatureGroupSpec:
        if (name, version) not in cache:
            cache[(name, version)] = feature_groups.get_spec(ctx, name, version, warn=warn)
        return cache[(name, version)]

    return lookup


def _missing(ctx: StoreContext, name: str) -> str:
    names = sorted({r.name for r in ctx.registry.records(KIND)})
    return (
        f"Feature view {name!r} does not exist. Existing feature views: {names}. Create it with "
        f"fs.feature_view({name!r}, query=fg.select_all(), labels=[...])."
    )


def get_spec(ctx: StoreContext, name: str, version: int | None = None) -> FeatureViewSpec:
    """The stored definition (latest version if ``version`` is None); warns if deprecated."""
    records = ctx.registry.records(KIND, name)
    if not records:
        raise NotFoundError(_missing(ctx, name))
    if version is None:
        live = [r.version for r in records if record_state.listed(r.body, include_deprecated=True)]
        version = max(live or [r.version for r in records])
    rec = ctx.registry.get(KIND, name, version)
    if rec is None:
        raise NotFoundError(
            f"Feature view {name!r} version {version} does not exist. Existing versions: "
            f"{[r.version for r in records]}."
        )
    record_state.check_usable(rec)
    return FeatureViewSpec.from_dict(rec.body, _lookup(ctx))


def list_specs(ctx: StoreContext, *, include_deprecated: bool = False) -> list[FeatureViewSpec]:
    """Every feature view version, by name then version (deprecated ones on request)."""
    lookup = _lookup(ctx, warn=False)
    return [
        FeatureViewSpec.from_dict(r.body, lookup)
        for r in ctx.registry.records(KIND)
        if record_state.listed(r.body, include_deprecated=include_deprecated)
    ]


def get_or_create(
    ctx: StoreContext,
    name: str,
    *,
    version: int,
    query: Query | None,
    labels: Sequence[str] | None,
    transformations: Mapping[str, Transformation] | None,
    on_demand: Sequence[OnDemandFeature] | None,
    description: str | None,
) -> FeatureViewSpec:
    """Return the stored feature view, or create it; a given definition must match the stored."""
    for _ in range(3):
        rec = ctx.registry.get(KIND, name, version)
        if rec is not None:
            record_state.check_usable(rec)
            spec = FeatureViewSpec.from_dict(rec.body, _lookup(ctx))
            if query is not None:
                wanted = FeatureViewSpec(
                    name,
                    version,
                    query,
                    normalize_labels(labels),
                    dict(transformations or {}),
                    tuple(on_demand or ()),
                ).definition()
                have = spec.definition()
                diffs = [k for k in wanted if wanted[k] != have[k]]
                if diffs:
                    raise ConflictError(
                        f"Feature view {name!r} version {version} already exists with a "
                        f"different {', '.join(diffs)}. Use the stored definition (call "
                        f"fs.get_feature_view({name!r}, version={version})), or create version "
                        f"{version + 1}."
                    )
            return spec
        if query is None:
            raise NotFoundError(_missing(ctx, name))
        spec = FeatureViewSpec(
            name,
            version,
            query,
            normalize_labels(labels),
            dict(transformations or {}),
            tuple(on_demand or ()),
            description or "",
        )
        try:
            ctx.registry.create(KIND, name, version, spec.to_dict())
        except NameConflictError:
            raise
        except ConflictError:
            continue  # created concurrently: compare with the winner
        return spec
    raise ConflictError(f"Feature view {name!r} version {version} keeps changing; retry.")
