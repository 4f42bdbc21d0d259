"""The model registry: versioned model artifacts with metrics, signature, aliases and lineage.

Records in the registry:

- ``("model", name, version)``: a :class:`ModelVersionSpec`. The artifact is written first, to
  ``models/<name>/<random id>/model.<ext>``; then the record is created ``ready`` by
  ``create_next``, which takes the version (gap-free under concurrency) in the same transaction.
  A writer that dies or loses its registry connection at any point leaves no version behind
  (at worst an artifact file nothing refers to). Records written ``pending``/``failed`` by older
  fti versions are listed but never loaded, aliased or returned as the latest.
- ``("model_alias", name, 1)``: ``{"aliases": {alias: version}}``, changed by compare-and-set,
  with every change appended to its event log. An alias names exactly one version.

Feature views and training datasets are read by duck typing (see :func:`signature_from`), so
this module does not depend on how they are implemented.
"""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from fti._internal.lineage_events import record_input, record_output
from fti._internal.names import check_identifier
from fti.backends.artifacts import ArtifactRef, sha256_file
from fti.definitions.feature_view import FeatureViewSpec
from fti.definitions.model_version import (
    ArtifactInfo,
    FeatureViewRef,
    ModelVersionSpec,
    TrainingDatasetRef,
    normalize_metrics,
    normalize_tags,
)
from fti.errors import (
    BackendUnavailableError,
    ConflictError,
    FtiError,
    IntegrityError,
    NotFoundError,
    ValidationError,
)
from fti.services import feature_views, model_formats, record_state, training_datasets
from fti.services.context import StoreContext
from fti.services.model_signature import (
    check_model_matches,
    feature_view_ref,
    signature_from,
    training_dataset_ref,
)

__all__ = [
    "ALIAS_KIND",
    "KIND",
    "alias_history",
    "aliases",
    "best",
    "get_spec",
    "list_specs",
    "load",
    "register",
    "remove_alias",
    "set_alias",
]

KIND = "model"
ALIAS_KIND = "model_alias"


def _artifact_key(name: str, path: Path) -> str:
    """A key no other registration uses (written before the version number is known)."""
    return f"models/{name}/{uuid.uuid4().hex}/{path.name}"


def register(
    ctx: StoreContext,
    name: str,
    model: object,
    *,
    metrics: Mapping[str, Any] | None = None,
    feature_view: Any = None,
    training_dataset: Any = None,
    input_example: Any = None,
    description: str = "",
    tags: Mapping[str, Any] | None = None,
    allow_pickle: bool = False,
) -> ModelVersionSpec:
    """Validate, save and register ``model`` as the next version of ``name``."""
    check_identifier(name, what="model")
    metric_values = normalize_metrics(metrics)
    tag_values = normalize_tags(tags)
    if not isinstance(description, str):
        raise ValidationError(f"The 'description' parameter must be a str. Got {description!r}.")
    fv_ref = None if feature_view is None else feature_view_ref(feature_view)
    td_ref = None if training_dataset is None else training_dataset_ref(training_dataset, fv_ref)
    if fv_ref is None and td_ref is not None:
        fv_ref = FeatureViewRef(td_ref.feature_view, td_ref.fv_version)
    view = feature_view
    if view is None and td_ref is not None:
        view = _stored_view(ctx, td_ref)
    dataset = training_dataset
    if td_ref is not None and not hasattr(dataset, "fitted"):
        dataset = _stored_dataset(ctx, view, td_ref) or dataset
    signature = signature_from(
        feature_view=view, training_dataset=dataset, input_example=input_example
    )
    check_model_matches(name, model, signature, fv_ref)

    with tempfile.TemporaryDirectory(prefix="fti-model-") as tmp:
        saved = model_formats.save_model(model, Path(tmp), allow_pickle=allow_pickle)
        # The artifact goes first, under a key of its own (no version number is known yet);
        # the record is then created in its final state in the one transaction that takes the
        # version. A failure at any point — the artifact write, a lost registry connection —
        # therefore leaves no version behind, only at worst an unreferenced file.
        key = _artifact_key(name, saved.path)
        stored = ctx.artifacts.put(key, saved.path)
        local = ArtifactInfo(key="", sha256=sha256_file(saved.path), size=saved.path.stat().st_size)
        if (stored.sha256, stored.size) != (local.sha256, local.size):
            with contextlib.suppress(FtiError, OSError):
                ctx.artifacts.delete(key)
            raise IntegrityError(
                f"Model {name!r}: the stored artifact hashes to {stored.sha256} ({stored.size} "
                f"bytes) but the saved file hashed to {local.sha256} ({local.size} bytes). "
                "Register it again."
            )

    def make_body(version: int) -> dict[str, Any]:
        spec = ModelVersionSpec(
            name=name,
            version=version,
            format=saved.format,
            artifact=replace(local, key=key),
            framework=saved.framework,
            signature=signature,
            metrics=metric_values,
            feature_view=fv_ref,
            training_dataset=td_ref,
            description=description,
            tags=tag_values,
            libraries=saved.libraries,
            format_options=saved.options,
            status="ready",
        )
        return spec.to_dict()

    try:
        rec = ctx.registry.create_next(KIND, name, make_body)
    except BackendUnavailableError:
        raise  # the record may exist after all (it could not be checked): keep its artifact
    except Exception:  # nothing was committed: the artifact is nobody's
        with contextlib.suppress(FtiError, OSError):
            ctx.artifacts.delete(key)
        raise
    ready = ModelVersionSpec.from_dict(rec.body)
    record_output(KIND, name, ready.version, sha256=ready.artifact.sha256, format=ready.format)
    return ready


def _stored_view(ctx: StoreContext, td: TrainingDatasetRef) -> Any:
    """The definition of a training dataset's feature view, if this store has it."""
    try:
        return feature_views.get_spec(ctx, td.feature_view, td.fv_version)
    except NotFoundError:
        return None


def _stored_dataset(ctx: StoreContext, view: Any, td: TrainingDatasetRef) -> Any:
    """The stored training dataset record (with its fitted statistics) of an fti feature view
    given only by version number; NotFoundError if that view has no such dataset."""
    spec = getattr(view, "spec", view)
    if not isinstance(spec, FeatureViewSpec):
        return None
    return training_datasets.get(ctx, spec, td.version)


# ---------------------------------------------------------------------------- reads
def _specs(ctx: StoreContext, name: str) -> list[ModelVersionSpec]:
    return [
        ModelVersionSpec.from_dict(r.body)
        for r in ctx.registry.records(KIND, name)
        if record_state.listed(r.body, include_deprecated=True)
    ]


def _missing_model(ctx: StoreContext, name: str) -> NotFoundError:
    names = sorted({r.name for r in ctx.registry.records(KIND)})
    return NotFoundError(
        f"Model {name!r} does not exist. Registered models: {names}. "
        f"Register one with fs.models.register({name!r}, model)."
    )


def get_spec(
    ctx: StoreContext, name: str, version: int | None = None, alias: str | None = None
) -> ModelVersionSpec:
    """One model version: by number, by alias, or the latest ready one."""
    if version is not None and alias is not None:
        raise ValidationError(
            f"Pass either version= or alias= for model {name!r}, not both "
            f"(got version={version!r}, alias={alias!r})."
        )
    if alias is not None:
        known = aliases(ctx, name)
        if alias not in known:
            if not ctx.registry.records(KIND, name):
                raise _missing_model(ctx, name)
            raise NotFoundError(
                f"Model {name!r} has no alias {alias!r}. Known aliases: "
                f"{dict(sorted(known.items()))}. Set one with "
                f"fs.models.set_alias({name!r}, {alias!r}, version)."
            )
        version = known[alias]
    if version is not None:
        if isinstance(version, bool) or not isinstance(version, int):
            raise ValidationError(f"The 'version' parameter must be an int. Got {version!r}.")
        rec = ctx.registry.get(KIND, name, version)
        if rec is None:
            versions = [s.version for s in _specs(ctx, name)]
            if not versions:
                raise _missing_model(ctx, name)
            raise NotFoundError(
                f"Model {name!r} version {version} does not exist. Existing versions: {versions}."
            )
        record_state.check_usable(rec)
        return ModelVersionSpec.from_dict(rec.body)
    specs = _specs(ctx, name)
    if not specs:
        raise _missing_model(ctx, name)
    ready = [s for s in specs if s.status == "ready"]
    if not ready:
        raise NotFoundError(
            f"Model {name!r} has no loadable version yet: "
            f"{[(s.version, s.status) for s in specs]}. Register it again."
        )
    return ready[-1]


def list_specs(
    ctx: StoreContext, name: str | None = None, *, include_deprecated: bool = False
) -> list[ModelVersionSpec]:
    """Every version of every model (or of one), by name then version (deprecated ones on
    request)."""
    if name is not None:
        check_identifier(name, what="model")
    return [
        ModelVersionSpec.from_dict(r.body)
        for r in ctx.registry.records(KIND, name)
        if record_state.listed(r.body, include_deprecated=include_deprecated)
    ]


def best(ctx: StoreContext, name: str, metric: str, direction: str = "max") -> ModelVersionSpec:
    """The ready version with the highest (``"max"``) or lowest (``"min"``) ``metric``.

    Ties go to the newest version.
    """
    if direction not in ("max", "min"):
        raise ValidationError(
            f"The 'direction' parameter must be 'max' or 'min'. Got {direction!r} instead."
        )
    specs = [s for s in _specs(ctx, name) if s.status == "ready"]
    if not specs:
        if not ctx.registry.records(KIND, name):
            raise _missing_model(ctx, name)
        raise NotFoundError(f"Model {name!r} has no loadable version yet.")
    scored = [s for s in specs if metric in s.metrics]
    if not scored:
        recorded = sorted({m for s in specs for m in s.metrics})
        raise NotFoundError(
            f"No version of model {name!r} has the metric {metric!r}. Recorded metrics: {recorded}."
        )
    sign = 1.0 if direction == "max" else -1.0
    return max(scored, key=lambda s: (sign * s.metrics[metric], s.version))


def load(
    ctx: StoreContext,
    spec: ModelVersionSpec,
    *,
    allow_pickle: bool = False,
    trusted: Sequence[str] = (),
    native: bool = False,
) -> Any:
    """Fetch the artifact, verify its sha256 and size, and load it.

    ``trusted`` names extra types a skops file may use beyond fti's fixed allow-list; it comes
    from the caller only, never from the registry. ``native``: see
    :func:`fti.services.model_formats.load_model` (what the model server loads).
    """
    if isinstance(trusted, str) or not all(isinstance(t, str) for t in trusted):
        raise ValidationError(
            f"The 'trusted' parameter must be a list of type names such as "
            f"['mypackage.MyTransformer']. Got {trusted!r}."
        )
    if spec.status != "ready":
        raise NotFoundError(
            f"Model {spec.name!r} version {spec.version} is {spec.status}: its artifact was "
            "never completely stored. Use another version or register the model again."
        )
    if spec.format == "pickle" and not allow_pickle:
        raise ValidationError(
            f"Model {spec.name!r} version {spec.version} was stored with pickle, and loading a "
            "pickle runs arbitrary code. If you trust this store, call "
            "mv.load(allow_pickle=True)."
        )
    ref = ArtifactRef(spec.artifact.key, spec.artifact.sha256, spec.artifact.size)
    with tempfile.TemporaryDirectory(prefix="fti-model-") as tmp:
        local = ctx.artifacts.fetch(ref, Path(tmp) / Path(spec.artifact.key).name)
        size = local.stat().st_size
        if size != spec.artifact.size:
            raise IntegrityError(
                f"Model {spec.name!r} version {spec.version}: artifact {spec.artifact.key!r} has "
                f"{size} bytes, recorded {spec.artifact.size}. Register the model again."
            )
        model = model_formats.load_model(
            local,
            spec.format,
            spec.format_options,
            allow_pickle=allow_pickle,
            trusted=trusted,
            what=f"Model {spec.name!r} version {spec.version}",
            native=native,
        )
    record_input(KIND, spec.name, spec.version, sha256=spec.artifact.sha256)
    return model


# ---------------------------------------------------------------------------- aliases
def aliases(ctx: StoreContext, name: str) -> dict[str, int]:
    """``{alias: version}`` of one model."""
    rec = ctx.registry.get(ALIAS_KIND, name, 1)
    return {} if rec is None else {str(k): int(v) for k, v in rec.body["aliases"].items()}


def _change_alias(ctx: StoreContext, name: str, alias: str, version: int | None) -> int | None:
    """Set (or remove, if ``version`` is None) an alias by compare-and-set; returns the
    version it pointed to before."""
    for _ in range(100):
        rec = ctx.registry.get(ALIAS_KIND, name, 1)
        current = {} if rec is None else dict(rec.body["aliases"])
        previous = current.get(alias)
        if version is None:
            current.pop(alias, None)
        else:
            current[alias] = version
        try:
            if rec is None:
                ctx.registry.create(ALIAS_KIND, name, 1, {"aliases": current})
            else:
                ctx.registry.update(
                    ALIAS_KIND, name, 1, {"aliases": current}, revision=rec.revision
                )
        except ConflictError:
            continue  # another writer changed the aliases: re-read and apply again
        ctx.registry.add_event(
            ALIAS_KIND,
            name,
            1,
            {
                "action": "set" if version else "remove",
                "alias": alias,
                "version": version,
                "previous": previous,
            },
        )
        return None if previous is None else int(previous)
    raise ConflictError(f"Could not change alias {alias!r} of model {name!r}: too many writers.")


def set_alias(ctx: StoreContext, name: str, alias: str, version: int) -> int | None:
    """Point ``alias`` at ``version`` (moving it if it pointed elsewhere); returns the old one."""
    check_identifier(alias, what="alias")
    spec = get_spec(ctx, name, version)
    if spec.status != "ready":
        raise ValidationError(
            f"Model {name!r} version {version} is {spec.status} and cannot be loaded, so it "
            "cannot carry an alias. Pick a ready version."
        )
    return _change_alias(ctx, name, alias, spec.version)


def remove_alias(ctx: StoreContext, name: str, alias: str) -> int:
    """Remove an alias; returns the version it pointed to."""
    known = aliases(ctx, name)
    if alias not in known:
        raise NotFoundError(
            f"Model {name!r} has no alias {alias!r}. Known aliases: {dict(sorted(known.items()))}."
        )
    previous = _change_alias(ctx, name, alias, None)
    return known[alias] if previous is None else previous


def alias_history(ctx: StoreContext, name: str) -> list[dict[str, Any]]:
    """Every alias change of one model, oldest first."""
    return ctx.registry.events(ALIAS_KIND, name, 1)
