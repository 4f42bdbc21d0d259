"""Request and response bodies of the HTTP API (pydantic; unknown fields are rejected)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from fti.serving.limits import MAX_ENTITIES, MAX_ENTITY_KEYS, MAX_REQUEST_KEYS

__all__ = [
    "PredictRequest",
    "PredictResponse",
    "ReloadResponse",
    "VectorsRequest",
    "VectorsResponse",
]

# Strict: JSON true is not 1 and "3" is not 3 — a key of the wrong type is an error, not a guess.
# Integers must fit int64 (what every store keeps); anything larger is a 422, not a crash.
Int64 = Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]
Scalar = StrictBool | Int64 | StrictFloat | Annotated[StrictStr, Field(max_length=4096)] | None
Key = Annotated[str, Field(max_length=63)]
# An entity is a primary key: a few columns. Bounded so that no error can echo a huge one.
Entity = Annotated[dict[Key, Scalar], Field(max_length=MAX_ENTITY_KEYS)]
Entities = Annotated[list[Entity], Field(min_length=1, max_length=MAX_ENTITIES)]
Parameters = Annotated[dict[Key, Scalar], Field(max_length=MAX_REQUEST_KEYS)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictRequest(_Strict):
    """Entities (primary keys of the feature view's left-most feature group) and request
    parameters for on-demand features."""

    entities: Entities
    request: Parameters = Field(default_factory=dict)
    return_features: bool = False

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"entities": [{"flight_id": 1}], "request": {}, "return_features": False}]
        },
    )


class PredictResponse(BaseModel):
    request_id: str
    model: str
    model_version: int
    feature_view: str
    feature_view_version: int
    training_dataset_version: int | None
    predictions: list[Any]
    probabilities: list[float | None] | None = None
    missing: list[int] | None = None
    feature_names: list[str] | None = None
    features: list[list[Any]] | None = None
    untransformed: list[dict[str, Any]] | None = None


class VectorsRequest(_Strict):
    """Entities, request parameters, and the training dataset version whose fitted
    transformations to apply (none: untransformed features unless the view needs them)."""

    entities: Entities
    request: Parameters = Field(default_factory=dict)
    training_dataset_version: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None


class VectorsResponse(BaseModel):
    feature_view: str
    feature_view_version: int
    training_dataset_version: int | None
    feature_names: list[str]
    vectors: list[list[Any]]
    missing: list[int] | None = None


class ReloadResponse(BaseModel):
    model: str
    previous_version: int | None
    model_version: int
    training_dataset_version: int | None
