"""What every page shares: one page of a listing, and values as display text."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["PAGE_SIZE", "Page", "age", "cell", "iso"]

PAGE_SIZE = 25


@dataclass(frozen=True)
class Page:
    """One page of a listing: the rows, the total that matched and where this page starts."""

    rows: list[dict[str, Any]]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.offset + self.limit < self.total else None

    @property
    def prev_offset(self) -> int | None:
        return max(0, self.offset - self.limit) if self.offset > 0 else None


def iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, str) and value:
        try:
            return iso(datetime.fromisoformat(value))
        except ValueError:
            return value
    return "-"


def cell(value: Any) -> str:
    """A table cell as text (escaping is the template's job)."""
    if value is None:
        return "null"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value[:32].hex() + ("…" if len(value) > 32 else "")
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)[:200]
    return str(value)


def age(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago, in words a table cell can hold: ``"45 s"``, ``"3 min"``, ``"2 h"``,
    ``"5 d"`` (``"-"`` when unknown)."""
    if value is None:
        return "-"
    seconds = max(0.0, ((now or datetime.now(UTC)) - value).total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"
