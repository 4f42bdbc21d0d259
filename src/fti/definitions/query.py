"""Queries: which features to read from which feature groups and how they join. Pure data.

A query is a left-most :class:`Selection` (its feature group's event time drives the
point-in-time join), joined :class:`Join` s, and :class:`Condition` filters. It is frozen,
holds the feature group definitions it was built from, and serialises to JSON by feature
group name and version (:meth:`Query.to_dict` / :meth:`Query.from_dict`).

>>> q = flights.select(["carrier", "distance"]).join(weather.select_all(), on=["origin"],
...                                                   prefix="w_")          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from fti._internal.names import check_identifier, check_unique
from fti.definitions.feature_group import FeatureGroupSpec
from fti.errors import ValidationError

__all__ = ["Column", "Condition", "Join", "Query", "Selection", "col", "select"]

_OPS = ("==", "!=", "<", "<=", ">", ">=", "in", "is_null", "not_null")

SpecLookup = Callable[[str, int], FeatureGroupSpec]


def _check_schema(spec: FeatureGroupSpec) -> None:
    if not spec.has_schema:
        raise ValidationError(
            f"Feature group {spec.name!r} version {spec.version} has no schema yet, so there is "
            "nothing to select. Insert data first or declare features=... when creating it."
        )


@dataclass(frozen=True)
class Selection:
    """Columns read from one feature group version."""

    group: FeatureGroupSpec
    features: tuple[str, ...]

    def __post_init__(self) -> None:
        _check_schema(self.group)
        known = set(self.group.column_names)
        for f in self.features:
            if f not in known:
                raise ValidationError(
                    f"Feature group {self.group.name!r} version {self.group.version} has no "
                    f"column {f!r}. Its columns: {self.group.column_names}."
                )
        check_unique(self.features, what="selected column")

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature_group": self.group.name,
            "version": self.group.version,
            "features": list(self.features),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], lookup: SpecLookup) -> Selection:
        return cls(lookup(str(d["feature_group"]), int(d["version"])), tuple(d["features"]))


@dataclass(frozen=True)
class Join:
    """A feature group joined point-in-time on its primary key.

    ``left_on`` name columns of the output so far (or of the left-most feature group);
    ``right_on`` is the joined group's primary key; ``prefix`` is put before its features.
    """

    selection: Selection
    left_on: tuple[str, ...]
    right_on: tuple[str, ...]
    prefix: str = ""

    def __post_init__(self) -> None:
        pk = self.selection.group.primary_key
        if len(self.left_on) != len(self.right_on) or not self.left_on:
            raise ValidationError(
                f"A join needs as many left_on as right_on columns (at least one); got "
                f"left_on={list(self.left_on)}, right_on={list(self.right_on)}."
            )
        if sorted(self.right_on) != sorted(pk):
            raise ValidationError(
                f"Feature group {self.selection.group.name!r} is joined on its primary key "
                f"{list(pk)}, got right_on={list(self.right_on)}. Pass on=[...] naming the "
                "primary key columns, or left_on=[...], right_on=[...]."
            )
        for c in self.left_on:
            check_identifier(c, what="join column")
        if self.prefix:
            check_identifier(self.prefix + "x", what="prefix")

    def output_name(self, column: str) -> str:
        return self.prefix + column

    def to_dict(self) -> dict[str, Any]:
        return {
            "selection": self.selection.to_dict(),
            "left_on": list(self.left_on),
            "right_on": list(self.right_on),
            "prefix": self.prefix,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], lookup: SpecLookup) -> Join:
        return cls(
            Selection.from_dict(d["selection"], lookup),
            tuple(d["left_on"]),
            tuple(d["right_on"]),
            str(d.get("prefix", "")),
        )


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValidationError(
                f"Filter value {value!r} is a naive datetime; pass a timezone-aware one, e.g. "
                "datetime(2013, 1, 1, tzinfo=timezone.utc)."
            )
        return {"datetime": value.isoformat()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ValidationError(
        f"Filter value {value!r} has type {type(value).__name__}; use a number, string, bool, "
        "timezone-aware datetime, None, or a list of these."
    )


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "datetime" in value:
        return datetime.fromisoformat(value["datetime"])
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


@dataclass(frozen=True)
class Condition:
    """``column <op> value`` on the rows of one feature group, applied before the join.

    ``group`` is the feature group key (``name_v<version>``) or None to resolve the column by
    name in the query. Build conditions with :func:`col`.
    """

    column: str
    op: str
    value: Any = None
    group: str | None = None

    def __post_init__(self) -> None:
        check_identifier(self.column)
        if self.op not in _OPS:
            raise ValidationError(f"Unknown filter operator {self.op!r}. Known: {list(_OPS)}.")
        object.__setattr__(self, "value", _decode(_encode(self.value)))
        if self.op == "in" and not isinstance(self.value, list):
            raise ValidationError(f"isin() needs a list of values, got {self.value!r}.")

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "op": self.op,
            "value": _encode(self.value),
            "group": self.group,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Condition:
        return cls(str(d["column"]), str(d["op"]), _decode(d.get("value")), d.get("group"))


@dataclass(frozen=True)
class Column:
    """A column reference that builds filter conditions: ``col("distance") > 100``."""

    name: str
    group: str | None = None

    def _cond(self, op: str, value: Any) -> Condition:
        return Condition(self.name, op, value, self.group)

    def __eq__(self, other: object) -> Condition:  # type: ignore[override]
        return self._cond("==", other)

    def __ne__(self, other: object) -> Condition:  # type: ignore[override]
        return self._cond("!=", other)

    def __lt__(self, other: Any) -> Condition:
        return self._cond("<", other)

    def __le__(self, other: Any) -> Condition:
        return self._cond("<=", other)

    def __gt__(self, other: Any) -> Condition:
        return self._cond(">", other)

    def __ge__(self, other: Any) -> Condition:
        return self._cond(">=", other)

    def __hash__(self) -> int:
        return hash((self.name, self.group))

    def isin(self, values: Iterable[Any]) -> Condition:
        return self._cond("in", list(values))

    def is_null(self) -> Condition:
        return self._cond("is_null", None)

    def not_null(self) -> Condition:
        return self._cond("not_null", None)


def col(name: str, *, feature_group: Any = None) -> Column:
    """A column for :meth:`Query.filter`; ``feature_group`` (a handle or spec) disambiguates.

    >>> q = flights.select_all().filter(fti.col("distance") > 100)            # doctest: +SKIP
    """
    group = None
    if feature_group is not None:
        spec = getattr(feature_group, "spec", feature_group)
        group = spec.key if isinstance(spec, FeatureGroupSpec) else str(spec)
    return Column(check_identifier(name), group)


def select(group: FeatureGroupSpec, features: Sequence[str] | None, *, exclude: bool) -> Query:
    """A one-group query: ``features`` (all non-key features if None), or all but them."""
    _check_schema(group)
    if features is not None and isinstance(features, str):
        raise ValidationError(
            f"select() takes a list of column names, got the string {features!r}."
        )
    if features is None:
        chosen = tuple(c.name for c in group.feature_columns)
    elif exclude:
        drop = set(features)
        unknown = sorted(drop - set(group.column_names))
        if unknown:
            raise ValidationError(
                f"Feature group {group.name!r} has no column(s) {unknown}. "
                f"Its columns: {group.column_names}."
            )
        chosen = tuple(c.name for c in group.feature_columns if c.name not in drop)
    else:
        chosen = tuple(features)
    return Query(Selection(group, chosen))


@dataclass(frozen=True)
class Query:
    """Selected features of a left-most feature group, joined point-in-time with others."""

    left: Selection
    joins: tuple[Join, ...] = ()
    filters: tuple[Condition, ...] = field(default=())

    def __post_init__(self) -> None:
        self.output_columns()  # validates names and join references
        for cond in self.filters:
            self.resolve_condition(cond)

    # ----------------------------------------------------------------- structure
    @property
    def selections(self) -> list[Selection]:
        """Every selection, left-most first."""
        return [self.left, *(j.selection for j in self.joins)]

    @property
    def groups(self) -> list[FeatureGroupSpec]:
        return [s.group for s in self.selections]

    def entity_columns(self) -> list[str]:
        """Columns that identify a row: the left group's key and event time, and left join
        columns of the left group that are not selected."""
        g = self.left.group
        out = [*g.primary_key, *([g.event_time] if g.event_time else [])]
        for j in self.joins:
            for c in j.left_on:
                if c not in out and c not in self.left.features and c in g.column_names:
                    out.append(c)
        return out

    def feature_columns(self) -> list[tuple[int, str, str]]:
        """(selection index, source column, output name) of every selected column."""
        entity = set(self.entity_columns())
        out = [(0, c, c) for c in self.left.features if c not in entity]
        for i, j in enumerate(self.joins, start=1):
            out.extend((i, c, j.output_name(c)) for c in j.selection.features)
        return out

    def output_columns(self) -> list[str]:
        """Entity columns then selected features, as the join returns them (labels aside)."""
        names = self.entity_columns()
        entity = set(names)
        names += [c for c in self.left.features if c not in entity]
        for j in self.joins:
            missing = [c for c in j.left_on if c not in names]
            if missing:
                raise ValidationError(
                    f"Join with {j.selection.group.name!r}: left_on column(s) {missing} are not "
                    "columns of the query so far. Select them in an earlier feature group, or "
                    "pass left_on=[...] naming existing columns."
                )
            names += [j.output_name(c) for c in j.selection.features]
        try:
            check_unique(names, what="output column")
        except ValidationError as e:
            raise ValidationError(
                f"{e} Give the joined feature group a prefix: .join(other, prefix='w_')."
            ) from None
        return names

    def selected_features(self) -> list[str]:
        """Output names of the explicitly selected columns (the model's inputs)."""
        out = list(self.left.features)
        out.extend(name for i, _src, name in self.feature_columns() if i > 0)
        return out

    def resolve_condition(self, cond: Condition) -> int:
        """The index of the selection whose feature group a condition filters."""
        hits = [
            i
            for i, s in enumerate(self.selections)
            if (cond.group is None or cond.group == s.group.key)
            and cond.column in s.group.column_names
        ]
        if not hits:
            raise ValidationError(
                f"Filter column {cond.column!r} is not a column of any feature group in the "
                f"query ({[s.group.key for s in self.selections]})."
            )
        if len(hits) > 1 and cond.group is None:
            raise ValidationError(
                f"Filter column {cond.column!r} is in several feature groups "
                f"({[self.selections[i].group.key for i in hits]}); say which one with "
                f"fti.col({cond.column!r}, feature_group=fg)."
            )
        return hits[0]

    def output_name(self, selection: int, column: str) -> str:
        """The name a column of selection ``selection`` has in the output (its join's prefix
        before it; the left-most group's columns keep their names)."""
        return self.joins[selection - 1].output_name(column) if selection else column

    def resolve_label(self, name: str) -> tuple[int, str] | None:
        """``(selection index, column)`` a label names, or None (no feature group has it).

        A label names a column of any feature group of the query, selected or not, by its output
        name (``prefix + column``) or by its raw column name; a match by output name wins over a
        match by raw name only. Primary key and event time columns are never labels. Two
        matches of the same kind are ambiguous: the error names both groups and the fix.
        """
        exact: list[tuple[int, str]] = []
        raw: list[tuple[int, str]] = []
        for i, s in enumerate(self.selections):
            for f in s.group.feature_columns:
                if self.output_name(i, f.name) == name:
                    exact.append((i, f.name))
                elif f.name == name:
                    raw.append((i, f.name))
        hits = exact or raw
        if len(hits) > 1:
            where = " and ".join(
                f"of feature group {self.selections[i].group.name!r} version "
                f"{self.selections[i].group.version} (output name {self.output_name(i, c)!r})"
                for i, c in hits
            )
            if exact:
                fix = (
                    "Give the joined feature group a prefix, .join(other, prefix='w_'), and "
                    "name the label with it"
                )
            else:
                fix = (
                    "Name the label with its join's prefix, e.g. "
                    f"labels=[{self.output_name(*hits[0])!r}]"
                )
            raise ValidationError(f"Label {name!r} is ambiguous: it is a column {where}. {fix}.")
        return hits[0] if hits else None

    # ----------------------------------------------------------------- building
    def join(
        self,
        other: Query,
        *,
        on: Sequence[str] | None = None,
        left_on: Sequence[str] | None = None,
        right_on: Sequence[str] | None = None,
        prefix: str | None = None,
    ) -> Query:
        """Join another query point-in-time on its left-most group's primary key.

        >>> q = flights.select(["distance"]).join(weather.select_all(), on=["origin"])
        ... # doctest: +SKIP
        """
        if not isinstance(other, Query):
            raise ValidationError(
                f"join() takes a query such as fg.select_all(), got {type(other).__name__}."
            )
        if on is not None and (left_on is not None or right_on is not None):
            raise ValidationError("Pass either on=[...] or left_on=[...] and right_on=[...].")
        pk = list(other.left.group.primary_key)
        if on is not None:
            lo, ro = tuple(on), tuple(on)
        elif left_on is not None or right_on is not None:
            lo = tuple(left_on if left_on is not None else right_on or ())
            ro = tuple(right_on if right_on is not None else left_on or ())
        else:
            lo, ro = tuple(pk), tuple(pk)
        pre = prefix or ""
        first = Join(other.left, lo, ro, pre)
        renamed = {c: pre + c for c in other.left.features}
        nested = [
            Join(
                j.selection,
                tuple(renamed.get(c, c) for c in j.left_on),
                j.right_on,
                pre + j.prefix,
            )
            for j in other.joins
        ]
        filters = [
            c
            if c.group is not None
            else replace(c, group=other.selections[other.resolve_condition(c)].group.key)
            for c in other.filters
        ]
        return Query(self.left, (*self.joins, first, *nested), (*self.filters, *filters))

    def filter(self, *conditions: Condition) -> Query:
        """Keep only feature group rows matching every condition (applied before the join).

        >>> q = flights.select_all().filter(fti.col("distance") > 100)        # doctest: +SKIP
        """
        for c in conditions:
            if not isinstance(c, Condition):
                raise ValidationError(
                    f"filter() takes conditions such as fti.col('x') > 1, got {c!r}."
                )
        return Query(self.left, self.joins, (*self.filters, *conditions))

    # ----------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "left": self.left.to_dict(),
            "joins": [j.to_dict() for j in self.joins],
            "filters": [c.to_dict() for c in self.filters],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], lookup: SpecLookup) -> Query:
        """Rebuild a query; ``lookup(name, version)`` returns a feature group definition."""
        return cls(
            Selection.from_dict(d["left"], lookup),
            tuple(Join.from_dict(j, lookup) for j in d.get("joins", [])),
            tuple(Condition.from_dict(c) for c in d.get("filters", [])),
        )

    def __repr__(self) -> str:
        parts = [f"{self.left.group.key}{list(self.left.features)}"]
        parts += [
            f"join {j.selection.group.key}{list(j.selection.features)} on "
            f"{list(j.left_on)}={list(j.right_on)}" + (f" prefix {j.prefix!r}" if j.prefix else "")
            for j in self.joins
        ]
        if self.filters:
            parts.append(f"filters {[c.to_dict() for c in self.filters]}")
        return f"Query({'; '.join(parts)})"
