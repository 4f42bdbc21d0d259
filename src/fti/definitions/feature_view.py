"""The definition of a feature view: a query, its labels, transformations and on-demand features.

A feature view is the interface between feature groups and models: the columns a model reads
(:attr:`FeatureViewSpec.features`, in order), the labels it learns, and the model-dependent
transformations fitted per training dataset.

Labels (as Hopsworks users write them): a label is a column of any feature group of the query,
selected or not, named by its output name (``prefix + column``) or its raw column name (an
output-name match wins; two matches of one kind are an error naming both groups), or else a
column the spine carries. The label keeps the name given in ``labels=``; a selected label is a
label, never a model input (it leaves :attr:`FeatureViewSpec.features`). A spine column with the
label's name wins over the feature group's. See :class:`LabelSource`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
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

__all__ = ["FeatureViewSpec", "LabelSource"]


@dataclass(frozen=True)
class LabelSource:
    """Where a label's values come from.

    ``selection``/``column``: a column of ``query.selections[selection]``'s feature group,
    joined point-in-time like a feature; ``selection`` None: a column of the spine named
    ``name`` (the spine must carry it). A spine column named ``name`` wins either way.
    """

    name: str
    selection: int | None = None
    column: str | None = None


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
        sources = self.label_sources  # resolves (and validates) every label
        entity = self.query.entity_columns()
        for src in sources:
            if src.name in entity and (src.selection, src.column) != (0, src.name):
                raise ValidationError(
                    f"Label {src.name!r} clashes with the entity column {src.name!r} of the "
                    f"query (keys and event time: {entity}). Name the label by its output name "
                    "(with the join's prefix), or give the join a prefix."
                )
        consumed = self._consumed_outputs
        for j in self.query.joins:
            renamed = [c for c in j.left_on if c in consumed and c not in self.labels]
            if renamed:
                raise ValidationError(
                    f"The join with {j.selection.group.name!r} reads {renamed}, which a label "
                    f"takes under another name. Name the label {renamed[0]!r} in labels=[...]."
                )
        outputs = [c for c in self.query.output_columns() if c not in consumed]
        try:  # SQL compares names case-insensitively: a label must not shadow a column
            check_unique([*outputs, *(c for c in self.labels if c not in outputs)])
        except ValidationError as e:
            raise ValidationError(
                f"{e} Labels keep the name given in labels=[...]: name the label by its output "
                "name (with the join's prefix)."
            ) from None
        od_clash = [f.name for f in ods if f.name in outputs or f.name in self.labels]
        if od_clash:
            raise ValidationError(
                f"On-demand feature(s) {od_clash} clash with columns of the query or labels. "
                "Rename them with @fti.on_demand(..., name='...')."
            )
        check_unique([f.name for f in ods], what="on-demand feature")
        known = set(outputs)
        for f in ods:
            leaks = [c for c in f.inputs if c in self.labels or c in consumed]
            if leaks:
                raise ValidationError(
                    f"On-demand feature {f.name!r} reads label(s) {leaks}; a label is never a "
                    "model input. Compute it from features or request parameters."
                )
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

    @cached_property
    def label_sources(self) -> tuple[LabelSource, ...]:
        """Where each label comes from, in ``labels`` order (see :class:`LabelSource`)."""
        out = []
        for name in self.labels:
            hit = self.query.resolve_label(name)
            out.append(LabelSource(name) if hit is None else LabelSource(name, *hit))
        return tuple(out)

    @cached_property
    def _consumed(self) -> frozenset[tuple[int, str]]:
        """``(selection, column)`` of selected columns that are labels (so not features)."""
        selections = self.query.selections
        return frozenset(
            (s.selection, s.column)
            for s in self.label_sources
            if s.selection is not None and s.column in selections[s.selection].features
        )

    @cached_property
    def _consumed_outputs(self) -> frozenset[str]:
        return frozenset(self.query.output_name(i, c) for i, c in self._consumed)

    def feature_columns(self) -> list[tuple[int, str, str]]:
        """``(selection, column, output name)`` of the selected columns that are model inputs
        (the query's selected columns but the labels), as the point-in-time join returns them."""
        return [t for t in self.query.feature_columns() if t[:2] not in self._consumed]

    @property
    def features(self) -> list[str]:
        """The model inputs before transformation: selected features (labels aside), then
        on-demand ones."""
        consumed = self._consumed_outputs
        selected = [c for c in self.query.selected_features() if c not in consumed]
        return [*selected, *(f.name for f in self.on_demand)]

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
