"""A registered model version: what was stored, where, with which inputs and lineage.

The spec is pure data (JSON round trip through ``to_dict``/``from_dict``); the model registry
service fills it in and the ``ModelVersion`` handle exposes it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fti._internal.names import check_identifier
from fti.errors import ValidationError

__all__ = [
    "FORMATS",
    "STATUSES",
    "ArtifactInfo",
    "FeatureViewRef",
    "ModelVersionSpec",
    "Signature",
    "SignatureField",
    "TrainingDatasetRef",
    "normalize_metrics",
    "normalize_tags",
]

FORMATS = ("skops", "lightgbm", "xgboost", "onnx", "pickle")
# "pending": the version number is taken but the artifact is still being written (or the writer
# died); "ready": loadable; "failed": the artifact write failed and was recorded.
STATUSES = ("pending", "ready", "failed")


@dataclass(frozen=True)
class ArtifactInfo:
    """Where the model file is in the artifact store and what it must hash to."""

    key: str
    sha256: str
    size: int

    def __post_init__(self) -> None:
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise ValidationError(f"Invalid sha256 {self.sha256!r}: expected 64 hex digits.")
        if self.size < 0:
            raise ValidationError(f"Invalid artifact size {self.size}: expected >= 0.")

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ArtifactInfo:
        return cls(str(d["key"]), str(d["sha256"]), int(d["size"]))


@dataclass(frozen=True)
class SignatureField:
    """One named, typed model input or output (``dtype`` is an fti dtype or an Arrow type
    name; ``"unknown"`` when the source gave names only)."""

    name: str
    dtype: str = "unknown"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "dtype": self.dtype}


@dataclass(frozen=True)
class Signature:
    """The columns a model reads (``inputs``, in order) and predicts (``outputs``)."""

    inputs: tuple[SignatureField, ...] = ()
    outputs: tuple[SignatureField, ...] = ()
    source: str = "none"  # "feature_view" | "training_dataset" | "input_example" | "none"

    @property
    def input_names(self) -> list[str]:
        return [f.name for f in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [f.name for f in self.outputs]

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [f.to_dict() for f in self.inputs],
            "outputs": [f.to_dict() for f in self.outputs],
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Signature:
        return cls(
            inputs=tuple(SignatureField(f["name"], f.get("dtype", "unknown")) for f in d["inputs"]),
            outputs=tuple(
                SignatureField(f["name"], f.get("dtype", "unknown")) for f in d["outputs"]
            ),
            source=str(d.get("source", "none")),
        )


@dataclass(frozen=True)
class FeatureViewRef:
    """The feature view version a model reads its inputs through."""

    name: str
    version: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureViewRef:
        return cls(str(d["name"]), int(d["version"]))


@dataclass(frozen=True)
class TrainingDatasetRef:
    """The training dataset version a model was trained on."""

    feature_view: str
    fv_version: int
    version: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature_view": self.feature_view,
            "fv_version": self.fv_version,
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainingDatasetRef:
        return cls(str(d["feature_view"]), int(d["fv_version"]), int(d["version"]))


def normalize_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    """``{"auc": np.float64(0.7)}`` -> ``{"auc": 0.7}``; names must be strings, values finite."""
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise ValidationError(
            f"The 'metrics' parameter must be a mapping of name -> number. Got {metrics!r}."
        )
    out: dict[str, float] = {}
    for k, v in metrics.items():
        if not isinstance(k, str) or not k:
            raise ValidationError(f"Metric names must be non-empty strings. Got {k!r}.")
        if isinstance(v, bool):
            raise ValidationError(f"Metric {k!r} must be a number, not a bool. Got {v!r}.")
        try:
            number = float(v)
        except (TypeError, ValueError):
            raise ValidationError(
                f"Metric {k!r} must be a number. Got {v!r} ({type(v).__name__})."
            ) from None
        if not math.isfinite(number):
            raise ValidationError(
                f"Metric {k!r} must be a finite number. Got {v!r}. Drop it or record a number."
            )
        out[k] = number
    return out


def normalize_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    """Tags are string -> string."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise ValidationError(f"The 'tags' parameter must be a mapping. Got {tags!r}.")
    out: dict[str, str] = {}
    for k, v in tags.items():
        if not isinstance(k, str) or not k:
            raise ValidationError(f"Tag names must be non-empty strings. Got {k!r}.")
        if not isinstance(v, str | int | float | bool):
            raise ValidationError(f"Tag {k!r} must be a string. Got {v!r}.")
        out[k] = str(v)
    return out


@dataclass(frozen=True)
class ModelVersionSpec:
    """A registered model version (frozen, validated on construction)."""

    name: str
    version: int
    format: str
    artifact: ArtifactInfo
    framework: str
    signature: Signature = Signature()
    metrics: Mapping[str, float] = field(default_factory=dict)
    feature_view: FeatureViewRef | None = None
    training_dataset: TrainingDatasetRef | None = None
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    libraries: Mapping[str, str] = field(default_factory=dict)
    format_options: Mapping[str, Any] = field(default_factory=dict)
    status: str = "ready"
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        check_identifier(self.name, what="model")
        if not isinstance(self.version, int) or isinstance(self.version, bool) or self.version < 1:
            raise ValidationError(
                f"The 'version' parameter must be an int >= 1. Got {self.version!r} instead."
            )
        if self.format not in FORMATS:
            raise ValidationError(f"Unknown model format {self.format!r}. Known: {list(FORMATS)}.")
        if self.status not in STATUSES:
            raise ValidationError(f"Unknown status {self.status!r}. Known: {list(STATUSES)}.")
        if not isinstance(self.description, str):
            raise ValidationError(
                f"The 'description' parameter must be a str. Got {self.description!r}."
            )
        if self.created_at.tzinfo is None:
            raise ValidationError("created_at must be timezone-aware.")
        object.__setattr__(self, "metrics", normalize_metrics(self.metrics))
        object.__setattr__(self, "tags", normalize_tags(self.tags))
        object.__setattr__(self, "libraries", {str(k): str(v) for k, v in self.libraries.items()})
        object.__setattr__(self, "format_options", dict(self.format_options))

    @property
    def ref(self) -> str:
        """``name:version``, as the CLI accepts it."""
        return f"{self.name}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "format": self.format,
            "artifact": self.artifact.to_dict(),
            "framework": self.framework,
            "signature": self.signature.to_dict(),
            "metrics": dict(self.metrics),
            "feature_view": None if self.feature_view is None else self.feature_view.to_dict(),
            "training_dataset": (
                None if self.training_dataset is None else self.training_dataset.to_dict()
            ),
            "description": self.description,
            "tags": dict(self.tags),
            "libraries": dict(self.libraries),
            "format_options": dict(self.format_options),
            "status": self.status,
            "created_at": self.created_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelVersionSpec:
        fv = d.get("feature_view")
        td = d.get("training_dataset")
        return cls(
            name=d["name"],
            version=int(d["version"]),
            format=d["format"],
            artifact=ArtifactInfo.from_dict(d["artifact"]),
            framework=d.get("framework", ""),
            signature=Signature.from_dict(d.get("signature") or {"inputs": [], "outputs": []}),
            metrics=d.get("metrics") or {},
            feature_view=None if fv is None else FeatureViewRef.from_dict(fv),
            training_dataset=None if td is None else TrainingDatasetRef.from_dict(td),
            description=d.get("description", ""),
            tags=d.get("tags") or {},
            libraries=d.get("libraries") or {},
            format_options=d.get("format_options") or {},
            status=d.get("status", "ready"),
            created_at=datetime.fromisoformat(d["created_at"]),
        )
