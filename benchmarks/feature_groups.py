"""Feature group throughput and latency, each figure next to a raw baseline from the same run.

    .venv/bin/python benchmarks/feature_groups.py [--rows 1000000] [--repeat 3]

Measures on N rows x 8 features (int64 key, UTC event time):

- offline insert (``fg.insert`` into an offline-only group) vs raw ``deltalake.write_deltalake``
  of the same Arrow table and raw DuckDB ``COPY ... TO parquet``;
- online upsert into SQLite (fti's canonical batch -> ``SqliteOnlineStore.upsert`` with the
  newer-wins rule) vs raw ``sqlite3`` ``executemany`` INSERT of ready-made tuples;
- ``fg.read_online`` of 1 key (p50/p99) and of 100 keys (p50) vs a raw sqlite3 primary-key
  SELECT on the same file.

Medians over ``--repeat`` runs; the machine may be shared, so read ratios rather than absolutes.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from deltalake import write_deltalake

import fti
from fti.backends.online.sqlite import arrow_column_to_list
from fti.services import materialization
from fti.services.feature_groups import online_table
from fti.services.frame_validation import normalize_frame

FEATURES = [f"f{i}" for i in range(8)]
TARGETS = {
    "offline": "offline insert >= 1,000,000 rows/s",
    "online": "online upsert >= 300,000 rows/s",
    "one": "read_online 1 key p50 <= 30 us, p99 <= 100 us",
    "many": "read_online 100 keys p50 <= 1 ms",
}


def make_table(rows: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    start = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
    cols: dict[str, pa.Array] = {
        "id": pa.array(np.arange(rows, dtype=np.int64)),
        "ts": pa.array(
            start + rng.integers(0, 86_400_000_000, rows, dtype=np.int64),
            pa.timestamp("us", "UTC"),
        ),
    }
    for i, name in enumerate(FEATURES):
        if i < 6:
            cols[name] = pa.array(rng.standard_normal(rows))
        else:
            cols[name] = pa.array(rng.integers(0, 1_000_000, rows, dtype=np.int64))
    return pa.table(cols)


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median_rate(rows: int, seconds: list[float]) -> float:
    return rows / statistics.median(seconds)


def percentile(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def line(label: str, value: float, unit: str, base_label: str, base: float, *, lower: bool) -> None:
    ratio = value / base if base else float("nan")
    better = "lower is better" if lower else "higher is better"
    print(
        f"  {label:<34} {value:>14,.1f} {unit:<6} | {base_label:<30} {base:>14,.1f} {unit:<6}"
        f" | ratio {ratio:6.2f} ({better})"
    )


def bench_offline(work: Path, table: pa.Table, repeat: int) -> None:
    n = table.num_rows
    fs = fti.connect(work / "offline_store")
    fti_s, delta_s, duck_s = [], [], []
    for r in range(repeat):
        fg = fs.feature_group(f"off{r}", primary_key=["id"], event_time="ts")
        fti_s.append(timed(lambda fg=fg: fg.insert(table)))
        path = work / f"raw_delta_{r}"
        delta_s.append(timed(lambda path=path: write_deltalake(str(path), table)))
        con = duckdb.connect()
        con.register("t", table)
        out = work / f"raw_{r}.parquet"
        duck_s.append(timed(lambda con=con, out=out: con.execute(f"COPY t TO '{out}'")))
        con.close()
    fs.close()
    rate = median_rate(n, fti_s)
    print(f"offline insert, {n:,} rows (target: {TARGETS['offline']})")
    line(
        "fti fg.insert (offline only)",
        rate,
        "rows/s",
        "raw write_deltalake",
        median_rate(n, delta_s),
        lower=False,
    )
    line("", rate, "rows/s", "raw DuckDB COPY to parquet", median_rate(n, duck_s), lower=False)


def bench_online(work: Path, table: pa.Table, repeat: int) -> fti.FeatureGroup:
    n = table.num_rows
    fti_s = []
    for r in range(repeat):
        # a fresh store (and SQLite file) per run, like the raw baseline below
        fs = fti.connect(work / f"online_store_{r}")
        fg = fs.feature_group("onl", primary_key=["id"], event_time="ts", online=True)
        fg.insert(table.slice(0, 1))  # infers and stores the schema
        ctx = fs._ctx
        spec = fg.refresh().spec
        tdef = online_table(spec)
        normalized = normalize_frame(spec, table)
        normalized = normalized.append_column(
            "_fti_seq", pa.array(np.arange(10, 10 + n, dtype=np.int64))
        )
        batch = materialization.canonical_batch(spec, normalized)
        version = ctx.offline.version(spec.key)

        def upsert(
            ctx: Any = ctx, tdef: Any = tdef, batch: pa.Table = batch, v: int = version
        ) -> None:
            materialization.upsert_chunks(ctx, tdef, batch, version=v)

        fti_s.append(timed(upsert))
        if r < repeat - 1:
            fs.close()

    tuples = list(
        zip(
            *(
                batch.column(c).to_pylist()
                if c != "_fti_et"
                else batch.column(c).to_numpy().tolist()
                for c in batch.column_names
            ),
            strict=True,
        )
    )
    convert_s = timed(
        lambda: [
            arrow_column_to_list(batch.column(c), t)
            for c, t in zip(
                batch.column_names,
                [*(t for _, t in tdef.keys), "int64", "int64", *(t for _, t in tdef.features)],
                strict=True,
            )
        ]
    )
    raw_s = []
    for r in range(repeat):
        path = work / f"raw_{r}.db"
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        cols = ", ".join(f"{c} {'REAL' if i < 6 else 'INTEGER'}" for i, c in enumerate(FEATURES))
        conn.execute(
            f"CREATE TABLE t (id INTEGER NOT NULL, et INTEGER NOT NULL, seq INTEGER NOT NULL, "
            f"{cols}, PRIMARY KEY (id)) WITHOUT ROWID"
        )
        sql = f"INSERT INTO t VALUES ({', '.join('?' * (3 + len(FEATURES)))})"

        def raw(conn: sqlite3.Connection = conn, sql: str = sql) -> None:
            conn.execute("BEGIN")
            conn.executemany(sql, tuples)
            conn.execute("COMMIT")

        raw_s.append(timed(raw))
        conn.close()
    print(f"online upsert into SQLite, {n:,} rows (target: {TARGETS['online']})")
    line(
        "fti SqliteOnlineStore.upsert",
        median_rate(n, fti_s),
        "rows/s",
        "raw sqlite3 executemany",
        median_rate(n, raw_s),
        lower=False,
    )
    print(
        f"  (fti's figure includes converting Arrow columns to Python values: {convert_s:.2f}s "
        "per run; the raw baseline gets ready-made tuples)"
    )
    return fg


def bench_lookups(fg: fti.FeatureGroup, rows: int, repeat: int, lookups: int) -> None:
    rng = random.Random(1)
    path = Path(fg._ctx.config.online.removeprefix("sqlite:///"))
    if not path.is_absolute():
        path = Path("/") / path
    conn = sqlite3.connect(path)
    cols = ", ".join(["_fti_et", "_fti_seq", *FEATURES])
    one_sql = f'SELECT {cols} FROM "onl_v1" WHERE "id" = ?'
    many_sql = f'SELECT "id", {cols} FROM "onl_v1" WHERE "id" IN ({", ".join("?" * 100)})'
    fg.read_online({"id": 0})  # warm the prepared reader

    one_fti: list[list[float]] = []
    one_raw: list[list[float]] = []
    many_fti: list[float] = []
    many_raw: list[float] = []
    clock = time.perf_counter_ns
    for _ in range(repeat):
        keys = [rng.randrange(rows) for _ in range(lookups)]
        samples = []
        for k in keys:
            entity = {"id": k}
            t0 = clock()
            fg.read_online(entity)
            samples.append((clock() - t0) / 1000)
        one_fti.append(samples)
        samples = []
        for k in keys:
            t0 = clock()
            conn.execute(one_sql, (k,)).fetchone()
            samples.append((clock() - t0) / 1000)
        one_raw.append(samples)
        batches = [[rng.randrange(rows) for _ in range(100)] for _ in range(max(lookups // 50, 20))]
        fs_, rs_ = [], []
        for b in batches:
            entities = [{"id": k} for k in b]
            t0 = clock()
            fg.read_online(entities)
            fs_.append((clock() - t0) / 1000)
            t0 = clock()
            conn.execute(many_sql, b).fetchall()
            rs_.append((clock() - t0) / 1000)
        many_fti.append(statistics.median(fs_))
        many_raw.append(statistics.median(rs_))
    conn.close()

    def med(runs: list[list[float]], q: float) -> float:
        return statistics.median(percentile(s, q) for s in runs)

    print(f"fg.read_online, 1 key, {lookups:,} lookups per run (target: {TARGETS['one']})")
    line(
        "fti read_online p50",
        med(one_fti, 0.5),
        "us",
        "raw sqlite3 PK SELECT p50",
        med(one_raw, 0.5),
        lower=True,
    )
    line(
        "fti read_online p99",
        med(one_fti, 0.99),
        "us",
        "raw sqlite3 PK SELECT p99",
        med(one_raw, 0.99),
        lower=True,
    )
    print(f"fg.read_online, 100 keys (target: {TARGETS['many']})")
    line(
        "fti read_online p50",
        statistics.median(many_fti),
        "us",
        "raw sqlite3 IN (...) p50",
        statistics.median(many_raw),
        lower=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--only", choices=["offline", "online", "all"], default="all")
    args = parser.parse_args()
    table = make_table(args.rows)
    work = Path(tempfile.mkdtemp(prefix="fti-bench-"))
    print(f"fti benchmark: {args.rows:,} rows x {len(FEATURES)} features, medians of {args.repeat}")
    try:
        if args.only in ("offline", "all"):
            bench_offline(work, table, args.repeat)
        if args.only in ("online", "all"):
            fg = bench_online(work, table, args.repeat)
            bench_lookups(fg, args.rows, args.repeat, args.lookups)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
