"""The definition of a feature group: keys, event time, schema and online settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from fti._internal.names import check_identifier, check_unique
from fti.definitions.expectations import Expectation, check_expectations, check_on_invalid
from fti.definitions.fields import Field
from fti.errors import ValidationError

__all__ = ["FeatureGroupSpec", "normalize_features", "normalize_tags"]

FeaturesArg = Sequence[Field] | Mapping[str, str] | None


def normalize_features(features: FeaturesArg) -> tuple[Field, ...]:
    """Accept ``[Field(...)]`` or ``{"name": "dtype"}`` and return a tuple of Fields."""
    if features is None:
        return ()
    if isinstance(features, Mapping):
        return tuple(Field(str(k), str(v)) for k, v in features.items())
    out = []
    for f in features:
        if not isinstance(f, Field):
            raise ValidationError(
                f"features must be fti.Field objects or a {{name: dtype}} mapping; got {f!r}."
            )
        out.append(f)
    return tuple(out)


@dataclass(frozen=True)
class FeatureGroupSpec:
    """A versioned feature group definition. ``columns`` holds every stored column.

    ``columns`` includes the primary key and event time columns; it is empty until the schema is
    declared or inferred from the first insert.
    """

    name: str
    version: int
    primary_key: tuple[str, ...]
    event_time: str | None = None
    online: bool = False
    ttl: timedelta | None = None
    description: str = ""
    columns: tuple[Field, ...] = ()
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Data quality: the rules every write is checked against, what happens to failing rows,
    # and the revision of the rules (bumped by set_expectations; reports carry it).
    expectations: tuple[Expectation, ...] = ()
    on_invalid: str = "reject"
    expectations_revision: int = 0
    # Free-form labels (owner, team, pii, ...), sorted (key, value) pairs: ``fg.tags`` is a dict.
    tags: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        check_identifier(self.name, what="feature group")
        if not isinstance(self.version, int) or isinstance(self.version, bool) or self.version < 1:
            raise ValidationError(
                f"The 'version' parameter must be an int >= 1. Got {self.version!r} instead."
            )
        if not self.primary_key:
            raise ValidationError(
                f"Feature group {self.name!r} needs a primary key: pass "
                "primary_key=['<column>', ...]."
            )
        for k in self.primary_key:
            check_identifier(k, what="primary key column")
        check_unique(self.primary_key, what="primary key column")
        if self.event_time is not None:
            check_identifier(self.event_time, what="event time column")
            if self.event_time in self.primary_key:
                raise ValidationError(
                    f"event_time {self.event_time!r} is also in primary_key; the event time is "
                    "ordered on, not part of the key. Remove it from primary_key."
                )
        if self.ttl is not None and (
            not isinstance(self.ttl, timedelta) or self.ttl <= timedelta(0)
        ):
            raise ValidationError(
                f"The 'ttl' parameter must be a timedelta > 0. Got {self.ttl!r} instead."
            )
        if self.ttl is not None and self.event_time is None:
            raise ValidationError(
                f"Feature group {self.name!r} has a ttl but no event_time; a ttl is measured "
                "from the event time. Pass event_time='<column>' or drop the ttl."
            )
        check_unique([c.name for c in self.columns])
        if self.created_at.tzinfo is None:
            raise ValidationError("created_at must be timezone-aware.")
        object.__setattr__(self, "expectations", check_expectations(self.expectations))
        check_on_invalid(self.on_invalid)

    # ----------------------------------------------------------------- derived views
    @property
    def key(self) -> str:
        """``name_v<version>``: the identifier used for tables in every backend."""
        return f"{self.name}_v{self.version}"

    @property
    def has_schema(self) -> bool:
        return bool(self.columns)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def feature_columns(self) -> tuple[Field, ...]:
        """Columns that are neither key nor event time."""
        skip = {*self.primary_key, self.event_time}
        return tuple(c for c in self.columns if c.name not in skip)

    def column(self, name: str) -> Field:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def with_columns(self, columns: Sequence[Field]) -> FeatureGroupSpec:
        return replace(self, columns=tuple(columns))

    # ----------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "primary_key": list(self.primary_key),
            "event_time": self.event_time,
            "online": self.online,
            "ttl_seconds": None if self.ttl is None else self.ttl.total_seconds(),
            "description": self.description,
            "columns": [c.to_dict() for c in self.columns],
            "created_at": self.created_at.isoformat(),
            "expectations": [e.to_dict() for e in self.expectations],
            "on_invalid": self.on_invalid,
            "expectations_revision": self.expectations_revision,
            "tags": dict(self.tags),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureGroupSpec:
        ttl = d.get("ttl_seconds")
        return cls(
            name=d["name"],
            version=int(d["version"]),
            primary_key=tuple(d["primary_key"]),
            event_time=d.get("event_time"),
            online=bool(d.get("online", False)),
            ttl=None if ttl is None else timedelta(seconds=float(ttl)),
            description=d.get("description", ""),
            columns=tuple(Field.from_dict(c) for c in d.get("columns", [])),
            created_at=datetime.fromisoformat(d["created_at"]),
            expectations=tuple(Expectation.from_dict(e) for e in d.get("expectations", [])),
            on_invalid=d.get("on_invalid", "reject"),
            expectations_revision=int(d.get("expectations_revision", 0)),
            tags=normalize_tags(d.get("tags") or {}),
        )


_TAG_KEY_MAX = 64
_TAG_VALUE_MAX = 256


def normalize_tags(tags: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """Tags as sorted (key, value) string pairs; keys 1-64 characters, values up to 256."""
    if not isinstance(tags, Mapping):
        raise ValidationError(
            f"tags must be a dict of strings, e.g. tags={{'owner': 'risk-team'}}; got {tags!r}."
        )
    out = []
    for k, v in tags.items():
        if not isinstance(k, str) or not 1 <= len(k) <= _TAG_KEY_MAX:
            raise ValidationError(
                f"Tag key {k!r} must be a string of 1-{_TAG_KEY_MAX} characters, e.g. 'owner'."
            )
        value = "" if v is None else v
        if not isinstance(value, str | int | float | bool) or len(str(value)) > _TAG_VALUE_MAX:
            raise ValidationError(
                f"Tag {k!r} has value {v!r}: use a string (or number) of at most "
                f"{_TAG_VALUE_MAX} characters."
            )
        out.append((k, str(value)))
    return tuple(sorted(out))
