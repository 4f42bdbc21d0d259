"""``fti.expect``: data-quality rules for feature groups.

>>> fg = fs.feature_group("tx", primary_key=["tx_id"], event_time="ts",
...         expectations=[fti.expect.not_null("amount"),
...                       fti.expect.between("amount", 0, 10_000, mostly=0.99)],
...         on_invalid="quarantine")                                   # doctest: +SKIP

See :mod:`fti.definitions.expectations` for the exact semantics of each rule.
"""

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
    sql,
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
