"""Indexed facts of registry records: the fields listings filter on, kept in a table next to
the records so that a filtered page is an index range instead of a scan of every JSON body.

A fact is ``(kind, name, version, key, value)``: a top-level field of a record's body whose
value is a string. Which keys are kept, per record kind, is :data:`FACT_KEYS` (the run page of
the web UI filters runs by status and pipeline). The registry writes a record's facts in the
transaction that writes the record, replaces them when it changes and drops them with it; the
migration that made the table (0004) derived them for the records that existed, with
:func:`facts_of` too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fti.errors import ValidationError

__all__ = ["FACT_KEYS", "check_where", "facts_of"]

# kind -> the body fields stored as facts (``fti.services.runs`` stores runs as kind "run").
FACT_KEYS: dict[str, tuple[str, ...]] = {"run": ("status", "pipeline")}


def facts_of(kind: str, body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The ``(key, value)`` facts of a record: its string-valued fields among FACT_KEYS."""
    return [(key, body[key]) for key in FACT_KEYS.get(kind, ()) if isinstance(body.get(key), str)]


def check_where(kind: str, where: Mapping[str, str] | None) -> list[tuple[str, str]]:
    """The ``(key, value)`` pairs of a ``where`` filter, sorted; ValidationError naming the key
    when it is not an indexed fact of ``kind`` or its value is not a string."""
    pairs = sorted((where or {}).items())
    keys = FACT_KEYS.get(kind, ())
    for key, value in pairs:
        if key not in keys:
            raise ValidationError(
                f"Cannot filter {kind} records by {key!r}: it is not an indexed field of that "
                f"kind (indexed: {list(keys)}). Filter by one of those, or use body_contains."
            )
        if not isinstance(value, str):
            raise ValidationError(
                f"The filter value of {key!r} must be a string. Got {value!r} instead."
            )
    return pairs
