"""Identifier validation and SQL quoting: every name that reaches SQL passes through here."""

from __future__ import annotations

import re
from collections.abc import Iterable

from fti.errors import ValidationError

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
RESERVED_PREFIX = "_fti_"
SEQ = "_fti_seq"  # a row's ingestion order (UTC ns of its commit + its position), every table


def check_identifier(name: object, *, what: str = "column") -> str:
    """Return ``name`` if it is a valid identifier, else raise a ValidationError that says why."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ValidationError(
            f"Invalid {what} name {name!r}: names must start with a letter or underscore and "
            "contain only letters, digits and underscores (at most 63 characters). "
            f"Rename it, e.g. {_suggest(name)!r}."
        )
    if name.lower().startswith(RESERVED_PREFIX):
        raise ValidationError(
            f"Invalid {what} name {name!r}: the prefix '{RESERVED_PREFIX}' is reserved for fti's "
            "own columns. Rename it."
        )
    return name


def check_unique(names: Iterable[str], *, what: str = "column") -> None:
    """Raise if a name appears twice (case-insensitively, as SQL would see it)."""
    seen: dict[str, str] = {}
    for n in names:
        key = n.lower()
        if key in seen:
            raise ValidationError(
                f"Duplicate {what} name {n!r} (clashes with {seen[key]!r}; names are compared "
                "case-insensitively). Rename or drop one of them."
            )
        seen[key] = n


def quote(name: str, char: str = '"') -> str:
    """Quote an identifier for SQL: ``"name"`` (DuckDB, SQLite, PostgreSQL, Spark's ANSI mode)
    or, with ``char="`"``, ```name``` (Spark's default dialect)."""
    return char + name.replace(char, char + char) + char


def _suggest(name: object) -> str:
    text = re.sub(r"[^A-Za-z0-9_]+", "_", str(name)).strip("_") or "col"
    if text[0].isdigit():
        text = "c_" + text
    return text[:63]
