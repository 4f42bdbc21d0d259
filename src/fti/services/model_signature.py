"""Model signatures and lineage references, read from feature views, training datasets and
input examples by duck typing (so the registry does not depend on how those are built).

What is read:

- **an fti feature view** (a handle with ``.spec``, or a ``FeatureViewSpec``): the exact model
  inputs — its features in order, with their feature-group / on-demand dtypes, expanded by its
  model-dependent transformations with the statistics fitted for the training dataset (e.g. one
  column per one-hot category). A view with transformations therefore needs the training
  dataset (``td.fitted``) the model was trained on.
- **any other feature view** ``fv``: ``fv.name`` and ``fv.version``; its model inputs from
  the first of ``fv.feature_schema``, ``fv.features``, ``fv.schema``, ``fv.feature_names``
  that exists (an attribute, or a method called without arguments); ``fv.labels`` (names) are
  removed from the inputs and recorded as the outputs.
- **training dataset** ``td``: ``td.version``; its feature view from ``td.feature_view`` (a
  handle with ``.name``/``.version``, or a name) with ``td.feature_view_version`` /
  ``td.fv_version`` when it is a name; a plain mapping ``{"feature_view", "fv_version",
  "version"}`` works too. Its inputs are read like a feature view's and win over the feature
  view's, because a training dataset knows the columns its fitted transformations produce
  (e.g. one column per one-hot category).
- **input example**: a pandas/polars/pyarrow frame or list of dicts (column names and fti
  dtypes), or a 2-D numpy array (columns named ``"0"``, ``"1"``, ...).

A schema may be a mapping ``{name: dtype}``, a ``pyarrow.Schema``, a sequence of names, of
objects with ``.name`` and ``.dtype`` (or ``.type``), of ``(name, dtype)`` pairs or of dicts
with ``"name"``. dtypes are fti dtype names where they map, else the Arrow type's text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from fti._internal.frames import to_arrow
from fti.definitions.fields import arrow_type, dtype_of
from fti.definitions.model_version import (
    FeatureViewRef,
    Signature,
    SignatureField,
    TrainingDatasetRef,
)
from fti.definitions.transformations import apply_transformations
from fti.errors import FtiError, ValidationError
from fti.services.model_formats import model_feature_info

__all__ = [
    "SCHEMA_ATTRIBUTES",
    "check_model_matches",
    "feature_view_ref",
    "signature_from",
    "training_dataset_ref",
    "view_inputs",
]

SCHEMA_ATTRIBUTES = ("feature_schema", "features", "schema", "feature_names")


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{what} must be an int. Got {value!r}.")
    return value


def feature_view_ref(fv: Any) -> FeatureViewRef:
    """``(fv.name, fv.version)`` of a feature view handle (or any object with both)."""
    name = getattr(fv, "name", None)
    version = getattr(fv, "version", None)
    if not isinstance(name, str) or version is None:
        raise ValidationError(
            "The 'feature_view' parameter must be a feature view (an object with .name and "
            f".version), e.g. fs.get_feature_view('delays', version=1). Got {fv!r}."
        )
    return FeatureViewRef(name, _int(version, "The feature view's version"))


def training_dataset_ref(td: Any, fv: FeatureViewRef | None) -> TrainingDatasetRef:
    """Which feature view version and dataset version ``td`` is."""
    if isinstance(td, Mapping):
        try:
            ref = TrainingDatasetRef(
                str(td["feature_view"]),
                _int(td["fv_version"], "fv_version"),
                _int(td["version"], "version"),
            )
        except KeyError as e:
            raise ValidationError(
                f"A training_dataset mapping needs the keys 'feature_view', 'fv_version' and "
                f"'version'; {e} is missing."
            ) from None
    elif isinstance(td, int) and not isinstance(td, bool):
        if fv is None:
            raise ValidationError(
                f"training_dataset={td} is a bare version number: pass feature_view= too, or "
                "pass the training dataset object itself."
            )
        ref = TrainingDatasetRef(fv.name, fv.version, td)
    else:
        version = getattr(td, "version", None)
        owner = getattr(td, "feature_view", None)
        fv_name: Any = getattr(td, "feature_view_name", None)
        fv_version: Any = getattr(td, "feature_view_version", getattr(td, "fv_version", None))
        if owner is not None and not isinstance(owner, str) and hasattr(owner, "name"):
            fv_name, fv_version = owner.name, getattr(owner, "version", fv_version)
        elif isinstance(owner, str):
            fv_name = owner
        if fv_name is None and fv is not None:
            fv_name, fv_version = fv.name, fv.version if fv_version is None else fv_version
        if version is None or not isinstance(fv_name, str) or fv_version is None:
            raise ValidationError(
                "The 'training_dataset' parameter must be a training dataset (with .version and "
                "its feature view's name and version), e.g. fv.create_training_dataset(...). "
                f"Got {td!r}."
            )
        ref = TrainingDatasetRef(
            fv_name,
            _int(fv_version, "The training dataset's feature view version"),
            _int(version, "The training dataset's version"),
        )
    if fv is not None and (ref.feature_view, ref.fv_version) != (fv.name, fv.version):
        raise ValidationError(
            f"Training dataset version {ref.version} belongs to feature view "
            f"{ref.feature_view!r} version {ref.fv_version}, not to the given feature view "
            f"{fv.name!r} version {fv.version}. Pass the feature view it was created from."
        )
    return ref


# ---------------------------------------------------------------------------- schemas
def _dtype(value: Any) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, str):
        return value
    inner = getattr(value, "dtype", None)
    if isinstance(inner, str):
        return inner  # an fti Field
    if isinstance(value, pa.DataType):
        try:
            return dtype_of(value, column="?")
        except FtiError:
            return str(value)
    return str(value)


def _field(item: Any) -> SignatureField | None:
    if isinstance(item, str):
        return SignatureField(item)
    if isinstance(item, Mapping) and isinstance(item.get("name"), str):
        return SignatureField(item["name"], _dtype(item.get("dtype", item.get("type"))))
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        return SignatureField(item[0], _dtype(item[1]))
    name = getattr(item, "name", None)
    if isinstance(name, str):
        dtype = getattr(item, "dtype", None)
        return SignatureField(
            name, _dtype(dtype if dtype is not None else getattr(item, "type", None))
        )
    return None


def _as_fields(value: Any) -> tuple[SignatureField, ...] | None:
    if isinstance(value, Mapping):
        return tuple(SignatureField(str(k), _dtype(v)) for k, v in value.items())
    if isinstance(value, str | bytes):
        return None
    try:
        items = list(value)
    except TypeError:
        return None
    fields = [_field(i) for i in items]
    if any(f is None for f in fields):
        return None
    return tuple(f for f in fields if f is not None)


def _read_schema(obj: Any) -> tuple[SignatureField, ...] | None:
    for attr in SCHEMA_ATTRIBUTES:
        try:
            value = getattr(obj, attr, None)
            if callable(value) and not isinstance(value, Mapping):
                value = value()
        except TypeError:
            continue  # a method that needs arguments: not a schema getter
        if value is None:
            continue
        fields = _as_fields(value)
        if fields:
            return fields
    return None


def _labels(obj: Any) -> list[str]:
    value = getattr(obj, "labels", None)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    out = []
    for item in value:
        f = _field(item)
        if f is not None:
            out.append(f.name)
    return out


def _split(
    fields: tuple[SignatureField, ...], labels: list[str]
) -> tuple[tuple[SignatureField, ...], tuple[SignatureField, ...]]:
    by_name = {f.name: f for f in fields}
    inputs = tuple(f for f in fields if f.name not in labels)
    outputs = tuple(by_name.get(n, SignatureField(n)) for n in labels)
    return inputs, outputs


def _label_dtype(feature_view: Any, label: str) -> str:
    """A label's dtype in the feature group it comes from ("unknown" for a spine column)."""
    spec = getattr(feature_view, "spec", feature_view)
    try:
        for source in spec.label_sources:
            if source.name == label and source.selection is not None:
                group = spec.query.selections[source.selection].group
                return str(group.column(source.column).dtype)
    except (AttributeError, KeyError, IndexError):
        pass
    return "unknown"


def _example_fields(example: Any) -> tuple[SignatureField, ...]:
    if type(example).__module__.split(".")[0] == "numpy":
        shape: tuple[int, ...] = tuple(getattr(example, "shape", ()))
        if len(shape) != 2:
            raise ValidationError(
                f"An input_example array must be 2-D (rows x features). Got shape {shape}."
            )
        return tuple(SignatureField(str(i), str(example.dtype)) for i in range(shape[1]))
    table = to_arrow(example, what="input_example")
    return tuple(SignatureField(f.name, _dtype(f.type)) for f in table.schema)


def _raw_dtypes(spec: Any) -> dict[str, str]:
    """Output name -> dtype of every selected and on-demand feature of a FeatureViewSpec."""
    query = spec.query
    out = {c: query.left.group.column(c).dtype for c in query.left.features}
    for j in query.joins:
        for c in j.selection.features:
            out[j.output_name(c)] = j.selection.group.column(c).dtype
    for f in getattr(spec, "on_demand", ()):
        out[f.name] = f.dtype
    return out


def view_inputs(feature_view: Any, training_dataset: Any) -> tuple[SignatureField, ...] | None:
    """The exact model inputs of an fti feature view (None for other objects)."""
    spec = getattr(feature_view, "spec", feature_view)
    transformations = getattr(spec, "transformations", None)
    if not callable(getattr(getattr(spec, "query", None), "selected_features", None)):
        return None
    if not isinstance(transformations, Mapping):
        return None
    dtypes = _raw_dtypes(spec)
    names = list(spec.features)
    if not transformations:
        return tuple(SignatureField(n, dtypes.get(n, "unknown")) for n in names)
    fitted = getattr(training_dataset, "fitted", None)
    if not isinstance(fitted, Mapping):
        raise ValidationError(
            f"Feature view {spec.name!r} version {spec.version} has model-dependent "
            f"transformations ({sorted(transformations)}), so the model's inputs depend on the "
            "statistics fitted for its training dataset. Pass training_dataset=td (the one the "
            "model was trained on)."
        )
    empty = pa.table({n: pa.array([], type=arrow_type(dtypes[n])) for n in names})
    out = apply_transformations(transformations, fitted, empty)
    return tuple(SignatureField(f.name, _dtype(f.type)) for f in out.schema)


def signature_from(
    *, feature_view: Any = None, training_dataset: Any = None, input_example: Any = None
) -> Signature:
    """The model signature: from the training dataset, else the feature view, else the input
    example; dtypes the first source lacks are filled in from the input example."""
    example = None if input_example is None else _example_fields(input_example)
    labels: list[str] = []
    for obj in (training_dataset, feature_view):
        if obj is not None:
            labels = labels or _labels(obj)
    native = None if feature_view is None else view_inputs(feature_view, training_dataset)
    if native is not None:
        outputs = tuple(SignatureField(n, _label_dtype(feature_view, n)) for n in labels)
        return Signature(inputs=native, outputs=outputs, source="feature_view")
    for source, obj in (("training_dataset", training_dataset), ("feature_view", feature_view)):
        if obj is None or isinstance(obj, Mapping | int):
            continue
        fields = _read_schema(obj)
        if fields:
            inputs, outputs = _split(fields, labels)
            if example is not None:
                known = {f.name: f.dtype for f in example}
                inputs = tuple(
                    SignatureField(f.name, known.get(f.name, f.dtype))
                    if f.dtype == "unknown"
                    else f
                    for f in inputs
                )
            return Signature(inputs=inputs, outputs=outputs, source=source)
    if example is not None:
        inputs, outputs = _split(example, labels)
        return Signature(inputs=inputs, outputs=outputs, source="input_example")
    return Signature(source="none")


def _describe(signature: Signature, fv: FeatureViewRef | None) -> str:
    if signature.source in ("feature_view", "training_dataset") and fv is not None:
        return f"feature view {fv.name!r} version {fv.version}"
    return {"input_example": "the input example", "training_dataset": "the training dataset"}.get(
        signature.source, "the signature"
    )


def check_model_matches(
    name: str, model: Any, signature: Signature, fv: FeatureViewRef | None
) -> None:
    """ValidationError if the model was fitted on other features than the signature lists."""
    expected = signature.input_names
    if not expected:
        return
    names, count = model_feature_info(model)
    source = _describe(signature, fv)
    if names is not None and names != expected:
        missing = [n for n in expected if n not in names]
        extra = [n for n in names if n not in expected]
        if not missing and not extra:
            pos = next(i for i, (a, b) in enumerate(zip(names, expected, strict=False)) if a != b)
            detail = (
                f"the same features in another order (first difference at position {pos}: "
                f"model {names[pos]!r}, {source} {expected[pos]!r})"
            )
        else:
            parts = []
            if extra:
                parts.append(f"features the model was fitted on but {source} lacks: {extra}")
            if missing:
                parts.append(f"features of {source} the model was not fitted on: {missing}")
            detail = "; ".join(parts)
        raise ValidationError(
            f"Model {name!r} does not match {source}: {detail}. The model was fitted on "
            f"{names}; {source} gives {expected}. Train the model on the data of {source}, or "
            "pass the feature view it was trained with."
        )
    if count is not None and count != len(expected):
        raise ValidationError(
            f"Model {name!r} does not match {source}: the model expects {count} features "
            f"(n_features_in_) but {source} gives {len(expected)}: {expected}. Train the model "
            f"on the data of {source}, or pass the feature view it was trained with."
        )
