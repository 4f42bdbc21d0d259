"""Redis online store: lookup latency and write throughput next to raw redis-py in the same run.

    .venv/bin/python benchmarks/online_redis.py [--url redis://127.0.0.1:6379/0]
        [--rows 100000] [--lookups 2000] [--repeat 3]

Two online feature groups on int64 keys: ``a`` (8 features: 6 float64, 2 int64) and ``b``
(4 features: float64, int64, string, bool). Figures:

- **one entity x two feature groups**: ``fg_a.read_online(k)`` then ``fg_b.read_online(k)``
  (p50/p99), vs raw ``HGETALL`` of the same two hashes (and a raw ``GET`` as the floor);
- **100 entities x one feature group**: ``fg_a.read_online(100 keys)`` (one pipelined round
  trip), vs a raw redis-py pipeline of 100 ``HGETALL``;
- **writes**: ``RedisOnlineStore.upsert`` of canonical batches (newer-wins in Lua, pipelined),
  vs a raw redis-py pipeline of ``HSET key mapping`` per row (no ordering rule at all).

Keys live under a fresh prefix that is deleted at the end. Medians over ``--repeat`` runs; on a
shared machine read the ratios rather than the absolute figures. Target: fti <= 2x raw.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import redis

import fti
from fti.backends.online.redis import RedisOnlineStore
from fti.services.feature_groups import online_table
from fti.services.materialization import canonical_batch


def make_a(rows: int, rng: np.random.Generator) -> pa.Table:
    start = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
    cols: dict[str, pa.Array] = {
        "id": pa.array(np.arange(rows, dtype=np.int64)),
        "ts": pa.array(
            start + rng.integers(0, 86_400_000_000, rows, dtype=np.int64),
            pa.timestamp("us", "UTC"),
        ),
    }
    for i in range(6):
        cols[f"a{i}"] = pa.array(rng.standard_normal(rows))
    for i in range(6, 8):
        cols[f"a{i}"] = pa.array(rng.integers(0, 1_000_000, rows, dtype=np.int64))
    return pa.table(cols)


def make_b(rows: int, rng: np.random.Generator) -> pa.Table:
    start = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
    return pa.table(
        {
            "id": pa.array(np.arange(rows, dtype=np.int64)),
            "ts": pa.array(
                start + rng.integers(0, 86_400_000_000, rows, dtype=np.int64),
                pa.timestamp("us", "UTC"),
            ),
            "b0": pa.array(rng.standard_normal(rows)),
            "b1": pa.array(rng.integers(0, 1000, rows, dtype=np.int64)),
            "b2": pa.array([f"city-{i % 977}" for i in range(rows)]),
            "b3": pa.array(rng.integers(0, 2, rows).astype(bool)),
        }
    )


def percentile(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def latencies(fn: Callable[[int], object], keys: list[int]) -> list[float]:
    out = []
    for k in keys:
        t0 = time.perf_counter()
        fn(k)
        out.append(time.perf_counter() - t0)
    return out


def us(seconds: float) -> str:
    return f"{seconds * 1e6:8.1f} us"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--lookups", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    prefix = "fti_bench_" + uuid.uuid4().hex[:8]
    url = f"{args.url}{'&' if '?' in args.url else '?'}prefix={prefix}"
    raw = redis.Redis.from_url(args.url)
    root = Path(tempfile.mkdtemp(prefix="fti-bench-redis-"))
    rng = np.random.default_rng(0)
    try:
        fs = fti.connect(root, online=url)
        fg_a = fs.feature_group("a", primary_key=["id"], event_time="ts", online=True)
        fg_b = fs.feature_group("b", primary_key=["id"], event_time="ts", online=True)
        t0 = time.perf_counter()
        fg_a.insert(make_a(args.rows, rng))
        fg_b.insert(make_b(args.rows, rng))
        print(
            f"setup: 2 feature groups x {args.rows:,} rows inserted in "
            f"{time.perf_counter() - t0:.1f}s (offline + online)\n"
        )
        store = fs._ctx.online
        assert isinstance(store, RedisOnlineStore)
        ta, tb = online_table(fg_a.spec), online_table(fg_b.spec)
        key_a = f"{prefix}:{ta.name}:k:"
        key_b = f"{prefix}:{tb.name}:k:"
        raw.set(f"{prefix}:probe", b"x")

        # ----------------------------------------------------------------- writes
        dataset, _ = fs._ctx.offline.dataset(fg_a.spec.key)
        batch = canonical_batch(fg_a.spec, dataset.to_table())
        write_rows = min(args.rows, 100_000)
        batch = batch.slice(0, write_rows)
        # Newer event times so every row really is written (the worst case for the script).
        batch = batch.set_column(
            batch.column_names.index("_fti_et"),
            "_fti_et",
            pa.compute.add(batch.column("_fti_et"), 1_000_000_000),
        )
        plain = batch.drop_columns(["_fti_et", "_fti_seq"]).to_pylist()
        fti_w, raw_w = [], []
        for rep in range(args.repeat):
            shifted = batch.set_column(
                batch.column_names.index("_fti_et"),
                "_fti_et",
                pa.compute.add(batch.column("_fti_et"), rep + 1),
            )
            t0 = time.perf_counter()
            store.upsert(ta, shifted, version=None)
            fti_w.append(write_rows / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            pipe = raw.pipeline(transaction=False)
            for i, row in enumerate(plain):
                pipe.hset(f"{prefix}:raw:{row.pop('id', i)}", mapping=row)
                if i % 1000 == 999:
                    pipe.execute()
            pipe.execute()
            raw_w.append(write_rows / (time.perf_counter() - t0))
            plain = batch.drop_columns(["_fti_et", "_fti_seq"]).to_pylist()

        # ----------------------------------------------------------------- one entity x 2 FGs
        keys = [random.Random(i).randrange(args.rows) for i in range(args.lookups)]

        def fti_two(k: int) -> None:
            fg_a.read_online([{"id": k}])
            fg_b.read_online([{"id": k}])

        def store_two(k: int) -> None:
            store.read(ta, [(k,)])
            store.read(tb, [(k,)])

        def raw_two(k: int) -> None:
            raw.hgetall(key_a + str(k))
            raw.hgetall(key_b + str(k))

        def raw_get(k: int) -> None:
            raw.get(f"{prefix}:probe")

        one: dict[str, list[tuple[float, float]]] = {
            "fti read_online x2": [],
            "OnlineStore.read x2": [],
            "raw HGETALL x2": [],
            "raw GET x1": [],
        }
        for _ in range(args.repeat):
            for label, fn in [
                ("fti read_online x2", fti_two),
                ("OnlineStore.read x2", store_two),
                ("raw HGETALL x2", raw_two),
                ("raw GET x1", raw_get),
            ]:
                fn(keys[0])  # warm
                lat = latencies(fn, keys)
                one[label].append((percentile(lat, 0.5), percentile(lat, 0.99)))

        # ----------------------------------------------------------------- 100 entities
        batches = [
            [random.Random(1000 + j * 100 + i).randrange(args.rows) for i in range(100)]
            for j in range(max(50, args.lookups // 20))
        ]

        def fti_many(j: int) -> None:
            fg_a.read_online([{"id": k} for k in batches[j]])

        def store_many(j: int) -> None:
            store.read(ta, [(k,) for k in batches[j]])

        def raw_many(j: int) -> None:
            pipe = raw.pipeline(transaction=False)
            for k in batches[j]:
                pipe.hgetall(key_a + str(k))
            pipe.execute()

        many: dict[str, list[float]] = {
            "fti read_online 100": [],
            "OnlineStore.read 100": [],
            "raw pipeline HGETALL 100": [],
        }
        for _ in range(args.repeat):
            for label, fn in [
                ("fti read_online 100", fti_many),
                ("OnlineStore.read 100", store_many),
                ("raw pipeline HGETALL 100", raw_many),
            ]:
                fn(0)
                many[label].append(percentile(latencies(fn, list(range(len(batches)))), 0.5))

        # ----------------------------------------------------------------- report
        med = statistics.median
        print(
            f"one entity x two feature groups ({args.lookups} lookups, median of "
            f"{args.repeat} runs)"
        )
        base50 = med(p for p, _ in one["raw HGETALL x2"])
        base99 = med(q for _, q in one["raw HGETALL x2"])
        for label, runs in one.items():
            p50, p99 = med(p for p, _ in runs), med(q for _, q in runs)
            print(
                f"  {label:<26} p50 {us(p50)}  p99 {us(p99)}   "
                f"x{p50 / base50:4.2f} / x{p99 / base99:4.2f} of raw HGETALL"
            )
        print("\n100 entities x one feature group (median)")
        base = med(many["raw pipeline HGETALL 100"])
        for label, runs in many.items():
            print(f"  {label:<26} p50 {us(med(runs))}   x{med(runs) / base:4.2f} of raw pipeline")
        print(f"\nwrites ({write_rows:,} rows x 8 features, median of {args.repeat})")
        print(
            f"  fti upsert (Lua newer-wins) {med(fti_w):>12,.0f} rows/s   "
            f"x{med(fti_w) / med(raw_w):4.2f} of raw"
        )
        print(f"  raw pipeline HSET mapping   {med(raw_w):>12,.0f} rows/s")
        print("\ntarget: fti <= 2x the raw round-trip cost")
        fs.close()
    finally:
        keys_left = list(raw.scan_iter(match=f"{prefix}:*", count=5000))
        for start in range(0, len(keys_left), 5000):
            raw.unlink(*keys_left[start : start + 5000])
        raw.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
