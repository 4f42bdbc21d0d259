"""Bulk online writes: ``fg.insert`` into an online feature group, SQLite and Redis, next to an
offline-only insert and Feast's ``materialize`` of the same rows, all in one run.

    .venv/bin/python benchmarks/online_bulk.py                       # large: 10M rows, 1M users
    .venv/bin/python benchmarks/online_bulk.py --scale small         # 1M rows, 100k users
    .venv/bin/python benchmarks/online_bulk.py --feast-python /tmp/feast-venv/bin/python

The workload is ``user_stats``: R rows for E users (uniformly random user per row, event times
over 90 days), 5 float64 features, inserted with one ``fg.insert``. Each measurement runs in a
fresh process that reads the Parquet file and times only the call, and reports that process's
peak RSS:

- **offline**: ``fg.insert`` into an offline-only group (the reference: what online adds);
- **sqlite** / **redis**: ``fg.insert`` into a group with ``online=True`` (offline commit +
  online write, end to end); Redis at ``--redis`` under a unique key prefix, deleted afterwards
  (never a FLUSHDB: the database is shared);
- **rebuild**: ``fti online rebuild user_stats:1`` of the SQLite (and Redis) store, the whole CLI
  process timed;
- **feast**: ``FeatureStore.materialize`` of the same Parquet file into Feast's SQLite online
  store, by ``benchmarks/feast_materialize.py`` run with ``--feast-python`` (a venv made with
  ``python3.11 -m venv /tmp/feast-venv && /tmp/feast-venv/bin/pip install
  'feast[duckdb]==0.67.0'``); skipped without it.

The machine may be shared: each figure is printed with the 1-minute load average when it was
taken. ``--repeat N`` runs the fti measurements N times (in rounds, fresh stores each) and
takes the median run of each; Feast runs once. Every measurement starts after ``os.sync()``, so
none pays for writing back the files of the one before.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SCALES = {"small": (1_000_000, 100_000), "large": (10_000_000, 1_000_000)}
START_US = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
DAY_US = 86_400_000_000
TARGETS = {
    "sqlite": 1_000_000,  # input rows/s, end to end
    "redis": 500_000,
    "feast_ratio": 15.0,
    "rebuild_s": 10.0,
    "peak_gb": 3.0,
}
FEAST_DRIVER = Path(__file__).with_name("feast_materialize.py")

INSERT = """
import json, resource, sys, time
import pyarrow.parquet as pq
import fti
root, data, online, url = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4] or None
table = pq.read_table(data)
fs = fti.connect(root, online=url)
fg = fs.feature_group("user_stats", primary_key=["user_id"], event_time="ts", online=online)
started = time.perf_counter()
report = fg.insert(table)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "rows": report.rows,
                  "changed": report.online_rows_changed,
                  "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}))
"""


def make_workload(rows: int, users: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "user_id": rng.integers(0, users, rows, dtype=np.int64),
            "ts": pa.array(
                START_US + rng.integers(0, 90 * DAY_US, rows, dtype=np.int64),
                pa.timestamp("us", "UTC"),
            ),
            **{f"f{i}": rng.standard_normal(rows) for i in range(5)},
        }
    )


def load() -> float:
    return os.getloadavg()[0]


def child(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    out = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{args[:3]} exited {out.returncode}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def fti_insert(root: Path, data: Path, *, online: bool, url: str = "") -> dict[str, Any]:
    cmd = [sys.executable, "-c", INSERT, str(root), str(data), "1" if online else "0", url]
    return {**child(cmd), "load": load()}


def fti_rebuild(root: Path, url: str = "") -> dict[str, Any]:
    env = dict(os.environ)
    if url:
        env["FTI_ONLINE"] = url
    code = (
        "import json, resource, runpy, sys, time\n"
        "sys.argv = ['fti', 'online', 'rebuild', 'user_stats:1', '--root', sys.argv[1]]\n"
        "t = time.perf_counter()\n"
        "try:\n    runpy.run_module('fti', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "print(json.dumps({'seconds': time.perf_counter() - t, 'peak_gb': "
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}))\n"
    )
    started = time.perf_counter()
    result = child([sys.executable, "-c", code, str(root)], env)
    return {**result, "process_seconds": time.perf_counter() - started, "load": load()}


def redis_cleanup(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url.split("?")[0])
    for pattern in (f"{prefix}:*",):
        batch = []
        for key in client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                client.unlink(*batch)
                batch = []
        if batch:
            client.unlink(*batch)
    client.close()


def feast_materialize(python: str, data: Path) -> dict[str, Any]:
    return {**child([python, str(FEAST_DRIVER), "--data", str(data)]), "load": load()}


def _median_run(got: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median time (the lower middle one of an even number)."""
    ranked = sorted(got, key=lambda r: r["seconds"])
    return ranked[(len(ranked) - 1) // 2]


def line(name: str, rows: int, r: dict[str, Any], extra: str = "") -> None:
    print(
        f"{name:<22} {r['seconds']:8.2f} s  {rows / r['seconds']:>12,.0f} rows/s  "
        f"peak {r['peak_gb']:.2f} GB  load {r['load']:.1f}{extra}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=list(SCALES), default="large")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="'' to skip Redis")
    parser.add_argument("--feast-python", default=os.environ.get("FTI_FEAST_PYTHON"))
    parser.add_argument("--keep", type=Path, help="keep the stores in this folder")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds of the fti measurements (medians)"
    )
    args = parser.parse_args()

    rows, users = SCALES[args.scale]
    work = args.keep or Path(tempfile.mkdtemp(prefix="fti-bench-bulk-"))
    work.mkdir(parents=True, exist_ok=True)
    prefixes: list[str] = []
    print(f"online_bulk: {rows:,} rows, {users:,} users, 5 float features; cpus {os.cpu_count()}")
    try:
        data = work / "user_stats.parquet"
        pq.write_table(make_workload(rows, users), data)
        runs: dict[str, list[dict[str, Any]]] = {}

        def measured(name: str, label: str, take: Any, extra: Any = None) -> None:
            # Every measurement starts with the disk written back: the files of the one before
            # (a GB of Delta and SQLite pages) would otherwise be flushed during it.
            os.sync()
            r = take()
            runs.setdefault(name, []).append(r)
            line(label, rows, r, extra(r) if extra else "")

        def keys(r: dict[str, Any]) -> str:
            return f"  ({r['changed']:,} keys)"

        for round_ in range(args.repeat):
            folder = work / f"round{round_}"
            prefix = f"bench_bulk_{uuid.uuid4().hex[:8]}"
            prefixes.append(prefix)
            url = f"{args.redis}?prefix={prefix}" if args.redis else ""
            if args.repeat > 1:
                print(f"round {round_ + 1} of {args.repeat}")
            measured(
                "offline",
                "offline-only insert",
                lambda f=folder: fti_insert(f / "offline", data, online=False),
            )
            measured(
                "sqlite",
                "online insert, SQLite",
                lambda f=folder: fti_insert(f / "sqlite", data, online=True),
                keys,
            )
            if url:
                measured(
                    "redis",
                    "online insert, Redis",
                    lambda f=folder, u=url: fti_insert(f / "redis", data, online=True, url=u),
                    keys,
                )
            measured(
                "rebuild", "fti online rebuild, SQLite", lambda f=folder: fti_rebuild(f / "sqlite")
            )
            if url:
                measured(
                    "rebuild_redis",
                    "fti online rebuild, Redis",
                    lambda f=folder, u=url: fti_rebuild(f / "redis", u),
                )
            if url:  # the next round's rebuild scans the keyspace: leave it as it found it
                redis_cleanup(args.redis, prefix)
                prefixes.remove(prefix)
            if args.keep is None:
                shutil.rmtree(folder, ignore_errors=True)
        if args.feast_python:
            measured(
                "feast",
                "feast materialize",
                lambda: feast_materialize(args.feast_python, data),
                lambda r: f"  ({r['keys']:,} keys, feast {r['feast']})",
            )
        else:
            print("feast materialize: skipped (pass --feast-python PATH)")
        res = {name: _median_run(got) for name, got in runs.items()}
        if args.repeat > 1:
            print(f"\nmedians of {args.repeat} rounds:")
            for name, r in res.items():
                if name != "feast":
                    line(name, rows, r)

        print("\ntargets (large workload):")
        for store in ("sqlite", "redis"):
            if store not in res:
                continue
            rate = rows / res[store]["seconds"]
            target = TARGETS[store]
            print(f"  {store}: {rate:,.0f} rows/s = {rate / target:.2f}x the target {target:,}")
            if "feast" in res:
                ratio = res["feast"]["seconds"] / res[store]["seconds"]
                print(f"  {store}: {ratio:.1f}x Feast (target >= {TARGETS['feast_ratio']:.0f}x)")
            share = res["offline"]["seconds"] / res[store]["seconds"]
            print(f"  {store}: offline commit alone is {share:.0%} of it")
        for name in ("rebuild", "rebuild_redis"):
            if name in res:
                s = res[name]["process_seconds"]
                print(f"  {name}: {s:.2f} s whole CLI process (target <= {TARGETS['rebuild_s']} s)")
        peak = max(r["peak_gb"] for k, r in res.items() if k != "feast")
        print(f"  peak RSS of fti processes: {peak:.2f} GB (target <= {TARGETS['peak_gb']} GB)")
    finally:
        for prefix in prefixes if args.redis else []:
            redis_cleanup(args.redis, prefix)
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
