"""Data-quality rules (expectations) a feature group checks on every write.

Row rules judge each row of an insert: ``not_null``, ``between``, ``in_set``, ``matches``,
``unique`` (within the insert) and ``sql`` (a boolean SQL expression over the insert's columns).
Batch rules judge the insert as a whole: ``row_count``, ``max_age`` (freshness vs now),
``mean_between`` and ``null_fraction``.

Semantics (the property tests pin these):

- NaN counts as missing (null) everywhere.
- A missing value fails ``not_null`` and passes every other row rule (as in a SQL ``CHECK``
  constraint and in Great Expectations): combine with ``not_null`` to forbid it. A ``sql``
  predicate that evaluates to NULL passes; a row with a missing value in any ``unique`` column
  passes.
- A row rule holds when at least ``mostly`` of the insert's rows pass it:
  ``passed >= mostly * rows``.
- ``between``/``mean_between`` bounds are inclusive; either may be None (one-sided).
- ``max_age(col, age)`` holds when the newest value of ``col`` is at least ``now - age``.
- ``severity="warn"`` rules are reported but never reject or quarantine anything.

Each rule has a stable id (``id=``, or derived from its definition), so validation reports of
different inserts and expectation revisions stay comparable.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fti._internal.names import check_identifier
from fti.errors import ValidationError

__all__ = [
    "BATCH_KINDS",
    "ON_INVALID",
    "ROW_KINDS",
    "Expectation",
    "between",
    "check_expectations",
    "check_on_invalid",
    "in_set",
    "matches",
    "max_age",
    "mean_between",
    "not_null",
    "null_fraction",
    "row_count",
    "sql",
    "unique",
]

ROW_KINDS = frozenset({"not_null", "between", "in_set", "matches", "unique", "sql"})
BATCH_KINDS = frozenset({"row_count", "max_age", "mean_between", "null_fraction"})
ON_INVALID = ("reject", "quarantine", "warn")
_SEVERITIES = ("error", "warn")
Scalar = int | float | str | bool


@dataclass(frozen=True)
class Expectation:
    """One rule. Build it with the ``fti.expect.*`` functions, not directly."""

    kind: str
    columns: tuple[str, ...] = ()
    lo: float | None = None
    hi: float | None = None
    values: tuple[Scalar, ...] = ()
    pattern: str | None = None
    predicate: str | None = None
    max_age: timedelta | None = None
    mostly: float = 1.0
    severity: str = "error"
    name: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ROW_KINDS | BATCH_KINDS:
            raise ValidationError(f"Unknown expectation kind {self.kind!r}.")
        for c in self.columns:
            check_identifier(c, what="expectation column")
        if self.severity not in _SEVERITIES:
            raise ValidationError(
                f"The 'severity' parameter must be 'error' or 'warn'. Got {self.severity!r} "
                "instead."
            )
        if (
            isinstance(self.mostly, bool)
            or not isinstance(self.mostly, int | float)
            or not 0.0 <= float(self.mostly) <= 1.0
        ):
            raise ValidationError(
                f"The 'mostly' parameter must be a number in [0, 1] (the fraction of rows that "
                f"must pass). Got {self.mostly!r} instead."
            )
        if self.kind in BATCH_KINDS and self.mostly != 1.0:
            raise ValidationError(
                f"{self.kind} judges the insert as a whole, so 'mostly' does not apply to it "
                f"(got mostly={self.mostly!r}). Drop the argument."
            )
        for bound in (self.lo, self.hi):
            if bound is not None and (
                isinstance(bound, bool) or not isinstance(bound, int | float) or math.isnan(bound)
            ):
                raise ValidationError(
                    f"{self.kind} bounds must be numbers or None. Got {bound!r} instead."
                )
        if self.lo is not None and self.hi is not None and self.lo > self.hi:
            raise ValidationError(
                f"{self.kind}({', '.join(self.columns)}): lower bound {self.lo!r} is greater "
                f"than upper bound {self.hi!r}. Swap them."
            )
        if self.name is not None:
            check_identifier(self.name, what="expectation id")

    @property
    def id(self) -> str:
        """Stable rule id: ``name=`` if given, else ``kind:columns:<hash of the definition>``."""
        if self.name is not None:
            return self.name
        body = {k: v for k, v in self.to_dict().items() if k not in ("severity", "name")}
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.kind}:{','.join(self.columns) or '*'}:{digest}"

    @property
    def is_row_rule(self) -> bool:
        return self.kind in ROW_KINDS

    def describe(self) -> str:
        """A short human-readable form, e.g. ``between(amount, 0, 10000, mostly=0.99)``."""
        args: list[str] = []
        if self.kind == "unique":
            args.append(repr(list(self.columns)))
        elif self.kind != "sql":
            args.extend(self.columns)
        if self.kind in ("between", "mean_between"):
            args += [repr(self.lo), repr(self.hi)]
        if self.kind == "row_count":
            args += [f"min={self.lo!r}", f"max={self.hi!r}"]
        if self.kind == "null_fraction":
            args.append(f"max={self.hi!r}")
        if self.kind == "in_set":
            args.append(repr(list(self.values)))
        if self.kind == "matches":
            args.append(repr(self.pattern))
        if self.kind == "sql":
            args.append(repr(self.predicate))
        if self.kind == "max_age":
            args.append(str(self.max_age))
        if self.mostly != 1.0:
            args.append(f"mostly={self.mostly}")
        if self.severity != "error":
            args.append(f"severity={self.severity!r}")
        return f"{self.kind}({', '.join(args)})"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "columns": list(self.columns)}
        if self.lo is not None:
            d["lo"] = self.lo
        if self.hi is not None:
            d["hi"] = self.hi
        if self.values:
            d["values"] = list(self.values)
        if self.pattern is not None:
            d["pattern"] = self.pattern
        if self.predicate is not None:
            d["predicate"] = self.predicate
        if self.max_age is not None:
            d["max_age_seconds"] = self.max_age.total_seconds()
        d["mostly"] = self.mostly
        d["severity"] = self.severity
        if self.name is not None:
            d["name"] = self.name
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Expectation:
        age = d.get("max_age_seconds")
        kind = d["kind"]
        e = cls(
            kind=kind,
            columns=tuple(d.get("columns", ())),
            lo=d.get("lo"),
            hi=d.get("hi"),
            values=tuple(d.get("values", ())),
            pattern=d.get("pattern"),
            predicate=d.get("predicate"),
            max_age=None if age is None else timedelta(seconds=float(age)),
            mostly=float(d.get("mostly", 1.0)),
            severity=d.get("severity", "error"),
            name=d.get("name"),
        )
        # A stored predicate is checked again right before it runs (services.validation).
        return e


# ------------------------------------------------------------------------- constructors
def _col(column: object) -> tuple[str, ...]:
    return (check_identifier(column, what="expectation column"),)


def not_null(
    column: str, *, mostly: float = 1.0, severity: str = "error", id: str | None = None
) -> Expectation:
    """Every row has a value (not null, None, NaN or NaT) in ``column``."""
    return Expectation("not_null", _col(column), mostly=mostly, severity=severity, name=id)


def between(
    column: str,
    lo: float | None = None,
    hi: float | None = None,
    *,
    mostly: float = 1.0,
    severity: str = "error",
    id: str | None = None,
) -> Expectation:
    """``lo <= value <= hi`` (inclusive; None leaves a side open). Missing values pass."""
    if lo is None and hi is None:
        raise ValidationError(f"between({column!r}) needs lo=, hi= or both.")
    return Expectation(
        "between", _col(column), lo=lo, hi=hi, mostly=mostly, severity=severity, name=id
    )


def in_set(
    column: str,
    values: Sequence[Scalar],
    *,
    mostly: float = 1.0,
    severity: str = "error",
    id: str | None = None,
) -> Expectation:
    """The value is one of ``values``. Missing values pass."""
    if isinstance(values, str) or not isinstance(values, Sequence | set | frozenset):
        raise ValidationError(
            f"in_set({column!r}, values) needs a list of values. Got {values!r} instead."
        )
    vals = tuple(values)
    if not vals:
        raise ValidationError(f"in_set({column!r}, []) has no allowed values. Pass at least one.")
    for v in vals:
        if not isinstance(v, int | float | str | bool) or (isinstance(v, float) and math.isnan(v)):
            raise ValidationError(
                f"in_set({column!r}) values must be numbers, strings or booleans. Got {v!r}."
            )
    kinds = {type(v) is str for v in vals}
    if len(kinds) > 1:
        raise ValidationError(f"in_set({column!r}) mixes strings and numbers: {list(vals)}.")
    return Expectation(
        "in_set", _col(column), values=vals, mostly=mostly, severity=severity, name=id
    )


def matches(
    column: str,
    pattern: str,
    *,
    mostly: float = 1.0,
    severity: str = "error",
    id: str | None = None,
) -> Expectation:
    """The string value contains a match of the regular expression ``pattern`` (anchor it
    with ``^...$`` for a full match; RE2 syntax). Missing values pass."""
    if not isinstance(pattern, str):
        raise ValidationError(f"matches({column!r}) needs a regex string. Got {pattern!r}.")
    try:
        re.compile(pattern)
    except re.error as e:
        raise ValidationError(
            f"matches({column!r}, {pattern!r}): invalid regular expression ({e}). Fix the pattern."
        ) from None
    return Expectation(
        "matches", _col(column), pattern=pattern, mostly=mostly, severity=severity, name=id
    )


def unique(
    columns: str | Sequence[str],
    *,
    mostly: float = 1.0,
    severity: str = "error",
    id: str | None = None,
) -> Expectation:
    """No two rows of the insert share these columns' values (every duplicate fails).
    Rows with a missing value in any of the columns pass."""
    cols = (columns,) if isinstance(columns, str) else tuple(columns)
    if not cols:
        raise ValidationError("unique([]) needs at least one column.")
    return Expectation("unique", cols, mostly=mostly, severity=severity, name=id)


_FORBIDDEN_SQL = (";", "--", "/*")


SqlParser = Callable[[str], Mapping[str, Any]]
"""DuckDB's parse tree of a SQL text (``json_serialize_sql``), e.g.
``fti.backends.compute.duckdb.parse_sql``: predicates are checked against DuckDB's own grammar,
and the definitions layer stays free of a database."""


def sql_columns(predicate: str, *, parse: SqlParser) -> list[str]:
    """Validate a row predicate and return the column names it references.

    It must be ONE boolean SQL expression over the insert's columns: no statements, no
    subqueries (which could read other tables), no comments, no aggregates over the insert.
    ``parse`` turns SQL text into DuckDB's parse tree (nothing is executed).
    """
    for bad in _FORBIDDEN_SQL:
        if bad in predicate:
            raise ValidationError(
                f"sql({predicate!r}) contains {bad!r}; a predicate is one expression without "
                "statements or comments. Remove it."
            )
    parsed = parse(f"SELECT ({predicate})")
    tree: Mapping[str, Any] = parsed or {"error": True, "error_message": "no result"}
    if tree.get("error"):
        raise ValidationError(
            f"sql({predicate!r}) is not a valid SQL expression: {tree.get('error_message')}. "
            "Write one boolean expression over the insert's columns, e.g. "
            "'amount <= credit_limit'."
        )
    statements = tree["statements"]
    node = statements[0]["node"] if len(statements) == 1 else {}
    if (
        node.get("type") != "SELECT_NODE"
        or len(node.get("select_list", ())) != 1
        or node.get("from_table", {}).get("type") != "EMPTY"
    ):
        raise ValidationError(
            f"sql({predicate!r}) must be a single boolean expression, not a statement or a "
            "list. Example: 'amount <= credit_limit'."
        )
    columns: list[str] = []

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            cls = x.get("class")
            if cls in ("SUBQUERY", "WINDOW", "STAR"):
                raise ValidationError(
                    f"sql({predicate!r}) uses a {cls.lower()}; a predicate may only read the "
                    "columns of the row being checked. Remove it."
                )
            if cls == "FUNCTION" and (x.get("distinct") or x.get("filter")):
                raise ValidationError(
                    f"sql({predicate!r}) uses an aggregate; use a batch rule (mean_between, "
                    "null_fraction, row_count) for properties of the whole insert."
                )
            if cls == "COLUMN_REF":
                names = x.get("column_names", [])
                if len(names) != 1:
                    raise ValidationError(
                        f"sql({predicate!r}) references {'.'.join(names)!r}; use plain column "
                        "names of the insert."
                    )
                columns.append(names[0])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(node["select_list"][0])
    if not columns:
        raise ValidationError(
            f"sql({predicate!r}) references no column; a constant predicate checks nothing."
        )
    return sorted(set(columns))


def sql(
    predicate: str,
    *,
    parse: SqlParser,
    mostly: float = 1.0,
    severity: str = "error",
    id: str | None = None,
) -> Expectation:
    """A boolean SQL expression over the insert's columns, e.g. ``"amount <= credit_limit"``.
    Rows where it is false fail; NULL passes (as in a SQL CHECK constraint). ``parse``: see
    :data:`SqlParser` (``fti.expect.sql`` passes DuckDB's)."""
    if not isinstance(predicate, str) or not predicate.strip():
        raise ValidationError(f"sql() needs a predicate string. Got {predicate!r}.")
    cols = sql_columns(predicate, parse=parse)
    return Expectation(
        "sql",
        tuple(cols),
        predicate=predicate.strip(),
        mostly=mostly,
        severity=severity,
        name=id,
    )


def row_count(
    *,
    min: int | None = None,
    max: int | None = None,
    severity: str = "error",
    id: str | None = None,
) -> Expectation:
    """The insert has between ``min`` and ``max`` rows (inclusive)."""
    if min is None and max is None:
        raise ValidationError("row_count() needs min=, max= or both.")
    return Expectation("row_count", (), lo=min, hi=max, severity=severity, name=id)


def max_age(
    column: str, age: timedelta, *, severity: str = "error", id: str | None = None
) -> Expectation:
    """Freshness: the newest ``column`` timestamp of the insert is at most ``age`` old."""
    if not isinstance(age, timedelta) or age <= timedelta(0):
        raise ValidationError(
            f"max_age({column!r}, age) needs a timedelta > 0. Got {age!r} instead."
        )
    return Expectation("max_age", _col(column), max_age=age, severity=severity, name=id)


def mean_between(
    column: str,
    lo: float | None = None,
    hi: float | None = None,
    *,
    severity: str = "error",
    id: str | None = None,
) -> Expectation:
    """The mean of the insert's non-missing values of ``column`` is within [lo, hi]."""
    if lo is None and hi is None:
        raise ValidationError(f"mean_between({column!r}) needs lo=, hi= or both.")
    return Expectation("mean_between", _col(column), lo=lo, hi=hi, severity=severity, name=id)


def null_fraction(
    column: str,
    *,
    max: float,
    severity: str = "error",
    id: str | None = None,
) -> Expectation:
    """At most this fraction of the insert's rows is missing ``column``."""
    if isinstance(max, bool) or not isinstance(max, int | float) or not 0 <= max <= 1:
        raise ValidationError(
            f"null_fraction({column!r}, max=) must be a fraction in [0, 1]. Got {max!r}."
        )
    return Expectation("null_fraction", _col(column), hi=float(max), severity=severity, name=id)


# ------------------------------------------------------------------------- lists
def check_on_invalid(on_invalid: object) -> str:
    if on_invalid not in ON_INVALID:
        raise ValidationError(
            f"The 'on_invalid' parameter must be one of {list(ON_INVALID)}. Got {on_invalid!r} "
            "instead."
        )
    return str(on_invalid)


def check_expectations(expectations: object) -> tuple[Expectation, ...]:
    """A tuple of rules with unique ids, or a ValidationError naming the bad entry."""
    if isinstance(expectations, Expectation) or not isinstance(expectations, Sequence):
        raise ValidationError(
            "expectations must be a list of fti.expect rules, e.g. "
            f"[fti.expect.not_null('x')]. Got {expectations!r} instead."
        )
    out: list[Expectation] = []
    seen: set[str] = set()
    for e in expectations:
        if not isinstance(e, Expectation):
            raise ValidationError(
                f"expectations must be fti.expect rules (fti.expect.not_null(...), ...); got {e!r}."
            )
        if e.id in seen:
            raise ValidationError(
                f"Expectation {e.describe()} appears twice (id {e.id!r}). Remove the duplicate "
                "or give it another id=."
            )
        seen.add(e.id)
        out.append(e)
    return tuple(out)
