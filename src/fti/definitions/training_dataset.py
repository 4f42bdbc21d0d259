"""Training dataset versions: what was read (table versions), how it was split, what was fitted.

A split is either random by fractions (deterministic given the seed) or by time ranges on the
left-most feature group's event time (``start <= t < end``); without a split every row is in
``"train"``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from fti._internal.names import check_identifier
from fti.errors import ValidationError

__all__ = ["SplitSpec", "TrainingDatasetSpec"]

_TOLERANCE = 1e-9


def _aware(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(
            f"{what}={value!r} must be a timezone-aware datetime, e.g. "
            "datetime(2013, 1, 1, tzinfo=timezone.utc)."
        )
    return value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _from_iso(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


@dataclass(frozen=True)
class SplitSpec:
    """How rows are divided into named splits.

    >>> SplitSpec.parse({"train": 0.8, "test": 0.2}).kind
    'random'
    """

    kind: str  # "none" | "random" | "time"
    fractions: tuple[tuple[str, float], ...] = ()
    ranges: tuple[tuple[str, datetime | None, datetime | None], ...] = ()

    @classmethod
    def parse(cls, split: Any) -> SplitSpec:
        """``None``; ``{"train": 0.8, "test": 0.2}``; ``{"train": (start, end), ...}``."""
        if split is None:
            return cls("none")
        if isinstance(split, SplitSpec):
            return split
        if not isinstance(split, Mapping) or not split:
            raise ValidationError(
                f"split must be a mapping such as {{'train': 0.8, 'test': 0.2}} or "
                f"{{'train': (start, end), 'test': (start, end)}}; got {split!r}."
            )
        for name in split:
            check_identifier(name, what="split")
        values = list(split.values())
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            fractions = tuple((str(k), float(v)) for k, v in split.items())
            if any(f <= 0 for _, f in fractions) or abs(sum(f for _, f in fractions) - 1) > 1e-6:
                raise ValidationError(
                    f"Split fractions must be > 0 and sum to 1; got {dict(fractions)}."
                )
            return cls("random", fractions=fractions)
        if all(isinstance(v, tuple | list) and len(v) == 2 for v in values):
            ranges = tuple(
                (str(k), _aware(v[0], f"split[{k!r}] start"), _aware(v[1], f"split[{k!r}] end"))
                for k, v in split.items()
            )
            spec = cls("time", ranges=ranges)
            spec._check_disjoint()
            return spec
        raise ValidationError(
            f"split values must all be fractions or all be (start, end) pairs; got {split!r}."
        )

    def _check_disjoint(self) -> None:
        lo = datetime.min.replace(tzinfo=UTC)
        hi = datetime.max.replace(tzinfo=UTC)
        spans = sorted((s or lo, e or hi, n) for n, s, e in self.ranges)
        for a, b in itertools.pairwise(spans):
            if b[0] < a[1]:
                raise ValidationError(
                    f"Time splits {a[2]!r} and {b[2]!r} overlap; a row must belong to one split. "
                    "Make the ranges disjoint (end is exclusive)."
                )
        for n, s, e in self.ranges:
            if s is not None and e is not None and s >= e:
                raise ValidationError(f"Time split {n!r} has start {s} >= end {e}.")

    @property
    def names(self) -> list[str]:
        if self.kind == "random":
            return [n for n, _ in self.fractions]
        if self.kind == "time":
            return [n for n, _, _ in self.ranges]
        return ["train"]

    @property
    def fit_split(self) -> str:
        """The split transformations are fitted on: ``"train"`` if present, else the first."""
        return "train" if "train" in self.names else self.names[0]

    def assign(
        self, n: int, *, seed: int | None, times_us: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        """Row indices (ascending) of each split; rows outside every time range are dropped."""
        if self.kind == "none":
            return {"train": np.arange(n)}
        if self.kind == "random":
            draws = np.random.default_rng(seed).random(n)
            bounds = np.cumsum([f for _, f in self.fractions])
            bounds[-1] = 1.0 + _TOLERANCE
            which = np.searchsorted(bounds, draws, side="right")
            return {name: np.flatnonzero(which == i) for i, (name, _) in enumerate(self.fractions)}
        if times_us is None:
            raise ValidationError(
                "A time split needs an event time; the left-most feature group has none. Use a "
                "random split such as {'train': 0.8, 'test': 0.2}."
            )
        out = {}
        for name, s, e in self.ranges:
            mask = np.ones(n, dtype=bool)
            if s is not None:
                mask &= times_us >= _micros(s)
            if e is not None:
                mask &= times_us < _micros(e)
            out[name] = np.flatnonzero(mask)
        return out

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "random":
            return {"kind": "random", "fractions": dict(self.fractions)}
        if self.kind == "time":
            return {
                "kind": "time",
                "ranges": {n: [_iso(s), _iso(e)] for n, s, e in self.ranges},
            }
        return {"kind": "none"}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SplitSpec:
        if d["kind"] == "random":
            return cls("random", fractions=tuple((k, float(v)) for k, v in d["fractions"].items()))
        if d["kind"] == "time":
            return cls(
                "time",
                ranges=tuple((k, _from_iso(v[0]), _from_iso(v[1])) for k, v in d["ranges"].items()),
            )
        return cls("none")


def _micros(value: datetime) -> int:
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True)
class TrainingDatasetSpec:
    """A stored training dataset version of a feature view version.

    ``files`` maps a split name to its materialised rows (an artifact reference and row count);
    ``table_versions`` the offline table version read per feature group; ``fitted`` the
    transformation statistics (fitted on :attr:`SplitSpec.fit_split` only); ``statistics`` the
    per-split, per-column descriptive statistics.
    """

    feature_view: str
    feature_view_version: int
    version: int
    split: SplitSpec
    seed: int | None
    table_versions: Mapping[str, int | None]
    fitted: Mapping[str, Any]
    statistics: Mapping[str, Any]
    files: Mapping[str, Mapping[str, Any]]
    start: datetime | None = None
    end: datetime | None = None
    spine_rows: int | None = None
    description: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def splits(self) -> list[str]:
        return self.split.names

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature_view": self.feature_view,
            "feature_view_version": self.feature_view_version,
            "version": self.version,
            "split": self.split.to_dict(),
            "seed": self.seed,
            "table_versions": dict(self.table_versions),
            "fitted": dict(self.fitted),
            "statistics": dict(self.statistics),
            "files": {k: dict(v) for k, v in self.files.items()},
            "start": _iso(self.start),
            "end": _iso(self.end),
            "spine_rows": self.spine_rows,
            "description": self.description,
            "created_at": self.created_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainingDatasetSpec:
        return cls(
            feature_view=str(d["feature_view"]),
            feature_view_version=int(d["feature_view_version"]),
            version=int(d["version"]),
            split=SplitSpec.from_dict(d["split"]),
            seed=d.get("seed"),
            table_versions=dict(d.get("table_versions", {})),
            fitted=dict(d.get("fitted", {})),
            statistics=dict(d.get("statistics", {})),
            files=dict(d.get("files", {})),
            start=_from_iso(d.get("start")),
            end=_from_iso(d.get("end")),
            spine_rows=d.get("spine_rows"),
            description=str(d.get("description", "")),
            created_at=datetime.fromisoformat(d["created_at"]),
        )
