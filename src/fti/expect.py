"""``fti.expect``: data-quality rules for feature groups.

>>> fg = fs.feature_group("tx", primary_key=["tx_id"], event_time="ts",
...         expectations=[fti.expect.not_null("amount"),
...                       fti.expect.between("amount", 0, 10_000, mostly=0.99)],
...         on_invalid="quarantine")                                   # doctest: +SKIP

See :mod:`fti.definitions.expectations` for the exact semantics of each rule.
"""

from fti.definitions import expectations as _rules
from fti.definitions.expectations import (
    Expectation,
    between,
    in_set,
    matches,
    max_age,
    mean_between,
    not_null,
    null_fraction,
    row_count,
    unique,
)
from fti.definitions.great_expectations import from_great_expectations

__all__ = [
    "Expectation",
    "between",
    "from_great_expectations",
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


def sql(
    predicate: str, *, mostly: float = 1.0, severity: str = "error", id: str | None = None
) -> Expectation:
    """A boolean SQL expression over the insert's columns, e.g. ``"amount <= credit_limit"``.
    Rows where it is false fail; NULL passes (as in a SQL CHECK constraint). Checked now
    against DuckDB's grammar: one expression, no statements, subqueries or aggregates.

    >>> fti.expect.sql("amount <= credit_limit").columns                   # doctest: +SKIP
    ('amount', 'credit_limit')
    """
    from fti.backends.compute.duckdb import parse_sql  # duckdb loads on first use

    return _rules.sql(predicate, parse=parse_sql, mostly=mostly, severity=severity, id=id)
