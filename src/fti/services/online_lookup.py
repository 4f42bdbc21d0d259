"""Read the latest feature rows per key from the online store (TTL applied at read time)."""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from fti._internal.frames import from_arrow
from fti.definitions.feature_group import FeatureGroupSpec
from fti.definitions.fields import arrow_type
from fti.errors import ValidationError
from fti.services import online_health
from fti.services.context import StoreContext
from fti.services.feature_groups import online_table

__all__ = ["OnlineReader"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _int_key(v: Any) -> int:
    if isinstance(v, bool):
        raise TypeError
    return operator.index(v)


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
    "int8": _int_key,
    "int16": _int_key,
    "int32": _int_key,
    "int64": _int_key,
    "string": _str_key,
    "timestamp": _ts_key,
    "date": _date_key,
    "bool": _bool_key,
}


def _wrong_shape() -> tuple[Any, ...]:
    raise KeyError


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
                f"Entity {dict(entity)!r} does not match the primary key {self.key_names} of "
                f"feature group {self.spec.name!r}"
                + (f"; missing {missing}" if missing else "")
                + (f"; unexpected {extra}" if extra else "")
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
                    f"{value!r} ({type(value).__name__}). Pass a {dtype} value."
                ) from None
        return tuple(out)

    def _encode_all(self, entities: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        if self._single is not None:
            name, enc = self._single
            try:
                return [(enc(e[name]),) if len(e) == 1 else _wrong_shape() for e in entities]
            except (KeyError, TypeError):
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
