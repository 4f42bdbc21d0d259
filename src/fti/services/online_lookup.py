"""Read the latest feature rows per key from the online store (TTL applied at read time)."""

from __future__ import annotations

import logging
import operator
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from fti._internal.frames import from_arrow
from fti._internal.previews import preview
from fti.definitions.feature_group import FeatureGroupSpec
from fti.definitions.fields import arrow_type
from fti.errors import FtiError, NotFoundError, ValidationError
from fti.services import feature_groups, online_health
from fti.services.context import StoreContext
from fti.services.feature_groups import online_table

__all__ = ["OnlineReader"]

log = logging.getLogger("fti.online")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _int_key(bits: int) -> Callable[[Any], int]:
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def encode(v: Any) -> int:
        if isinstance(v, bool):
            raise TypeError
        i = operator.index(v)
        if not lo <= i <= hi:  # the online store would overflow (or never find it)
            raise ValueError(f"out of the int{bits} range [{lo}, {hi}]")
        return i

    return encode


def _str_key(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError
    return v


def _ts_key(v: Any) -> int:
    if not isinstance(v, datetime) or v.tzinfo is None:
        raise TypeError
    return (v - _EPOCH) // timedelta(microseconds=1)


def _date_key(v: Any) -> int:
    if not isinstance(v, date) or isinstance(v, datetime):
        raise TypeError
    return v.toordinal() - _EPOCH_ORDINAL


def _bool_key(v: Any) -> bool:
    if not isinstance(v, bool):
        raise TypeError
    return v


_KEY_ENCODERS: dict[str, Callable[[Any], Any]] = {
    "int8": _int_key(8),
    "int16": _int_key(16),
    "int32": _int_key(32),
    "int64": _int_key(64),
    "string": _str_key,
    "timestamp": _ts_key,
    "date": _date_key,
    "bool": _bool_key,
}


def _wrong_shape() -> tuple[Any, ...]:
    raise KeyError


# An encoded key value of each key dtype, for probe lookups (whether or not such a key exists).
_PROBE_VALUES: dict[str, Any] = {
    "int8": 0,
    "int16": 0,
    "int32": 0,
    "int64": 0,
    "string": "",
    "timestamp": 0,
    "date": 0,
    "bool": False,
}


class OnlineReader:
    """Prepared lookups for one feature group version; built once per handle."""

    def __init__(
        self, ctx: StoreContext, spec: FeatureGroupSpec, *, heal_wait: float = 0.0
    ) -> None:
        self.ctx = ctx
        # On a miss, how long to wait for the restore of a lost table before answering 503
        # (0 in servers: never block a request; a library caller may prefer to wait).
        self.heal_wait = heal_wait
        self.spec = spec
        self.table = online_table(spec)
        self.key_names = list(spec.primary_key)
        self._key_set = frozenset(self.key_names)
        self.encoders = [_KEY_ENCODERS[t] for _, t in self.table.keys]
        self.ttl_us = None if spec.ttl is None else spec.ttl // timedelta(microseconds=1)
        # Output columns: keys, event time (if any), features.
        self.value_names = ([spec.event_time] if spec.event_time else []) + self.table.feature_names
        # Precomputed for the per-call hot path.
        self._feature_names = tuple(self.table.feature_names)
        self._single = (self.key_names[0], self.encoders[0]) if len(self.key_names) == 1 else None

    def encode_key(self, entity: Mapping[str, Any]) -> tuple[Any, ...]:
        if len(entity) != len(self.key_names) or entity.keys() != self._key_set:
            missing = [k for k in self.key_names if k not in entity]
            extra = [k for k in entity if k not in self._key_set]
            raise ValidationError(
                f"Entity {preview(dict(entity))} does not match the primary key "
                f"{self.key_names} of feature group {self.spec.name!r}"
                + (f"; missing {missing}" if missing else "")
                + (f"; unexpected {preview(extra)}" if extra else "")
                + "."
            )
        out = []
        for name, enc, (_, dtype) in zip(
            self.key_names, self.encoders, self.table.keys, strict=True
        ):
            value = entity[name]
            try:
                out.append(enc(value))
            except TypeError:
                raise ValidationError(
                    f"Key {name!r} of feature group {self.spec.name!r} is {dtype}; got "
                    f"{preview(value)} ({type(value).__name__}). Pass a {dtype} value."
                ) from None
            except ValueError as e:
                raise ValidationError(
                    f"Key {name!r} of feature group {self.spec.name!r} is {dtype}; got "
                    f"{value!r}, {e}. Pass a key value the column can hold."
                ) from None
        return tuple(out)

    def _encode_all(self, entities: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        if self._single is not None:
            name, enc = self._single
            try:
                return [(enc(e[name]),) if len(e) == 1 else _wrong_shape() for e in entities]
            except (KeyError, TypeError, ValueError):
                pass  # encode_key below names the entity and what is wrong with it
        return [self.encode_key(e) for e in entities]

    def rows(self, entities: Sequence[Mapping[str, Any]]) -> list[dict[str, Any] | None]:
        """One dict per entity (None where the key is unknown or expired)."""
        keys = self._encode_all(entities)
        raw = self.ctx.online.read(self.table, keys)
        # A miss is either an unknown key or a store that lost its data: the marker tells
        # which (one more round trip, on misses only).
        if None in raw and not online_health.ensure_held(
            self.ctx, self.spec, self.table, wait=self.heal_wait
        ):
            raw = self.ctx.online.read(self.table, keys)
        cutoff = None if self.ttl_us is None else time.time_ns() // 1000 - self.ttl_us
        et_name = self.spec.event_time
        names = self._feature_names
        out: list[dict[str, Any] | None] = []
        append = out.append
        for entity, r in zip(entities, raw, strict=True):
            if r is None or (cutoff is not None and r[0] < cutoff):
                append(None)
                continue
            row = dict(entity)
            if et_name:
                row[et_name] = _EPOCH + timedelta(microseconds=r[0])
            row.update(zip(names, r[2:], strict=True))
            append(row)
        return out

    def problems(self) -> list[str]:
        """Why lookups of this reader would fail now (empty when they work).

        Checks the definition against the registry's current one (the group still exists, is
        online, and still has every column this reader reads, with the same type; a group
        that only gained columns is fine) and makes one probe lookup through the online store
        with exactly the prepared statement requests use (a table lacking a column, an
        unreachable store)."""
        spec = self.spec
        what = f"Feature group {spec.name!r} version {spec.version}"
        try:
            current = feature_groups.get_spec(self.ctx, spec.name, spec.version)
        except NotFoundError:
            return [f"{what} no longer exists in the registry."]
        except FtiError as e:  # e.g. the registry cannot be reached
            return [f"{what}: {e}"]
        if not current.online:
            return [f"{what} is not online."]
        now = {c.name: c.dtype for c in current.columns}
        changed = [
            f"{n!r} ({t} -> {now.get(n, 'absent')})"
            for n, t in (*self.table.keys, *self.table.features)
            if now.get(n) != t
        ]
        if changed:
            return [
                f"{what} changed columns this reader uses: {', '.join(changed)}. Build the "
                "reader again from the current definition."
            ]
        probe = tuple(_PROBE_VALUES[t] for _, t in self.table.keys)
        try:
            row = self.ctx.online.read(self.table, [probe])[0]
        except FtiError as e:
            return [f"{what}: {e}"]
        except Exception as e:  # the backend's own error: its text may carry paths
            log.warning("probe lookup of %s failed", what, exc_info=True)
            return [
                f"{what}: the online store failed a probe lookup ({type(e).__name__}); see the log."
            ]
        if row is not None and len(row) != 2 + len(self._feature_names):
            return [
                f"{what}: the online store returned {len(row) - 2} feature values for the "
                f"{len(self._feature_names)} columns {list(self._feature_names)}."
            ]
        return []

    def frame(self, entities: Sequence[Mapping[str, Any]], fmt: str) -> Any:
        rows = self.rows(entities)
        names = self.key_names + self.value_names
        cols: dict[str, list[Any]] = {n: [] for n in names}
        for entity, row in zip(entities, rows, strict=True):
            for n in names:
                cols[n].append(row[n] if row is not None else entity.get(n))
        dtypes = {c.name: c.dtype for c in self.spec.columns}
        table = pa.table({n: pa.array(cols[n], type=arrow_type(dtypes[n])) for n in names})
        return from_arrow(table, fmt)
