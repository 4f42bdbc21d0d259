"""Feature group definitions in the registry: get-or-create, schema inference and evolution."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pyarrow as pa

from fti.backends.offline import SEQ
from fti.backends.online import OnlineTable
from fti.definitions.expectations import Expectation, check_expectations, check_on_invalid
from fti.definitions.feature_group import FeatureGroupSpec
from fti.definitions.fields import Field, arrow_type
from fti.errors import ConflictError, NotFoundError, SchemaError, ValidationError
from fti.services.context import StoreContext

__all__ = [
    "KIND",
    "add_features",
    "get_or_create",
    "get_spec",
    "list_specs",
    "offline_schema",
    "online_table",
    "set_columns",
    "set_expectations",
]

KIND = "feature_group"
# Expectation revisions and validation reports: their own event log, so a feature group's
# schema history stays a history of its schema.
QUALITY_KIND = "feature_group_quality"
_UNSET: Any = object()


def offline_schema(spec: FeatureGroupSpec) -> pa.Schema:
    """The Arrow schema of the offline table: user columns plus the ingestion sequence."""
    return pa.schema(
        [pa.field(c.name, arrow_type(c.dtype)) for c in spec.columns] + [pa.field(SEQ, pa.int64())]
    )


def online_table(spec: FeatureGroupSpec) -> OnlineTable:
    cols = {c.name: c.dtype for c in spec.columns}
    return OnlineTable(
        name=spec.key,
        keys=tuple((k, cols[k]) for k in spec.primary_key),
        features=tuple((c.name, c.dtype) for c in spec.feature_columns),
    )


def _load(ctx: StoreContext, name: str, version: int) -> tuple[FeatureGroupSpec, int] | None:
    rec = ctx.registry.get(KIND, name, version)
    if rec is None:
        return None
    return FeatureGroupSpec.from_dict(rec.body), rec.revision


def get_spec(ctx: StoreContext, name: str, version: int | None = None) -> FeatureGroupSpec:
    """The stored definition; latest version if ``version`` is None."""
    if version is None:
        versions = [r.version for r in ctx.registry.records(KIND, name)]
        if not versions:
            raise NotFoundError(_missing_message(ctx, name))
        version = max(versions)
    found = _load(ctx, name, version)
    if found is None:
        versions = [r.version for r in ctx.registry.records(KIND, name)]
        if versions:
            raise NotFoundError(
                f"Feature group {name!r} version {version} does not exist. "
                f"Existing versions: {versions}."
            )
        raise NotFoundError(_missing_message(ctx, name))
    return found[0]


def _missing_message(ctx: StoreContext, name: str) -> str:
    names = sorted({r.name for r in ctx.registry.records(KIND)})
    return (
        f"Feature group {name!r} does not exist. Existing feature groups: {names}. "
        f"Create it with fs.feature_group({name!r}, primary_key=[...])."
    )


def list_specs(ctx: StoreContext) -> list[FeatureGroupSpec]:
    return [FeatureGroupSpec.from_dict(r.body) for r in ctx.registry.records(KIND)]


def _differences(existing: FeatureGroupSpec, wanted: dict[str, Any]) -> list[str]:
    diffs = []
    for attr, value in wanted.items():
        if value is _UNSET:
            continue
        have = getattr(existing, attr)
        if attr == "columns":
            have_map = {c.name: c.dtype for c in have}
            for f in value:
                if f.name in have_map and have_map[f.name] != f.dtype:
                    diffs.append(f"column {f.name!r}: stored {have_map[f.name]}, given {f.dtype}")
            continue
        if attr == "expectations":
            have_ids, want_ids = [e.id for e in have], [e.id for e in value]
            if have_ids != want_ids:
                diffs.append(
                    f"expectations: stored {[e.describe() for e in have]}, given "
                    f"{[e.describe() for e in value]} (change them with fg.set_expectations)"
                )
            continue
        if have != value:
            diffs.append(f"{attr}: stored {have!r}, given {value!r}")
    return diffs


def get_or_create(
    ctx: StoreContext,
    name: str,
    *,
    version: int,
    primary_key: Sequence[str] | None,
    event_time: str | Any | None,
    online: bool | Any,
    ttl: timedelta | Any | None,
    description: str | Any,
    features: tuple[Field, ...] | Any,
    expectations: Any = _UNSET,
    on_invalid: str | Any = _UNSET,
) -> FeatureGroupSpec:
    """Return the stored feature group, or create it. Explicit arguments must match."""
    if expectations is not _UNSET:
        expectations = check_expectations(expectations)
    if on_invalid is not _UNSET:
        on_invalid = check_on_invalid(on_invalid)
    wanted: dict[str, Any] = {
        "primary_key": _UNSET if primary_key is None else tuple(primary_key),
        "event_time": event_time,
        "online": online,
        "ttl": ttl,
        "columns": features,
        "expectations": expectations,
        "on_invalid": on_invalid,
    }
    for _ in range(3):
        found = _load(ctx, name, version)
        if found is not None:
            spec = found[0]
            diffs = _differences(spec, wanted)
            if diffs:
                raise ConflictError(
                    f"Feature group {name!r} version {version} already exists with a different "
                    f"definition ({'; '.join(diffs)}). Use the stored definition, or create "
                    f"version {version + 1} with fs.feature_group({name!r}, version={version + 1}, "
                    "...)."
                )
            return spec
        if primary_key is None:
            raise NotFoundError(_missing_message(ctx, name))
        spec = FeatureGroupSpec(
            name=name,
            version=version,
            primary_key=tuple(primary_key),
            event_time=None if event_time is _UNSET else event_time,
            online=False if online is _UNSET else bool(online),
            ttl=None if ttl is _UNSET else ttl,
            description="" if description is _UNSET else str(description),
            columns=() if features is _UNSET else tuple(features),
            expectations=() if expectations is _UNSET else expectations,
            on_invalid="reject" if on_invalid is _UNSET else on_invalid,
            expectations_revision=1 if expectations not in (_UNSET, ()) else 0,
        )
        _check_declared(spec)
        try:
            ctx.registry.create(KIND, name, version, spec.to_dict())
        except ConflictError:
            continue  # created concurrently: compare against the winner
        ctx.registry.add_event(
            KIND, name, version, {"type": "created", "columns": _cols(spec.columns)}
        )
        if spec.expectations_revision:
            _record_revision(ctx, spec)
        return spec
    raise ConflictError(f"Feature group {name!r} version {version} keeps changing; retry.")


def _cols(columns: Sequence[Field]) -> list[dict[str, Any]]:
    return [c.to_dict() for c in columns]


def _check_declared(spec: FeatureGroupSpec) -> None:
    names = set(spec.column_names)
    for k in spec.primary_key:
        if k in names and spec.column(k).dtype in ("float32", "float64"):
            raise ValidationError(
                f"Primary key column {k!r} is declared as {spec.column(k).dtype}; floating point "
                "keys do not compare reliably. Use an int or string key."
            )
    if (
        spec.event_time
        and spec.event_time in names
        and spec.column(spec.event_time).dtype != "timestamp"
    ):
        raise ValidationError(
            f"Event time column {spec.event_time!r} is declared as "
            f"{spec.column(spec.event_time).dtype}; it must be 'timestamp' (timezone-aware)."
        )


def set_columns(
    ctx: StoreContext, spec: FeatureGroupSpec, columns: tuple[Field, ...], *, reason: str
) -> FeatureGroupSpec:
    """Store a new column list (first inference or additions) with compare-and-set."""
    found = _load(ctx, spec.name, spec.version)
    if found is None:
        raise NotFoundError(f"Feature group {spec.name!r} version {spec.version} was deleted.")
    stored, revision = found
    if stored.columns != spec.columns:
        # Someone else changed the schema first; the caller re-validates against theirs.
        raise ConflictError("schema changed concurrently")
    new = stored.with_columns(columns)
    _check_declared(new)
    ctx.registry.update(KIND, spec.name, spec.version, new.to_dict(), revision=revision)
    added = [c for c in columns if c not in spec.columns]
    ctx.registry.add_event(KIND, spec.name, spec.version, {"type": reason, "columns": _cols(added)})
    return new


def add_features(
    ctx: StoreContext, spec: FeatureGroupSpec, features: tuple[Field, ...]
) -> FeatureGroupSpec:
    """Add nullable feature columns in place (registry, offline table and online table)."""
    if not spec.has_schema:
        raise SchemaError(
            f"Feature group {spec.name!r} has no schema yet; pass features=... when creating it "
            "or insert data first."
        )
    existing = set(spec.column_names)
    clash = [f.name for f in features if f.name in existing]
    if clash:
        raise SchemaError(
            f"Feature group {spec.name!r} already has column(s) {clash}. Changing a column's "
            f"type needs a new version: fs.feature_group({spec.name!r}, version="
            f"{spec.version + 1}, ...)."
        )
    new = set_columns(ctx, spec, (*spec.columns, *features), reason="columns_added")
    if ctx.offline.exists(spec.key):
        version = ctx.offline.add_columns(
            spec.key, [pa.field(f.name, arrow_type(f.dtype)) for f in features]
        )
        if new.online:
            ctx.online.ensure_table(online_table(new))
            ctx.online.mark_applied(online_table(new), [version])
    return replace(new)


def _record_revision(ctx: StoreContext, spec: FeatureGroupSpec) -> None:
    ctx.registry.add_event(
        QUALITY_KIND,
        spec.name,
        spec.version,
        {
            "type": "expectations",
            "revision": spec.expectations_revision,
            "on_invalid": spec.on_invalid,
            "expectations": [e.to_dict() for e in spec.expectations],
        },
    )


def set_expectations(
    ctx: StoreContext,
    spec: FeatureGroupSpec,
    expectations: Sequence[Expectation],
    on_invalid: str | None,
) -> FeatureGroupSpec:
    """Replace the rules (and optionally the policy) as a new revision (compare-and-set)."""
    rules = check_expectations(expectations)
    policy = None if on_invalid is None else check_on_invalid(on_invalid)
    for _ in range(5):
        found = _load(ctx, spec.name, spec.version)
        if found is None:
            raise NotFoundError(f"Feature group {spec.name!r} version {spec.version} was deleted.")
        stored, revision = found
        new = replace(
            stored,
            expectations=rules,
            on_invalid=stored.on_invalid if policy is None else policy,
            expectations_revision=stored.expectations_revision + 1,
        )
        try:
            ctx.registry.update(KIND, spec.name, spec.version, new.to_dict(), revision=revision)
        except ConflictError:
            continue
        _record_revision(ctx, new)
        return new
    raise ConflictError(
        f"Feature group {spec.name!r} version {spec.version} keeps changing; retry."
    )
