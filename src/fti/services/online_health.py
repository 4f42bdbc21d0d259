"""Find out whether the online store still holds what the offline table says it should.

Two kinds of loss:

* **the whole table** (a FLUSHDB, a Redis restarted without persistence, a dropped SQLite
  table): the store's marker (``OnlineStore.holds``) went with the data. Readers check it when
  a lookup misses, and a restore from the offline table starts in the background, under a lock
  so one process does it; until it is done lookups fail with a 503 that says why (never a 404
  or a null that would be a wrong answer) and the server's ``/readyz`` answers 503 with the
  reason.
* **some keys** (an eviction, a ``DEL``): the marker stays, so readers cannot tell a lost key
  from an unknown one. ``verify`` looks up offline keys online (all of them, or a random
  sample whose size it reports) and counts those missing or older than the offline latest row;
  ``fti online status`` shows it and ``fti online rebuild`` restores them.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from fti.backends.offline import SEQ
from fti.backends.online import ET, OnlineTable
from fti.definitions.feature_group import FeatureGroupSpec
from fti.errors import BackendUnavailableError
from fti.services import materialization
from fti.services.context import StoreContext
from fti.services.feature_groups import online_table

__all__ = ["Verification", "ensure_held", "problems", "start_heal", "verify"]

_READ_CHUNK = 1000
_EXAMPLES = 5

# Restores running in this process, by (online store URL, table): one thread per table.
_healing_lock = threading.Lock()
_healing: dict[tuple[str, str], threading.Thread] = {}


def _lost(ctx: StoreContext, spec: FeatureGroupSpec, table: OnlineTable) -> bool:
    return not ctx.online.holds(table) and ctx.offline.exists(spec.key)


def _heal(ctx: StoreContext, spec: FeatureGroupSpec) -> None:
    try:
        materialization.catch_up(ctx, spec)
    finally:
        with _healing_lock:
            _healing.pop((ctx.online.url, online_table(spec).name), None)


def start_heal(ctx: StoreContext, spec: FeatureGroupSpec) -> threading.Thread:
    """Restore the table from the offline table in a background thread (one per table)."""
    key = (ctx.online.url, online_table(spec).name)
    with _healing_lock:
        thread = _healing.get(key)
        if thread is None:
            thread = threading.Thread(
                target=_heal, args=(ctx, spec), name=f"fti-heal-{key[1]}", daemon=True
            )
            _healing[key] = thread
            thread.start()
    return thread


def _lost_message(spec: FeatureGroupSpec) -> str:
    return (
        f"The online store lost the data of feature group {spec.name!r} version "
        f"{spec.version} (its marker is gone, e.g. after a FLUSHDB or a restart without "
        "persistence); it is being restored from the offline table. Retry in a moment, or "
        f"run: fti online rebuild {spec.name}:{spec.version}"
    )


def ensure_held(
    ctx: StoreContext, spec: FeatureGroupSpec, table: OnlineTable, *, wait: float = 0.0
) -> bool:
    """Called by readers when a lookup missed. True if the store holds the table (the miss
    is a real one); False if it lost the table and a restore, waited for up to ``wait``
    seconds, completed. Raises BackendUnavailableError (503) while it is still restoring."""
    if not _lost(ctx, spec, table):
        return True
    thread = start_heal(ctx, spec)
    if wait > 0:
        thread.join(timeout=wait)
    if not ctx.online.holds(table):
        raise BackendUnavailableError(_lost_message(spec))
    return False


def problems(ctx: StoreContext, specs: Iterable[FeatureGroupSpec]) -> list[str]:
    """Why the online store cannot answer for these groups now (empty: it can). A lost table
    starts its restore in the background, so a server heals without waiting for traffic."""
    out = []
    for spec in specs:
        if not spec.online or not spec.has_schema:
            continue
        if _lost(ctx, spec, online_table(spec)):
            start_heal(ctx, spec)
            out.append(_lost_message(spec))
    return out


@dataclass(frozen=True)
class Verification:
    """How many offline keys the online store is missing (or holds an older row for)."""

    feature_group: str
    version: int
    offline_keys: int  # distinct keys in the offline table: what the store should hold
    online_keys: int  # what the store's own count says
    checked: int  # keys looked up
    exact: bool  # every offline key was looked up (else a uniform random sample)
    missing: int  # checked keys the store does not hold
    stale: int  # checked keys whose online row is older than the offline latest row
    marker: bool  # the store's marker is there (False: the table was lost as a whole)
    missing_examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def estimated_missing(self) -> int:
        """``missing`` scaled from the sample to every offline key."""
        if self.exact or self.checked == 0:
            return self.missing
        return round(self.missing * self.offline_keys / self.checked)

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature_group": self.feature_group,
            "version": self.version,
            "offline_keys": self.offline_keys,
            "online_keys": self.online_keys,
            "checked": self.checked,
            "exact": self.exact,
            "missing": self.missing,
            "estimated_missing": self.estimated_missing,
            "stale": self.stale,
            "marker": self.marker,
            "missing_examples": self.missing_examples,
        }


def verify(
    ctx: StoreContext, spec: FeatureGroupSpec, *, sample: int | None = 1000, seed: int = 0
) -> Verification:
    """Look up offline keys online: every key (``sample=None``) or ``sample`` random ones."""
    table = online_table(spec)
    marker = ctx.online.holds(table)
    online_keys = ctx.online.count(table)
    if not ctx.offline.exists(spec.key):
        return Verification(spec.name, spec.version, 0, online_keys, 0, True, 0, 0, marker)
    dataset, _ = ctx.offline.dataset(spec.key)
    newest = materialization.latest_per_key(ctx, spec, dataset)
    latest = materialization.canonical_batch(spec, newest)
    total = latest.num_rows
    exact = sample is None or sample >= total
    if not exact:
        assert sample is not None
        rows = sorted(random.Random(seed).sample(range(total), sample))  # noqa: S311
        latest = latest.take(pa.array(rows, pa.int64()))
    key_cols = [_storage_values(latest.column(k), t) for k, t in table.keys]
    keys = list(zip(*key_cols, strict=True))
    ets = latest.column(ET).to_pylist()
    seqs = latest.column(SEQ).to_pylist()
    missing = stale = 0
    examples: list[dict[str, Any]] = []
    for start in range(0, len(keys), _READ_CHUNK):
        chunk = keys[start : start + _READ_CHUNK]
        for i, got in enumerate(ctx.online.read(table, chunk)):
            j = start + i
            if got is None:
                missing += 1
                if len(examples) < _EXAMPLES:
                    examples.append(dict(zip(spec.primary_key, keys[j], strict=True)))
            elif (got[0], got[1]) < (ets[j], seqs[j]):
                stale += 1
    return Verification(
        spec.name,
        spec.version,
        total,
        online_keys,
        len(keys),
        exact,
        missing,
        stale,
        marker,
        examples,
    )


def _storage_values(col: pa.ChunkedArray, dtype: str) -> list[Any]:
    """Key values as online stores take them: timestamps in µs, dates in days."""
    if dtype == "timestamp":
        col = pc.cast(col, pa.int64())
    elif dtype == "date":
        col = pc.cast(col, pa.int32())
    return col.to_pylist()  # type: ignore[no-any-return]
