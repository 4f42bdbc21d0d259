"""Feature group definitions in the registry: get-or-create, schema inference and evolution."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from fti.backends.offline import SEQ
from fti.backends.online import OnlineTable
from fti.definitions.expectations import Expectation, check_expectations, check_on_invalid
from fti.definitions.feature_group import FeatureGroupSpec, normalize_tags
from fti.definitions.fields import Field, arrow_type
from fti.errors import (
    ConflictError,
    NameConflictError,
    NotFoundError,
    SchemaError,
    ValidationError,
)
from fti.services import record_state
from fti.services.context import StoreContext

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "KIND",
    "SCHEMA_RECHECK_SECONDS",
    "Unset",
    "add_features",
    "get_or_create",
    "get_spec",
    "list_specs",
    "offline_schema",
    "online_table",
    "set_columns",
    "set_expectations",
    "set_tags",
]

KIND = "feature_group"


class Unset:
    """The default of a get-or-create argument that was not passed: keep the stored value, or
    use ``default`` when the feature group is created. Its repr makes ``help()`` and
    ``inspect.signature`` show that (``online: bool = <stored, else False>``)."""

    __slots__ = ("default",)

    def __init__(self, default: Any) -> None:
        self.default = default

    def __repr__(self) -> str:
        return f"<stored, else {self.default!r}>"


_UNSET: Any = Unset(None)
# Expectation revisions and validation reports: their own event log, so a feature group's
# schema history stays a history of its schema.
QUALITY_KIND = "feature_group_quality"
# Names fti generates for its own groups (``<view>_log`` prediction logs, ``<pipeline>_events``
# stream replay logs, ``<model>_outcomes`` delayed labels); a user's group of that name would
# be written to by fti.
GENERATED_SUFFIXES = ("_log", "_events", "_outcomes")
# SQLite refuses tables named so (the online table is ``<name>_v<version>``).
RESERVED_PREFIXES = ("sqlite_",)


def check_new_name(name: str, *, generated: bool = False) -> None:
    """Reject, before anything is written, a name no backend can hold or fti generates."""
    folded = name.lower()
    for prefix in RESERVED_PREFIXES:
        if folded.startswith(prefix):
            raise ValidationError(
                f"Invalid feature group name {name!r}: the prefix {prefix!r} is reserved (SQLite "
                f"keeps its own tables under it). Rename it, e.g. {name[len(prefix) :] or 'fg'!r}."
            )
    if not generated:
        for suffix in GENERATED_SUFFIXES:
            if folded.endswith(suffix):
                raise ValidationError(
                    f"Invalid feature group name {name!r}: names ending in {suffix!r} are "
                    "reserved for the groups fti creates itself (prediction logs '<view>_log', "
                    "stream events '<pipeline>_events', model outcomes '<model>_outcomes'). "
                    f"Rename it, e.g. {name + '_fg'!r}."
                )


# How long a long-lived online reader (``fg.read_online``) trusts the definition it holds before
# asking the registry again. Another process may add columns (``fg.add_features``) at any time;
# re-reading the registry on every lookup would add a registry round trip to each online read,
# while a definition that is at most this old costs one registry read per second per handle.
# A stale definition is never wrong, only short of the new columns: a group's schema only grows
# (columns are added, never removed or retyped within a version), and online stores key their
# prepared statements by the whole definition.
SCHEMA_RECHECK_SECONDS = 1.0


def offline_schema(spec: FeatureGroupSpec) -> pa.Schema:
    """The Arrow schema of the offline table: user columns plus the ingestion sequence."""
    import pyarrow as pa

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


def _load(
    ctx: StoreContext, name: str, version: int, *, warn: bool = True
) -> tuple[FeatureGroupSpec, int] | None:
    rec = ctx.registry.get(KIND, name, version)
    if rec is None:
        return None
    record_state.check_usable(rec, warn=warn)
    return FeatureGroupSpec.from_dict(rec.body), rec.revision


def get_spec(
    ctx: StoreContext, name: str, version: int | None = None, *, warn: bool = True
) -> FeatureGroupSpec:
    """The stored definition; latest version if ``version`` is None. ``warn``: warn if it is
    deprecated (DeprecatedWarning)."""
    if version is None:
        records = ctx.registry.records(KIND, name)
        versions = [
            r.version for r in records if record_state.listed(r.body, include_deprecated=True)
        ]
        if not versions:
            raise NotFoundError(_missing_message(ctx, name))
        version = max(versions)
    found = _load(ctx, name, version, warn=warn)
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


def list_specs(ctx: StoreContext, *, include_deprecated: bool = False) -> list[FeatureGroupSpec]:
    """Every feature group version, by name then version (deprecated ones on request)."""
    return [
        FeatureGroupSpec.from_dict(r.body)
        for r in ctx.registry.records(KIND)
        if record_state.listed(r.body, include_deprecated=include_deprecated)
    ]


def _differences(existing: FeatureGroupSpec, wanted: dict[str, Any]) -> list[str]:
    diffs = []
    for attr, value in wanted.items():
        if isinstance(value, Unset):
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
        if attr == "tags":
            if have != value:
                diffs.append(
                    f"tags: stored {dict(have)}, given {dict(value)} (change them with "
                    "fg.set_tags)"
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
    generated: bool = False,
    expectations: Any = _UNSET,
    on_invalid: str | Any = _UNSET,
    tags: Any = _UNSET,
) -> FeatureGroupSpec:
    """Return the stored feature group, or create it. Explicit arguments must match.

    ``generated``: fti creates this group itself (a prediction log, a stream's events), so its
    reserved name suffix is allowed."""
    if not isinstance(expectations, Unset):
        expectations = check_expectations(expectations)
    if not isinstance(on_invalid, Unset):
        on_invalid = check_on_invalid(on_invalid)
    if not isinstance(tags, Unset):
        tags = normalize_tags(tags)
    wanted: dict[str, Any] = {
        "primary_key": _UNSET if primary_key is None else tuple(primary_key),
        "event_time": event_time,
        "online": online,
        "ttl": ttl,
        "columns": features,
        "expectations": expectations,
        "on_invalid": on_invalid,
        "tags": tags,
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
            event_time=None if isinstance(event_time, Unset) else event_time,
            online=False if isinstance(online, Unset) else bool(online),
            ttl=None if isinstance(ttl, Unset) else ttl,
            description="" if isinstance(description, Unset) else str(description),
            columns=() if isinstance(features, Unset) else tuple(features),
            expectations=() if isinstance(expectations, Unset) else expectations,
            on_invalid="reject" if isinstance(on_invalid, Unset) else on_invalid,
            expectations_revision=0 if isinstance(expectations, Unset) or not expectations else 1,
            tags=() if isinstance(tags, Unset) else tags,
        )
        _check_declared(spec)
        check_new_name(name, generated=generated)
        try:
            ctx.registry.create(KIND, name, version, spec.to_dict())
        except NameConflictError:
            raise
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
    found = _load(ctx, spec.name, spec.version, warn=False)
    if found is None:
        raise NotFoundError(f"Feature group {spec.name!r} version {spec.version} was deleted.")
    stored, revision = found
    if stored.columns != spec.columns:
        # Someone else changed the schema first; the caller re-validates against theirs.
        raise ConflictError("schema changed concurrently")
    new = stored.with_columns(columns)
    _check_declared(new)
    rec = ctx.registry.get(KIND, spec.name, spec.version)
    body = new.to_dict() if rec is None else record_state.carry(rec.body, new.to_dict())
    ctx.registry.update(KIND, spec.name, spec.version, body, revision=revision)
    added = [c for c in columns if c not in spec.columns]
    ctx.registry.add_event(KIND, spec.name, spec.version, {"type": reason, "columns": _cols(added)})
    return new


def add_features(
    ctx: StoreContext, spec: FeatureGroupSpec, features: tuple[Field, ...]
) -> FeatureGroupSpec:
    """Add nullable feature columns in place (registry, offline table and online table).

    Idempotent: columns that already exist with the same type are skipped (nothing at all is
    written if every column exists); an existing column with another type is an error."""
    if not spec.has_schema:
        raise SchemaError(
            f"Feature group {spec.name!r} has no schema yet; pass features=... when creating it "
            "or insert data first."
        )
    stored = {c.name: c.dtype for c in spec.columns}
    changed = [f for f in features if f.name in stored and stored[f.name] != f.dtype]
    if changed:
        detail = "; ".join(
            f"{f.name!r} is stored as {stored[f.name]}, given {f.dtype}" for f in changed
        )
        raise SchemaError(
            f"Feature group {spec.name!r} version {spec.version} already has column(s) with "
            f"another type: {detail}. A column's type cannot change in place: pass the stored "
            f"type, or create version {spec.version + 1} with the new type: "
            f"fs.feature_group({spec.name!r}, version={spec.version + 1}, ...)."
        )
    # Columns that exist with the same type are already there: adding them again is a no-op.
    features = tuple(f for f in features if f.name not in stored)
    if not features:
        return spec
    new = set_columns(ctx, spec, (*spec.columns, *features), reason="columns_added")
    if ctx.offline.exists(spec.key):
        import pyarrow as pa

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


def set_tags(
    ctx: StoreContext, spec: FeatureGroupSpec, tags: Mapping[str, Any]
) -> FeatureGroupSpec:
    """Replace the group's tags (compare-and-set; nothing else changes)."""
    wanted = normalize_tags(tags)
    for _ in range(5):
        found = _load(ctx, spec.name, spec.version)
        if found is None:
            raise NotFoundError(f"Feature group {spec.name!r} version {spec.version} was deleted.")
        stored, revision = found
        new = replace(stored, tags=wanted)
        try:
            ctx.registry.update(KIND, spec.name, spec.version, new.to_dict(), revision=revision)
        except ConflictError:
            continue
        return new
    raise ConflictError(
        f"Feature group {spec.name!r} version {spec.version} keeps changing; retry."
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
