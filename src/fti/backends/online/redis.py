"""Redis online store: one string per entity key per feature group version.

Layout (``P`` = the store's key prefix, ``T`` = the table name, e.g. ``weather_v1``)::

    P:T:r:<key>      str   the row: a 40-digit header (event time and ingestion order), then
                           each feature in definition order: ``<bytes>:<text>``, or ``~`` if null
    P:T:n:count      int   number of rows (kept by the same scripts that write them)
    P:T:n:applied    set   offline table versions this store holds
    P:T:n:synced     str   the marker: set once the store holds every applied version's rows;
                           in the same database as the data, so a FLUSHDB removes both
    P:_lock:T        str   held while one process heals the table (SET NX PX, token-checked)

The header is the event time and the ingestion order, each an int64 moved to an unsigned 64-bit
number (``x + 2**63``, order kept) in 20 zero-padded decimal digits, so the newer-wins rule runs
inside Redis on exact integers (a Lua script compares four 10-digit numbers; doubles would round
int64). Rows are built by Arrow for a whole batch; each script call reads its 1,000 keys with one
``MGET`` and writes the winning rows with one ``MSET``.

A null feature is ``~`` and NaN is ``3:nan``, so None and NaN stay distinct. Features are
positional: a feature group version only ever gains features at the end (``add_features``), so
a row written with a narrower definition reads the later features as null, and a reader with a
narrower definition ignores the fields past its own. ``<key>`` is the key value for a one-column
key and ``<len>:<value>`` per column for composite keys, so ``(1, "23")`` and ``(12, "3")``
never collide. Reads are one ``GET`` (one key) or one ``MGET`` (many keys) round trip.

Stores written by fti before this layout (one hash per key under ``P:T:k:``, marks under
``P:T:m:``) have no marker in this one: the first open restores the rows from the offline
table, and ``fti online rebuild NAME`` (a drop of ``P:T:*``) frees the old keys.

TTL is applied at read time by the caller, as for every online store; the rows do not expire,
so a rebuild from the offline table reproduces exactly the same keys.

Operations: run Redis with ``maxmemory-policy noeviction`` (an evicted row would silently
drop a key and skew the count; fti rebuilds, Redis must not guess), and a single primary (with
replicas if wanted): the scripts touch many keys at once, which Redis Cluster only allows
within one hash slot. After data loss, ``fti online rebuild NAME`` (or simply opening the
feature group, which replays the offline versions the store lacks) restores the exact state.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import pyarrow as pa
import pyarrow.compute as pc

from fti.backends.online import ET, SEQ, OnlineTable, decoder_for
from fti.config import mask_url
from fti.errors import BackendUnavailableError, ConfigError

__all__ = ["RedisOnlineStore"]

_PREFIX = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_ROWS_PER_CALL = 1000  # rows per script call: short enough not to block Redis for long
_ROWS_PER_ROUND = 50_000  # rows encoded while Redis runs the previous round's scripts
_SCAN_COUNT = 5_000  # keyspace slots a drop step visits (one script call: ~20-30 ms of Redis)
_HEADER = 40  # digits: event time, then ingestion order, each 20
_HALF = 20
_FLIP = 1 << 63  # int64 + 2**63 -> uint64, order kept
_NULL = 126  # b"~"
_COLON = 58  # b":"

# KEYS[1] count key, KEYS[2] applied set, KEYS[3..] row keys; ARGV[1] version to mark ('' for
# none), ARGV[r + 1] the row for KEYS[r + 2]. A row starts with 40 digits: the event time and
# the ingestion order as unsigned 20-digit decimals; (et, seq) order is the order of those digits,
# compared as four 10-digit numbers (each exact in a Lua double; no locale-dependent string
# comparison). One MGET reads what the keys hold and one MSET writes the rows that win (a key
# given twice competes with its own earlier row): two commands per call, not one per key.
_UPSERT_LUA = """
local function newer(a, b)
  for i = 1, 31, 10 do
    local x, y = tonumber(string.sub(a, i, i + 9)), tonumber(string.sub(b, i, i + 9))
    if x ~= y then return x > y end
  end
  return false
end
local n = #KEYS - 2
if n == 0 then
  if ARGV[1] ~= '' then redis.call('SADD', KEYS[2], ARGV[1]) end
  return 0
end
local olds = redis.call('MGET', unpack(KEYS, 3))
local best, order, created = {}, {}, 0  -- key -> its winning row (nil: the stored one wins)
for r = 1, n do
  local key, row = KEYS[r + 2], ARGV[r + 1]
  local cur = best[key] or olds[r]
  if not cur or newer(row, cur) then
    if not best[key] then
      order[#order + 1] = key
      if not olds[r] then created = created + 1 end
    end
    best[key] = row
  end
end
local args = {}
for _, key in ipairs(order) do
  args[#args + 1] = key
  args[#args + 1] = best[key]
  if #args >= 4000 then
    redis.call('MSET', unpack(args))
    args = {}
  end
end
if #args > 0 then redis.call('MSET', unpack(args)) end
if created > 0 then redis.call('INCRBY', KEYS[1], created) end
if ARGV[1] ~= '' then redis.call('SADD', KEYS[2], ARGV[1]) end
return #order
"""

# One step of a drop, inside Redis: a SCAN step and the UNLINK of what it found, so the keys
# never travel to the client (1M keys: one call per ~_SCAN_COUNT keys instead of two round trips
# and a parse of every name). Returns the next cursor ("0" when the scan is complete).
_DROP_LUA = """
local reply = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[3])
local found = reply[2]
for i = 1, #found, 1000 do
  redis.call('UNLINK', unpack(found, i, math.min(i + 999, #found)))
end
return reply[1]
"""

# KEYS[1] count key, KEYS[2..] row keys to delete.
_DELETE_LUA = """
local n = 0
for k = 2, #KEYS do n = n + redis.call('DEL', KEYS[k]) end
if n > 0 then redis.call('DECRBY', KEYS[1], n) end
return n
"""

# KEYS[1] lock key; ARGV[1] the holder's token: only the holder releases the lock.
_UNLOCK_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# KEYS[1] lock key; ARGV[1] token, ARGV[2] milliseconds: the holder extends its lock.
_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


def _split_url(url: str) -> tuple[str, str]:
    """Remove fti's own ``prefix`` query parameter; return (redis URL, prefix)."""
    parsed = urlparse(url)
    query = parse_qsl(parsed.query, keep_blank_values=True)
    prefix = "fti"
    rest = []
    for k, v in query:
        if k == "prefix":
            prefix = v
        else:
            rest.append((k, v))
    if not _PREFIX.match(prefix):
        raise ConfigError(
            f"Invalid Redis key prefix {prefix!r} in {mask_url(url)!r}: use 1-64 letters, "
            "digits, '_', '.' or '-', e.g. redis://127.0.0.1:6379/0?prefix=fti_prod."
        )
    return urlunparse(parsed._replace(query=urlencode(rest))), prefix


def _key_part(value: Any) -> str:
    if isinstance(value, str):
        return value
    return str(int(value))  # ints, bools, timestamps (µs) and dates (days) as integers


def _decode_str(b: bytes) -> str:
    return b.decode()


def _decode_bool(b: bytes) -> bool:
    return b == b"1"


def _raw_decoder(dtype: str) -> Callable[[bytes], Any]:
    """Stored bytes -> the Python value SqliteOnlineStore returns for ``dtype``."""
    if dtype == "string":
        return _decode_str
    if dtype in ("float32", "float64"):
        return float  # float() and int() parse bytes directly
    if dtype == "bool":
        return _decode_bool
    after = decoder_for(dtype)  # timestamps and dates: stored as integers
    if after is None:
        return int
    return lambda b: after(int(b))


class _Prepared:
    """Per-table encoders and decoders, built once per table schema."""

    def __init__(self, prefix: str, table: OnlineTable) -> None:
        self.table = table
        self.row_prefix = f"{prefix}:{table.name}:r:"
        self.count_key = f"{prefix}:{table.name}:n:count"
        self.applied_key = f"{prefix}:{table.name}:n:applied"
        self.synced_key = f"{prefix}:{table.name}:n:synced"
        self.pattern = f"{prefix}:{table.name}:*"  # this layout's keys and the older one's
        self.lock_key = f"{prefix}:_lock:{table.name}"  # outside the pattern: drop keeps it
        self.decoders = [_raw_decoder(t) for _, t in table.features]
        self.composite = len(table.keys) > 1

    def key(self, values: Sequence[Any]) -> str:
        if not self.composite:
            return self.row_prefix + _key_part(values[0])
        parts = [_key_part(v) for v in values]
        return self.row_prefix + "".join(f"{len(p)}:{p}" for p in parts)

    def decode(self, raw: Any) -> tuple[Any, ...] | None:
        """A stored row -> ``(et, seq, *features)``; fields past the row's end are null."""
        if raw is None:
            return None
        out: list[Any] = [int(raw[:_HALF]) - _FLIP, int(raw[_HALF:_HEADER]) - _FLIP]
        pos, end = _HEADER, len(raw)
        for fn in self.decoders:
            if pos >= end or raw[pos] == _NULL:
                out.append(None)
                pos += 1
                continue
            colon = raw.index(_COLON, pos)
            start = colon + 1
            pos = start + int(raw[pos:colon])
            out.append(fn(raw[start:pos]))
        return tuple(out)


def _order_text(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """int64 -> 20 zero-padded decimal digits of ``x + 2**63``: text order is integer order."""
    unsigned = pc.cast(col, pa.uint64(), safe=False)  # two's complement bits, reinterpreted
    flipped = pc.bit_wise_xor(unsigned, pa.scalar(_FLIP, pa.uint64()))
    return pc.utf8_lpad(pc.cast(flipped, pa.string()), width=_HALF, padding="0")


def _as_text(col: pa.ChunkedArray | pa.Array, dtype: str) -> pa.ChunkedArray | pa.Array:
    """A column as the strings stored in Redis, computed by Arrow (nulls stay null).

    Integers, timestamps (µs) and dates (days) in decimal, bools as 1/0, floats in the shortest
    form that parses back to the same double (float32 widened first, so a value reads back as
    the same double SQLite returns); NaN and infinities as ``nan``/``inf``/``-inf``."""
    if dtype == "string":
        return col
    if dtype == "bool":
        col = pc.cast(col, pa.int8())
    elif dtype == "float32":
        col = pc.cast(col, pa.float64())
    elif dtype == "timestamp":
        col = pc.cast(col, pa.int64())
    elif dtype == "date":
        col = pc.cast(col, pa.int32())
    return pc.cast(col, pa.string())


class RedisOnlineStore:
    """Online store in Redis (``redis://host:port/db?prefix=NAME``; default prefix ``fti``)."""

    gil_per_row = False  # see OnlineStore

    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        redis_url, self.prefix = _split_url(url)
        self._client = redis.Redis.from_url(
            redis_url, decode_responses=False, socket_connect_timeout=5, health_check_interval=30
        )
        self._redis_url = redis_url
        self.ping()
        self._upsert = self._client.register_script(_UPSERT_LUA)
        self._delete = self._client.register_script(_DELETE_LUA)
        self._drop_step = self._client.register_script(_DROP_LUA)
        self._unlock = self._client.register_script(_UNLOCK_LUA)
        self._renew = self._client.register_script(_RENEW_LUA)
        self._prepared: dict[OnlineTable, _Prepared] = {}
        self._last: tuple[OnlineTable, _Prepared] | None = None
        self._lock = threading.Lock()

    def _prep(self, table: OnlineTable) -> _Prepared:
        last = self._last  # readers reuse one OnlineTable object: skip hashing it
        if last is not None and last[0] is table:
            return last[1]
        p = self._prepared.get(table)
        if p is None:
            with self._lock:
                p = self._prepared.setdefault(table, _Prepared(self.prefix, table))
        self._last = (table, p)
        return p

    def close(self) -> None:
        self._client.close()

    def ping(self) -> None:
        """One PING round trip; BackendUnavailableError if the server does not answer or
        refuses the credentials."""
        import redis

        where = mask_url(self._redis_url)
        try:
            self._client.ping()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as e:
            why = str(e).rstrip(".")
            raise BackendUnavailableError(
                f"Cannot reach the Redis online store at {where!r}: {why}. "
                "Start Redis or point FTI_ONLINE at a running server."
            ) from e
        except redis.exceptions.AuthenticationError as e:
            raise BackendUnavailableError(
                f"Redis at {where!r} refused the credentials: {e}. Fix the user "
                "and password in the URL (redis://user:password@host:port/db)."
            ) from e

    # ------------------------------------------------------------------ schema
    def ensure_table(self, table: OnlineTable) -> None:
        # Hashes are schemaless: a feature added later is an absent field (None) in old rows.
        self._prep(table)

    # ------------------------------------------------------------------ writes
    def _rows(self, p: _Prepared, batch: pa.Table) -> tuple[list[str], list[bytes]]:
        """The row keys and the stored rows of ``batch``, built by Arrow for the whole batch."""
        table = p.table
        parts: list[Any] = [p.row_prefix]
        for k, t in table.keys:
            text = _as_text(batch.column(k), t)
            if p.composite:
                parts += [pc.cast(pc.utf8_length(text), pa.string()), ":"]
            parts.append(text)
        keys = pc.binary_join_element_wise(*parts, "")
        fields: list[Any] = [_order_text(batch.column(ET)), _order_text(batch.column(SEQ))]
        for f, t in table.features:
            if f not in batch.column_names:
                fields.append("~")
                continue
            text = _as_text(batch.column(f), t)
            size = pc.cast(pc.binary_length(text), pa.string())
            fields.append(pc.fill_null(pc.binary_join_element_wise(size, text, ":"), "~"))
        rows = pc.cast(pc.binary_join_element_wise(*fields, ""), pa.binary())
        return keys.to_pylist(), rows.to_pylist()

    def _calls(self, p: _Prepared, batch: pa.Table) -> list[tuple[list[str], list[Any]]]:
        """The script calls (keys, args) that write ``batch``, ``_ROWS_PER_CALL`` rows each."""
        keys, rows = self._rows(p, batch)
        head = [p.count_key, p.applied_key]
        return [
            (head + keys[s : s + _ROWS_PER_CALL], [b"", *rows[s : s + _ROWS_PER_CALL]])
            for s in range(0, max(len(keys), 1), _ROWS_PER_CALL)
        ]

    def _run(self, calls: list[tuple[list[str], list[Any]]]) -> int:
        """Pipelined script calls, one round trip; returns the rows they changed."""
        pipe = self._client.pipeline(transaction=False)
        for ks, args in calls:
            self._upsert(keys=ks, args=args, client=pipe)
        return sum(int(r) for r in pipe.execute())

    def upsert(self, table: OnlineTable, batch: pa.Table, *, version: int | None) -> int:
        p = self._prep(table)
        n = batch.num_rows
        # Rows first, the version mark with the last call, sent only after every other call
        # succeeded, so a failure never marks it applied. A large batch goes in rounds: Redis
        # runs one round's scripts while the next round is encoded here.
        rounds = [batch.slice(s, _ROWS_PER_ROUND) for s in range(0, n, _ROWS_PER_ROUND)]
        changed = 0
        if len(rounds) <= 1:
            calls = self._calls(p, batch)
            if len(calls) > 1:
                changed += self._run(calls[:-1])
        else:
            with ThreadPoolExecutor(1, thread_name_prefix="fti-redis-upsert") as pool:
                sent = [pool.submit(self._run, self._calls(p, r)) for r in rounds[:-1]]
                calls = self._calls(p, rounds[-1])
                if len(calls) > 1:
                    sent.append(pool.submit(self._run, calls[:-1]))
                changed += sum(f.result() for f in sent)
        ks, args = calls[-1]
        if version is not None:
            args[0] = version
        changed += int(self._upsert(keys=ks, args=args))
        return changed

    def delete(self, table: OnlineTable, keys: Sequence[tuple[Any, ...]]) -> int:
        p = self._prep(table)
        rows = list(dict.fromkeys(p.key(k) for k in keys))
        total = 0
        for start in range(0, len(rows), _ROWS_PER_CALL):
            total += int(self._delete(keys=[p.count_key, *rows[start : start + _ROWS_PER_CALL]]))
        return total

    def mark_applied(self, table: OnlineTable, versions: Iterable[int]) -> None:
        vs = list(versions)
        if vs:
            self._client.sadd(self._prep(table).applied_key, *vs)

    def applied_versions(self, table: OnlineTable) -> set[int]:
        return {int(v) for v in self._client.smembers(self._prep(table).applied_key)}

    def mark_synced(self, table: OnlineTable) -> None:
        self._client.set(self._prep(table).synced_key, b"1")

    def holds(self, table: OnlineTable) -> bool:
        return bool(self._client.exists(self._prep(table).synced_key))

    @contextmanager
    def exclusive(self, table: OnlineTable, *, seconds: float) -> Iterator[bool]:
        # The lock expires ``seconds`` after its holder stops renewing it (renewed every
        # seconds/3 while held), so a holder that died frees it soon, and a long restore keeps it.
        key = self._prep(table).lock_key
        token = uuid.uuid4().hex
        ms = max(1, int(seconds * 1000))
        got = bool(self._client.set(key, token, nx=True, px=ms))
        if not got:
            yield False
            return
        done = threading.Event()

        def renew() -> None:
            while not done.wait(seconds / 3):
                self._renew(keys=[key], args=[token, ms])

        renewer = threading.Thread(target=renew, name=f"fti-lock-{table.name}", daemon=True)
        renewer.start()
        try:
            yield True
        finally:
            done.set()
            renewer.join()
            self._unlock(keys=[key], args=[token])

    def drop(self, table: OnlineTable) -> None:
        p = self._prep(table)
        cursor: Any = b"0"
        while True:
            cursor = self._drop_step(keys=[], args=[cursor, p.pattern, _SCAN_COUNT])
            if int(cursor) == 0:
                return

    # ------------------------------------------------------------------ reads
    def count(self, table: OnlineTable) -> int:
        value = self._client.get(self._prep(table).count_key)
        return 0 if value is None else int(value)

    def read(
        self, table: OnlineTable, keys: Sequence[tuple[Any, ...]]
    ) -> list[tuple[Any, ...] | None]:
        p = self._prep(table)
        if len(keys) == 1:
            return [p.decode(self._client.get(p.key(keys[0])))]
        if not keys:
            return []
        return [p.decode(raw) for raw in self._client.mget([p.key(k) for k in keys])]
