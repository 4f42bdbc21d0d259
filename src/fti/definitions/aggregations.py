"""Windowed aggregations over an event stream, and the exact arithmetic both paths share.

``Aggregation("amount", "sum", window=timedelta(hours=1))`` declares one feature: for an entity
key and a time ``t``, the aggregate of that key's events with ``event_time`` in
``(t - window, t]`` (a sliding window, in event time, at microsecond resolution).

Exactness. The stream runtime and the DuckDB backfill must produce *identical* values whatever
the order in which events arrive, so no floating-point sum is ever accumulated:

- every numeric value is turned into an exact integer (an int column is used as is; a float
  ``v`` becomes ``mantissa * 2**exponent`` and is accumulated as the integer
  ``v * 2**FLOAT_SCALE``), so partial sums and sums of squares are plain Python ints, exact and
  independent of order;
- ``finalize`` rounds once, at the end: ``sum`` and ``mean`` are the correctly rounded value of
  the exact rational (+-inf beyond the float64 range), ``stddev`` (sample, ``n - 1``; null
  below 2 values) is ``sqrt`` of the correctly rounded exact variance;
- ``min``/``max`` are exact; ``last`` is the value of the event with the greatest
  ``(event_time, event_id)`` (the id breaks ties deterministically); ``count_distinct`` counts
  distinct non-null values exactly (memory grows with distinct values per window).

Nulls are ignored, as in SQL: ``count`` counts non-null values, an all-null window gives null.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Any

from fti._internal.names import check_identifier, check_unique
from fti.errors import ValidationError

__all__ = [
    "FLOAT_SCALE",
    "FUNCTIONS",
    "Aggregation",
    "Partial",
    "WindowSpec",
    "exact_int",
    "finalize",
    "output_dtype",
    "value_scale",
]

FUNCTIONS = ("count", "sum", "mean", "min", "max", "stddev", "last", "count_distinct")
# A float64 is an integer multiple of 2**-1074, so v * 2**1074 is an exact integer.
FLOAT_SCALE = 1074
_NUMERIC = {"int8", "int16", "int32", "int64", "float32", "float64", "bool"}
_FLOATS = {"float32", "float64"}
_UNITS = (("d", 86_400_000_000), ("h", 3_600_000_000), ("m", 60_000_000), ("s", 1_000_000))


def _window_suffix(us: int) -> str:
    for unit, size in _UNITS:
        if us % size == 0:
            return f"{us // size}{unit}"
    return f"{us}us"


@dataclass(frozen=True, init=False)
class Aggregation:
    """One windowed aggregate of a column, keyed by the entity key, on event time.

    Sliding (default): the value at ``t`` covers ``(t - window, t]``. With ``hop=h`` (a
    hopping window; ``hop=window`` is a tumbling window) the window ends at the last multiple
    of ``h`` (since the epoch, UTC) at or before ``t``: ``(b - window, b]`` with
    ``b = t - t mod h``, so the value only moves at hop boundaries.

    >>> from datetime import timedelta
    >>> Aggregation("amount", "sum", window=timedelta(hours=1)).output
    'amount_sum_1h'
    >>> ten_minutes = timedelta(minutes=10)
    >>> Aggregation("amount", "sum", window=timedelta(hours=1), hop=ten_minutes).output
    'amount_sum_1h_hop10m'
    """

    column: str
    fn: str
    window: timedelta
    name: str | None
    hop: timedelta | None

    def __init__(
        self,
        column: str,
        fn: str,
        *,
        window: timedelta,
        name: str | None = None,
        hop: timedelta | None = None,
    ) -> None:
        object.__setattr__(self, "column", column)
        object.__setattr__(self, "fn", fn)
        object.__setattr__(self, "window", window)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "hop", hop)
        self.__post_init__()

    def __post_init__(self) -> None:
        check_identifier(self.column, what="aggregation column")
        if self.fn not in FUNCTIONS:
            raise ValidationError(
                f"The 'fn' parameter must be one of {list(FUNCTIONS)}. Got {self.fn!r} instead."
            )
        for param, value in (("window", self.window), ("hop", self.hop)):
            if value is None and param == "hop":
                continue
            if not isinstance(value, timedelta) or value <= timedelta(0):
                raise ValidationError(
                    f"The '{param}' parameter must be a timedelta > 0. Got {value!r} instead."
                )
            if value % timedelta(microseconds=1):
                raise ValidationError(
                    f"The '{param}' parameter must be a whole number of microseconds. "
                    f"Got {value!r} instead."
                )
        if self.hop is not None and self.window % self.hop:
            raise ValidationError(
                f"The 'window' ({self.window}) must be a multiple of 'hop' ({self.hop}); "
                "use hop=window for a tumbling window."
            )
        if self.name is not None:
            check_identifier(self.name, what="aggregation name")

    @property
    def window_us(self) -> int:
        return self.window // timedelta(microseconds=1)

    @property
    def hop_us(self) -> int:
        """The hop in µs; 0 for a sliding window."""
        return 0 if self.hop is None else self.hop // timedelta(microseconds=1)

    @property
    def span_us(self) -> int:
        """How far back from ``t`` the window can reach: ``window + hop``."""
        return self.window_us + self.hop_us

    def window_end(self, t: int) -> int:
        """The (inclusive) end of the window the value at ``t`` (µs) covers."""
        return t - t % self.hop_us if self.hop_us else t

    @property
    def output(self) -> str:
        """The feature column name: ``name`` or ``<column>_<fn>_<window>[_hop<hop>]``."""
        if self.name:
            return self.name
        out = f"{self.column}_{self.fn}_{_window_suffix(self.window_us)}"
        if self.hop_us == self.window_us:
            return out + "_tumbling"
        return out + (f"_hop{_window_suffix(self.hop_us)}" if self.hop_us else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "fn": self.fn,
            "window_us": self.window_us,
            "hop_us": self.hop_us or None,
            "name": self.name,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Aggregation:
        hop = d.get("hop_us")
        return cls(
            d["column"],
            d["fn"],
            window=timedelta(microseconds=int(d["window_us"])),
            name=d.get("name"),
            hop=None if hop is None else timedelta(microseconds=int(hop)),
        )


def output_dtype(fn: str, column_dtype: str) -> str:
    """The dtype of an aggregate's feature column."""
    if fn in ("count", "count_distinct"):
        return "int64"
    if fn in ("mean", "stddev"):
        return "float64"
    if fn == "sum":
        return "float64" if column_dtype in _FLOATS else "int64"
    return column_dtype  # min, max, last


def value_scale(dtype: str) -> int:
    """Binary scale of the exact integer a value of ``dtype`` is accumulated as."""
    return FLOAT_SCALE if dtype in _FLOATS else 0


def exact_int(value: Any, scale: int) -> int:
    """``value * 2**scale`` as an exact int (``value`` is an int, bool or a finite float)."""
    if scale == 0:
        return int(value)
    num, den = float(value).as_integer_ratio()  # den is a power of two <= 2**1074
    return num << (scale - den.bit_length() + 1)


@dataclass(frozen=True)
class WindowSpec:
    """What a streaming feature group aggregates: keys, event time, event id, aggregates.

    ``columns`` maps every event column the aggregates need to its dtype.
    """

    keys: tuple[str, ...]
    event_time: str
    event_id: str
    aggregations: tuple[Aggregation, ...]
    columns: Mapping[str, str]
    allowed_lateness: timedelta = timedelta(0)
    tile: timedelta | None = None

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValidationError("A streaming feature group needs key=['<column>', ...].")
        for name in (*self.keys, self.event_time, self.event_id):
            check_identifier(name)
        check_unique([*self.keys, self.event_time, self.event_id], what="key/time/id column")
        if not self.aggregations:
            raise ValidationError("Declare at least one fti.Aggregation(...).")
        check_unique([a.output for a in self.aggregations], what="aggregation output")
        for a in self.aggregations:
            if a.column not in self.columns:
                raise ValidationError(
                    f"Aggregation {a.output!r} reads column {a.column!r}, which is not in the "
                    f"event schema {sorted(self.columns)}. Add it to schema=."
                )
            if a.fn in ("sum", "mean", "stddev") and self.columns[a.column] not in _NUMERIC:
                raise ValidationError(
                    f"Aggregation {a.output!r}: {a.fn} needs a numeric column; "
                    f"{a.column!r} is {self.columns[a.column]}."
                )
            if a.output in (*self.keys, self.event_time):
                raise ValidationError(f"Aggregation name {a.output!r} clashes with a key column.")
        if not isinstance(self.allowed_lateness, timedelta) or self.allowed_lateness < timedelta(0):
            raise ValidationError(
                "The 'allowed_lateness' parameter must be a timedelta >= 0. "
                f"Got {self.allowed_lateness!r} instead."
            )

    @cached_property
    def tile_us(self) -> int:
        """Tile size of the stream state: ``tile``, or 1/16 of the smallest window."""
        if self.tile is not None:
            return max(1, self.tile // timedelta(microseconds=1))
        return max(1, min(a.window_us for a in self.aggregations) // 16)

    @cached_property
    def max_window_us(self) -> int:
        """The longest reach back from a time ``t``: window + hop, over every aggregation."""
        return max(a.span_us for a in self.aggregations)

    @cached_property
    def lateness_us(self) -> int:
        return self.allowed_lateness // timedelta(microseconds=1)

    @cached_property
    def value_columns(self) -> list[str]:
        """Columns aggregated, in first-use order."""
        return list(dict.fromkeys(a.column for a in self.aggregations))

    def feature_dtypes(self) -> dict[str, str]:
        return {a.output: output_dtype(a.fn, self.columns[a.column]) for a in self.aggregations}


class Partial:
    """The exact partial aggregate of one column over a set of events (mergeable)."""

    __slots__ = ("count", "distinct", "last", "max", "min", "sum", "sumsq")

    def __init__(self) -> None:
        self.count = 0
        self.sum = 0  # exact, at the column's scale
        self.sumsq = 0  # exact, at twice the scale
        self.min: Any = None
        self.max: Any = None
        self.last: tuple[int, str, Any] | None = None  # (event time, event id, value)
        self.distinct: set[Any] | None = None

    def add(self, et: int, eid: str, value: Any, exact: int | None, *, distinct: bool) -> None:
        """Add one event's value (``exact`` = ``exact_int(value)`` or None if not summed)."""
        if value is None:
            return
        self.count += 1
        if exact is not None:
            self.sum += exact
            self.sumsq += exact * exact
        if self.min is None or value < self.min:
            self.min = value
        if self.max is None or value > self.max:
            self.max = value
        if self.last is None or (et, eid) > self.last[:2]:
            self.last = (et, eid, value)
        if distinct:
            if self.distinct is None:
                self.distinct = set()
            self.distinct.add(value)


def _div(num: int, den: int) -> float:
    """``num / den`` correctly rounded (int / int is, in CPython); +-inf beyond float64."""
    try:
        return num / den
    except OverflowError:
        return math.copysign(math.inf, num)


def finalize(fn: str, p: Partial, scale: int) -> Any:
    """The feature value of aggregate ``fn`` from an exact partial (rounded once, here)."""
    n = p.count
    if fn == "count":
        return n
    if fn == "count_distinct":
        return len(p.distinct) if p.distinct is not None else 0
    if n == 0:
        return None
    if fn == "sum":
        return p.sum if scale == 0 else _div(p.sum, 1 << scale)
    if fn == "mean":
        return _div(p.sum, n << scale)
    if fn == "stddev":
        if n < 2:
            return None
        # Sample variance from exact sums; one correctly rounded division, then sqrt.
        return math.sqrt(_div(n * p.sumsq - p.sum * p.sum, (n * (n - 1)) << (2 * scale)))
    if fn == "min":
        return p.min
    if fn == "max":
        return p.max
    if fn == "last":
        return p.last[2] if p.last is not None else None
    raise ValidationError(f"Unknown aggregation function {fn!r}.")
