"""Cost of commit profiles (statistics of every commit), measured against inserts without them.

    .venv/bin/python benchmarks/profiles.py [--rows 1000000] [--repeat 3] [--commits 100]

- ``fg.insert`` of N rows x 8 features (int64 key, UTC event time within one day; f0-f4 float64,
  f5-f6 int64 with 1,000 distinct values, f7 a string of 100 categories) into an offline-only
  group with profiles on and off (``FTI_PROFILES=0``), alternating, medians of ``--repeat``;
- ``fg.statistics(start, end)`` over ``--commits`` commits (one per day, 10,000 rows each):
  median of 20 calls in one process.

Targets (issue #12): profiles add <= 25% to an insert; statistics(start, end) over 100 commits
<= 50 ms. The machine may be shared: read the ratio, not the absolutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

import fti

DAY0 = datetime(2024, 1, 1, tzinfo=UTC)


def frame(rows: int, day: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    start_us = int((DAY0 + timedelta(days=day)).timestamp() * 1_000_000)
    ts = start_us + np.sort(rng.integers(0, 86_400_000_000, rows))
    cats = np.array([f"c{i}" for i in range(100)])
    cols: dict[str, pa.Array] = {
        "id": pa.array(np.arange(rows, dtype=np.int64) + day * rows),
        "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
    }
    for i in range(5):
        cols[f"f{i}"] = pa.array(rng.normal(100, 15, rows))
    for i in (5, 6):
        cols[f"f{i}"] = pa.array(rng.integers(0, 1000, rows))
    cols["f7"] = pa.array(cats[rng.integers(0, 100, rows)])
    return pa.table(cols)


def insert_seconds(root: str, data: pa.Table, name: str, profiles: bool) -> float:
    os.environ["FTI_PROFILES"] = "1" if profiles else "0"
    fs = fti.connect(root)
    fg = fs.feature_group(name, version=1, primary_key=["id"], event_time="ts")
    fg.insert(data.slice(0, 10))  # schema inference and table creation are not measured
    started = time.perf_counter()
    fg.insert(data)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--commits", type=int, default=100)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="fti-bench-profiles-")
    try:
        data = frame(args.rows, 0, seed=1)
        on: list[float] = []
        off: list[float] = []
        for r in range(args.repeat):
            off.append(insert_seconds(root, data, f"off{r}", profiles=False))
            on.append(insert_seconds(root, data, f"on{r}", profiles=True))
        t_on, t_off = statistics.median(on), statistics.median(off)
        overhead = t_on / t_off - 1
        print(
            f"insert {args.rows:,} rows x 8 features: profiles off {t_off:.3f}s, "
            f"on {t_on:.3f}s -> +{overhead:.1%} (target <= 25%: "
            f"{'PASS' if overhead <= 0.25 else 'FAIL'})"
        )

        os.environ["FTI_PROFILES"] = "1"
        fs = fti.connect(root)
        fg = fs.feature_group("windows", version=1, primary_key=["id"], event_time="ts")
        for day in range(args.commits):
            fg.insert(frame(10_000, day, seed=day))
        start, end = DAY0, DAY0 + timedelta(days=args.commits)  # every commit
        cold_started = time.perf_counter()
        stats = fg.statistics(start=start, end=end)
        cold = time.perf_counter() - cold_started
        calls: list[float] = []
        for _ in range(20):
            started = time.perf_counter()
            fg.statistics(start=start, end=end)
            calls.append(time.perf_counter() - started)
        warm = statistics.median(calls)
        print(
            f"statistics(start, end) over {stats.commits} commits ({stats.rows:,} rows): "
            f"first call {cold * 1000:.1f} ms, median {warm * 1000:.1f} ms "
            f"(target <= 50 ms: {'PASS' if warm <= 0.05 else 'FAIL'})"
        )
        whole = time.perf_counter()
        fg.statistics()
        print(
            f"statistics() of the whole table ({args.commits} commits): "
            f"{(time.perf_counter() - whole) * 1000:.1f} ms"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
