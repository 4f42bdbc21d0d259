"""The definition of a feature view: a query, its labels, transformations and on-demand features.

A feature view is the interface between feature groups and models: the columns a model reads
(:attr:`FeatureViewSpec.features`, in order), the labels it learns, and the model-dependent
transformations fitted per training dataset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fti._internal.names import check_identifier, check_unique
from fti.definitions.on_demand import OnDemandFeature, on_demand_from_dict
from fti.definitions.query import Query, SpecLookup
from fti.definitions.transformations import (
    Transformation,
    transformations_from_dict,
    transformations_to_dict,
    validate_transformations,
)
from fti.errors import ValidationError

__all__ = ["FeatureViewSpec"]


@dataclass(frozen=True)
class FeatureViewSpec:
    """A versioned feature view. ``transformations`` maps a feature column to its transformation."""

    name: str
    version: int
    query: Query
    labels: tuple[str, ...] = ()
    transformations: Mapping[str, Transformation] = field(default_factory=dict)
    on_demand: tuple[OnDemandFeature, ...] = ()
    description: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        check_identifier(self.name, what="feature view")
        if not isinstance(self.version, int) or isinstance(self.version, bool) or self.version < 1:
            raise ValidationError(
                f"The 'version' parameter must be an int >= 1. Got {self.version!r} instead."
            )
        if not isinstance(self.query, Query):
            raise ValidationError(
                f"query must be built with fg.select(...)/select_all(), got {self.query!r}."
            )
        if isinstance(self.labels, str):
            raise ValidationError(f"labels takes a list of names, got the string {self.labels!r}.")
        for c in self.labels:
            check_identifier(c, what="label")
        check_unique(self.labels, what="label")
        object.__setattr__(self, "transformations", validate_transformations(self.transformations))
        ods = tuple(self.on_demand)
        for f in ods:
            if not isinstance(f, OnDemandFeature):
                raise ValidationError(
                    f"on_demand takes features made with @fti.on_demand(...), got {f!r}."
                )
        object.__setattr__(self, "on_demand", ods)
        selected = self.query.selected_features()
        clash = [c for c in self.labels if c in selected]
        if clash:
            raise ValidationError(
                f"Label(s) {clash} are also selected as features; a label must not be a model "
                "input. Remove them from the select([...]) list."
            )
        outputs = set(self.query.output_columns())
        od_clash = [f.name for f in ods if f.name in outputs or f.name in self.labels]
        if od_clash:
            raise ValidationError(
                f"On-demand feature(s) {od_clash} clash with columns of the query or labels. "
                "Rename them with @fti.on_demand(..., name='...')."
            )
        check_unique([f.name for f in ods], what="on-demand feature")
        known = set(outputs) | set(self.labels)
        for f in ods:
            missing = [c for c in f.inputs if c not in known]
            if missing:
                raise ValidationError(
                    f"On-demand feature {f.name!r} reads {missing}, which the query does not "
                    f"return. Query columns: {sorted(outputs)}. Select them (with the join's "
                    "prefix) or pass them as request parameters."
                )
            known.add(f.name)
        unknown = [c for c in self.transformations if c not in self.features]
        if unknown:
            raise ValidationError(
                f"Transformation(s) for {unknown} name no feature of the view. Features: "
                f"{self.features}. Transformations apply to selected or on-demand features, "
                "not labels."
            )
        if self.created_at.tzinfo is None:
            raise ValidationError("created_at must be timezone-aware.")

    @property
    def key(self) -> str:
        return f"{self.name}_v{self.version}"

    @property
    def features(self) -> list[str]:
        """The model inputs before transformation: selected features, then on-demand ones."""
        return [*self.query.selected_features(), *(f.name for f in self.on_demand)]

    @property
    def event_time(self) -> str | None:
        """The event time column of the left-most feature group (drives the join)."""
        return self.query.left.group.event_time

    def definition(self) -> dict[str, Any]:
        """The parts that make two feature views the same (everything but dates)."""
        return {
            "query": self.query.to_dict(),
            "labels": list(self.labels),
            "transformations": transformations_to_dict(self.transformations),
            "on_demand": [f.to_dict() for f in self.on_demand],
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            **self.definition(),
            "description": self.description,
            "created_at": self.created_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], lookup: SpecLookup) -> FeatureViewSpec:
        """Rebuild; ``lookup(name, version)`` returns a feature group definition."""
        return cls(
            name=str(d["name"]),
            version=int(d["version"]),
            query=Query.from_dict(d["query"], lookup),
            labels=tuple(d.get("labels", ())),
            transformations=transformations_from_dict(d.get("transformations", {})),
            on_demand=tuple(on_demand_from_dict(f) for f in d.get("on_demand", ())),
            description=str(d.get("description", "")),
            created_at=datetime.fromisoformat(d["created_at"]),
        )


def normalize_labels(labels: Sequence[str] | None) -> tuple[str, ...]:
    """``None`` -> ``()``; a string is rejected (a common slip for ``["label"]``)."""
    if labels is None:
        return ()
    if isinstance(labels, str):
        raise ValidationError(f"labels takes a list of names, e.g. [{labels!r}].")
    return tuple(labels)
