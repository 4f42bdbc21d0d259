"""Online stores: the latest row per key of each online feature group.

Every implementation receives *canonical batches*: Arrow tables whose columns are the key
columns, ``_fti_et`` (event time as int64 microseconds since the epoch, UTC; 0 when the group has
no event time), ``_fti_seq`` (int64 ingestion order) and the feature columns in fti's Arrow
types. A row replaces the stored row for its key only if ``(_fti_et, _fti_seq)`` is greater —
enforced inside the backend, atomically, so an older or out-of-order write never wins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from fti._internal.names import SEQ

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["ET", "SEQ", "OnlineStore", "OnlineTable", "decoder_for"]

ET = "_fti_et"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _ts(v: Any) -> Any:
    return None if v is None else _EPOCH + timedelta(microseconds=v)


def _date(v: Any) -> Any:
    return None if v is None else date.fromordinal(_EPOCH_ORDINAL + v)


def _bool(v: Any) -> Any:
    return None if v is None else bool(v)


def decoder_for(dtype: str) -> Callable[[Any], Any] | None:
    """How to turn a stored value back into the Python value of ``dtype`` (None: as is).

    Every store keeps timestamps as integer microseconds since the epoch (UTC), dates as days
    since the epoch and booleans as 0/1, so they all decode alike and a read returns the same
    Python values whichever store answers it.
    """
    return {"timestamp": _ts, "date": _date, "bool": _bool}.get(dtype)


@dataclass(frozen=True)
class OnlineTable:
    """What an online store needs to know about one feature group version.

    Its identity is the whole definition, not the name: a feature group that gained columns
    (``fg.add_features``) has a new ``OnlineTable`` under the same name, and a store caches
    prepared statements and decoders per definition, so a reader holding the older one and a
    reader holding the newer one each get the columns they asked for.
    """

    name: str  # e.g. "weather_v1"; a validated identifier
    keys: tuple[tuple[str, str], ...]  # (column, dtype)
    features: tuple[tuple[str, str], ...]  # (column, dtype)
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        # Stores look tables up per read: hash the definition once, not on every lookup.
        object.__setattr__(self, "_hash", hash((self.name, self.keys, self.features)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def key_names(self) -> list[str]:
        return [k for k, _ in self.keys]

    @property
    def feature_names(self) -> list[str]:
        return [f for f, _ in self.features]


class OnlineStore(Protocol):
    """Latest-row-per-key storage. Values come back decoded to Python objects."""

    url: str
    # True when ``upsert`` gives up the GIL for every row (an embedded database driven by the
    # sqlite3 module): other Python work running meanwhile in the process slows it down many
    # times over, so bulk writers keep the two apart. False: it works in rounds of many rows.
    gil_per_row: bool

    def ensure_table(self, table: OnlineTable) -> None:
        """Create the table, or add feature columns that are new in ``table``."""

    def upsert(self, table: OnlineTable, batch: pa.Table, *, version: int | None) -> int:
        """Write a canonical batch with the newer-wins rule; mark ``version`` applied in the
        same transaction. Returns the number of rows that changed."""

    def read(
        self, table: OnlineTable, keys: Sequence[tuple[Any, ...]]
    ) -> list[tuple[Any, ...] | None]:
        """For each key tuple: ``(et_us, seq, *features)`` or None, in the order given."""

    def delete(self, table: OnlineTable, keys: Sequence[tuple[Any, ...]]) -> int:
        """Remove keys; returns how many existed."""

    def applied_versions(self, table: OnlineTable) -> set[int]:
        """Offline table versions whose changes this store already holds."""

    def mark_applied(self, table: OnlineTable, versions: Iterable[int]) -> None:
        """Record offline versions as applied."""

    def count(self, table: OnlineTable) -> int:
        """Number of keys stored."""

    def mark_synced(self, table: OnlineTable) -> None:
        """Set the table's marker: the store holds every applied version's rows."""

    def holds(self, table: OnlineTable) -> bool:
        """True if the marker set by ``mark_synced`` is there. It lives with the data (same
        Redis database; the SQLite table must exist too), so a store that lost the data (a
        FLUSHDB, a restart without persistence, a dropped table) lost the marker too."""

    def exclusive(self, table: OnlineTable, *, seconds: float) -> AbstractContextManager[bool]:
        """A lock on ``table`` across processes (at most ``seconds`` long), not waited for:
        yields True if this caller holds it, False if someone else does."""

    def drop(self, table: OnlineTable) -> None:
        """Remove the table, its applied-version marks and its marker."""

    def close(self) -> None:
        """Release connections."""

    def ping(self) -> None:
        """Reach the service (for ``fti doctor``): one cheap request; BackendUnavailableError
        (or the driver's error) if it cannot be reached."""
