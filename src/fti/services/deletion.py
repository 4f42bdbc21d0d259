"""Delete feature groups, feature views, training datasets and model versions.

A delete is refused while anything depends on its target -- a feature view on a group, a
training dataset or a model on a view, a model on a training dataset, an alias on a model
version, a view's prediction log on the view, a monitor on what it watches (its feature group
or view, its reference training dataset, its model) -- and the error lists every such dependant
(transitively). ``force=True`` deletes them first, deepest first, then the target.

The last live version of a model takes what belongs to the model rather than to a version: its
outcomes group ``<model>_outcomes`` (shared by all versions) and the monitors of the model as a
whole (a skew monitor of every version, a drift monitor of its logged requests); they are
dependants like the others, so deleting that version needs ``force=True`` while they exist.

Each object goes in three steps: its registry record is flagged ``deleting`` (from then on
every read refuses it, naming the call that finishes the job), then its data are removed
(offline table, online rows, artifacts), then the record and its event log. So a crash midway
never leaves a usable record pointing at missing files, nor files without a record that a
re-created object of the same name and version would pick up; running the delete again
finishes it. Nothing else is touched. Model and training dataset versions, whose numbers the
registry hands out, leave a stub record instead (hidden everywhere), so a number is never given
to another model: runs' lineage that names ``delays:3`` keeps meaning the deleted one.

A stream pipeline's group owns its replay log ``<name>_events`` (same version) and its
checkpoint: they go with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fti.backends.registry import Record
from fti.definitions.feature_group import FeatureGroupSpec
from fti.errors import DependantsError, NotFoundError
from fti.services import (
    feature_groups,
    model_registry,
    monitoring,
    outcomes,
    profile_store,
    record_state,
    stream_checkpoints,
    validation,
)
from fti.services.context import StoreContext

__all__ = [
    "Node",
    "dependants",
    "delete",
    "feature_group",
    "feature_view",
    "model_version",
    "training_dataset",
]

_FG = "feature_group"
_FV = "feature_view"
_TD = "training_dataset"
_MODEL = "model"
_ALIAS = "model_alias"
_CHECKPOINT = stream_checkpoints.KIND
_MONITOR = monitoring.KIND
_LOG_SUFFIX = "_log"
_EVENTS_SUFFIX = "_events"


@dataclass(frozen=True)
class Node:
    """One deletable thing: a registry record, or an alias of a model version."""

    kind: str
    name: str  # the registry record's name (a training dataset's is its view's key)
    version: int
    alias: str | None = None  # kind "model_alias" only
    label: str = ""

    @property
    def key(self) -> tuple[str, str, int, str | None]:
        return (self.kind, self.name, self.version, self.alias)


def _node(rec: Record) -> Node:
    return Node(
        rec.kind,
        rec.name,
        rec.version,
        label=record_state.describe(rec.kind, rec.name, rec.version, rec.body),
    )


def feature_group(name: str, version: int) -> Node:
    return Node(_FG, name, version, label=record_state.describe(_FG, name, version))


def feature_view(name: str, version: int) -> Node:
    return Node(_FV, name, version, label=record_state.describe(_FV, name, version))


def training_dataset(view: str, view_version: int, version: int) -> Node:
    body = {"feature_view": view, "feature_view_version": view_version}
    label = record_state.describe(_TD, view, version, body)
    return Node(_TD, f"{view}_v{view_version}", version, label=label)


def model_version(name: str, version: int) -> Node:
    return Node(_MODEL, name, version, label=record_state.describe(_MODEL, name, version))


# ---------------------------------------------------------------------------- dependants
def _uses_group(view_body: dict[str, Any], name: str, version: int) -> bool:
    query = view_body.get("query", {})
    selections = [query.get("left", {})] + [j.get("selection", {}) for j in query.get("joins", [])]
    return any(s.get("feature_group") == name and s.get("version") == version for s in selections)


def _live(records: list[Record]) -> list[Record]:
    return [r for r in records if not record_state.is_retired(r)]


def _models(ctx: StoreContext, match: Any) -> list[Node]:
    return [_node(r) for r in _live(ctx.registry.records(_MODEL)) if match(r.body)]


def _monitors(ctx: StoreContext, match: Any) -> list[Node]:
    return [
        Node(_MONITOR, r.name, r.version, label=f"monitor {r.name!r}")
        for r in ctx.registry.records(_MONITOR)
        if match(r.body)
    ]


def _watching(kind: str, name: str, version: int | None) -> Any:
    """A match for monitors whose source is ``(kind, name, version)``."""
    want = {"kind": kind, "name": name, "version": version}
    return lambda body: body.get("source") == want


def _model_parts(ctx: StoreContext, node: Node) -> list[Node]:
    """What the model as a whole owns, when ``node`` is its last live version: monitors of
    every version or of its logged requests, and its outcomes group."""
    others = [
        r for r in _live(ctx.registry.records(_MODEL, node.name)) if r.version != node.version
    ]
    if others:
        return []

    def of_model(body: dict[str, Any]) -> bool:
        return _watching(_MODEL, node.name, None)(body) or (
            (body.get("detection") or {}).get("model") == node.name
        )

    out = _monitors(ctx, of_model)
    group = ctx.registry.get(_FG, outcomes.group_name(node.name), 1)
    if group is not None and not record_state.is_retired(group):
        out.append(_node(group))
    return out


def _direct(ctx: StoreContext, node: Node) -> list[Node]:
    """What depends on ``node`` directly."""
    if node.kind == _FG:
        return [
            _node(r)
            for r in ctx.registry.records(_FV)
            if _uses_group(r.body, node.name, node.version)
        ] + _monitors(ctx, _watching(_FG, node.name, node.version))
    if node.kind == _FV:
        out = [_node(r) for r in _live(ctx.registry.records(_TD, f"{node.name}_v{node.version}"))]
        view = {"name": node.name, "version": node.version}

        def trained_on_view(body: dict[str, Any]) -> bool:
            td = body.get("training_dataset") or {}
            on_td = (td.get("feature_view"), td.get("fv_version")) == (node.name, node.version)
            return body.get("feature_view") == view or on_td

        out += _models(ctx, trained_on_view)
        out += _monitors(ctx, _watching(_FV, node.name, node.version))
        log = ctx.registry.get(_FG, node.name + _LOG_SUFFIX, node.version)
        return out + ([_node(log)] if log is not None else [])
    if node.kind == _TD:
        rec = ctx.registry.get(_TD, node.name, node.version)
        if rec is None:
            return []
        want = {
            "feature_view": rec.body.get("feature_view"),
            "fv_version": rec.body.get("feature_view_version"),
            "version": node.version,
        }
        of_view = _watching(_FV, str(want["feature_view"]), rec.body.get("feature_view_version"))
        reference = {"kind": _TD, "version": node.version}

        def on_td(body: dict[str, Any]) -> bool:
            return bool(of_view(body)) and body.get("reference") == reference

        return _models(ctx, lambda body: body.get("training_dataset") == want) + _monitors(
            ctx, on_td
        )
    if node.kind == _MODEL:
        known = model_registry.aliases(ctx, node.name)
        pinned = _monitors(ctx, _watching(_MODEL, node.name, node.version))
        return (
            pinned
            + _model_parts(ctx, node)
            + [
                Node(
                    _ALIAS,
                    node.name,
                    node.version,
                    alias=a,
                    label=f"alias {a!r} of model {node.name!r} version {node.version}",
                )
                for a, v in sorted(known.items())
                if v == node.version
            ]
        )
    return []


def dependants(ctx: StoreContext, node: Node) -> list[Node]:
    """Everything that depends on ``node``, transitively, in a safe deletion order (an object
    comes after everything that depends on it)."""
    order: list[Node] = []
    seen: set[tuple[str, str, int, str | None]] = {node.key}

    def visit(n: Node) -> None:
        for d in _direct(ctx, n):
            if d.key not in seen:
                seen.add(d.key)
                visit(d)
                order.append(d)

    visit(node)
    return order


def _owned(ctx: StoreContext, node: Node) -> list[Node]:
    """Parts that exist only for ``node`` and go with it without ``force``."""
    if node.kind != _FG:
        return []
    out: list[Node] = []
    base = node.name.removesuffix(_EVENTS_SUFFIX)
    checkpoint = ctx.registry.get(_CHECKPOINT, f"{base}_v{node.version}", 1)
    if checkpoint is not None:
        out.append(
            Node(_CHECKPOINT, checkpoint.name, 1, label=f"stream checkpoint {checkpoint.name!r}")
        )
        events = ctx.registry.get(_FG, base + _EVENTS_SUFFIX, node.version)
        if events is not None and events.name != node.name:
            out.append(_node(events))
    return out


# ---------------------------------------------------------------------------- deletion
def delete(ctx: StoreContext, node: Node, *, force: bool = False) -> list[str]:
    """Delete ``node`` (with its dependants if ``force``); returns what was deleted, in order.

    DependantsError (listing them) if something depends on it and ``force`` is False;
    NotFoundError if it does not exist."""
    target = ctx.registry.get(node.kind, node.name, node.version)
    if target is None or record_state.is_retired(target):
        raise NotFoundError(f"Cannot delete the {node.label}: it does not exist.")
    deps = dependants(ctx, node)
    if deps and not force:
        labels = [d.label for d in deps]
        raise DependantsError(
            f"Cannot delete the {node.label}: {len(labels)} object(s) depend on it: "
            f"{'; '.join(labels)}. Delete them first, or pass force=True (CLI: --force) to "
            "delete them with it.",
            labels,
        )
    done: list[str] = []
    for d in [*deps, node]:
        for part in [*_owned(ctx, d), d]:
            _delete_one(ctx, part)
            if part.label not in done:
                done.append(part.label)
    return done


def _delete_one(ctx: StoreContext, node: Node) -> None:
    if node.kind == _MONITOR:
        if ctx.registry.get(_MONITOR, node.name, node.version) is not None:
            monitoring.delete(ctx, node.name)  # its schedule and runs, then the monitor
        return
    if node.kind == _ALIAS:
        if model_registry.aliases(ctx, node.name).get(node.alias or "") == node.version:
            model_registry.remove_alias(ctx, node.name, node.alias or "")
        return
    rec = record_state.mark_deleting(ctx, node.kind, node.name, node.version)
    if rec is None:
        return  # deleted meanwhile (another process, or a dependant listed twice)
    if node.kind == _FG:
        spec = FeatureGroupSpec.from_dict(rec.body)
        if spec.online and spec.has_schema:
            ctx.online.drop(feature_groups.online_table(spec))
        # the table, its quarantined rows and its commit profiles; then its quality reports
        for table in (
            spec.key,
            validation.quarantine_table(spec),
            profile_store.profile_table(spec),
        ):
            ctx.offline.drop(table)
        ctx.registry.delete(feature_groups.QUALITY_KIND, spec.name, spec.version)
    elif node.kind == _TD:
        for f in rec.body.get("files", {}).values():
            ctx.artifacts.delete(str(f["key"]))
            if f.get("profile"):  # the split's sketches
                ctx.artifacts.delete(str(f["profile"]["key"]))
    elif node.kind == _MODEL:
        artifact = rec.body.get("artifact") or {}
        if artifact.get("key"):
            ctx.artifacts.delete(str(artifact["key"]))
    if node.kind in (_TD, _MODEL):
        record_state.retire(ctx, rec)
    else:
        ctx.registry.delete(node.kind, node.name, node.version)
