"""Import a Great Expectations suite (JSON) as fti expectations.

Supported expectation types (the common ones; any other is an error that names it):
``expect_column_values_to_not_be_null``, ``expect_column_values_to_be_between``,
``expect_column_values_to_be_in_set``, ``expect_column_values_to_match_regex``,
``expect_column_values_to_be_unique``, ``expect_compound_columns_to_be_unique``,
``expect_table_row_count_to_be_between`` and ``expect_column_mean_to_be_between``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fti.definitions import expectations as ex
from fti.errors import ValidationError

__all__ = ["SUPPORTED", "from_great_expectations"]


def _mostly(kw: Mapping[str, Any]) -> float:
    return float(kw.get("mostly", 1.0))


def _check_exclusive(kind: str, kw: Mapping[str, Any]) -> None:
    if kw.get("strict_min") or kw.get("strict_max"):
        raise ValidationError(
            f"{kind} with strict_min/strict_max is not supported (fti bounds are inclusive). "
            "Adjust the bound and drop the flag."
        )


def _between(kw: Mapping[str, Any]) -> ex.Expectation:
    _check_exclusive("expect_column_values_to_be_between", kw)
    return ex.between(kw["column"], kw.get("min_value"), kw.get("max_value"), mostly=_mostly(kw))


def _mean(kw: Mapping[str, Any]) -> ex.Expectation:
    _check_exclusive("expect_column_mean_to_be_between", kw)
    return ex.mean_between(kw["column"], kw.get("min_value"), kw.get("max_value"))


SUPPORTED: dict[str, Callable[[Mapping[str, Any]], ex.Expectation]] = {
    "expect_column_values_to_not_be_null": lambda kw: ex.not_null(kw["column"], mostly=_mostly(kw)),
    "expect_column_values_to_be_between": _between,
    "expect_column_values_to_be_in_set": lambda kw: ex.in_set(
        kw["column"], kw["value_set"], mostly=_mostly(kw)
    ),
    "expect_column_values_to_match_regex": lambda kw: ex.matches(
        kw["column"], kw["regex"], mostly=_mostly(kw)
    ),
    "expect_column_values_to_be_unique": lambda kw: ex.unique([kw["column"]], mostly=_mostly(kw)),
    "expect_compound_columns_to_be_unique": lambda kw: ex.unique(
        kw["column_list"], mostly=_mostly(kw)
    ),
    "expect_table_row_count_to_be_between": lambda kw: ex.row_count(
        min=kw.get("min_value"), max=kw.get("max_value")
    ),
    "expect_column_mean_to_be_between": _mean,
}


def from_great_expectations(path: str | Path) -> list[ex.Expectation]:
    """Read a Great Expectations suite JSON file into a list of rules.

    >>> rules = fti.expect.from_great_expectations("suites/tx.json")          # doctest: +SKIP
    """
    p = Path(path)
    try:
        suite = json.loads(p.read_text())
    except FileNotFoundError:
        raise ValidationError(f"Great Expectations suite {str(p)!r} does not exist.") from None
    except json.JSONDecodeError as e:
        raise ValidationError(
            f"Great Expectations suite {str(p)!r} is not valid JSON ({e})."
        ) from None
    items = suite.get("expectations") if isinstance(suite, dict) else None
    if not isinstance(items, list):
        raise ValidationError(
            f"{str(p)!r} is not a Great Expectations suite: it has no 'expectations' list."
        )
    out: list[ex.Expectation] = []
    for i, item in enumerate(items):
        kind = item.get("expectation_type") or item.get("type")
        make = SUPPORTED.get(str(kind))
        if make is None:
            raise ValidationError(
                f"Expectation #{i} of {str(p)!r} has type {kind!r}, which fti cannot import. "
                f"Supported types: {sorted(SUPPORTED)}. Remove it or write it as an "
                "fti.expect rule (fti.expect.sql(...) covers most row checks)."
            )
        kwargs = item.get("kwargs", {})
        try:
            out.append(make(kwargs))
        except KeyError as e:
            raise ValidationError(
                f"Expectation #{i} ({kind}) of {str(p)!r} lacks the argument {e.args[0]!r}."
            ) from None
    return out
