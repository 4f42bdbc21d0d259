"""Point-in-time join on Spark vs the DuckDB engine, same workload, same run.

    .venv/bin/python benchmarks/spark_pit.py                  # tiny: E=10k, R=100k, S=10k
    .venv/bin/python benchmarks/spark_pit.py --scale small    # E=100k, R=1M, S=100k
    .venv/bin/python benchmarks/spark_pit.py --scale small --repeat 3

The workload and feature view are those of ``benchmarks/training_data.py`` (``activity`` with a
30-day TTL and 1% corrections, ``profile``, a spine with unknown users and duplicates). Timed,
each to an Arrow table:

- **DuckDB engine**: ``point_in_time`` (what ``fv.training_data(spine)`` runs);
- **Spark engine**: Delta files listed by deltalake and read by Spark, the join compiled by
  ``fti.planner.spark_pit`` (window functions), run in a local SparkSession (``local[*]``),
  collected as Arrow. The session start is reported separately and not counted.

Both results are compared row for row. Spark in local mode on a few cores pays for its
distributed machinery; the figure that matters is how it scales on a cluster, which this script
cannot show. Read the ratio, not the absolutes, on a shared machine.
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
from training_data import build_store, make_workload

import fti
from fti.backends.compute.spark import SparkEngine
from fti.planner.spark_pit import compile_pit_spark
from fti.services import training_data as td_service
from fti.services.pit_execution import execute_pit

SCALES = {"tiny": (10_000, 100_000, 10_000), "small": (100_000, 1_000_000, 100_000)}


def spark_join(spark: Any, fs: fti.FeatureStore, fv: Any, spine: pa.Table) -> pa.Table:
    query = fv.spec.query
    engine = SparkEngine(spark)
    frames = [engine.read_table(fs._ctx.offline.path(g.key)) for g in query.groups]
    reserved = [c for c in query.output_columns() if c not in query.entity_columns()]
    spine_table, names = td_service.normalize_spine(query, spine, reserved=reserved)
    statement = compile_pit_spark(query, spine_columns=spine_table.column_names)
    table = execute_pit(engine, statement, spine=spine_table, groups=frames)
    return td_service._restore_types(query, table, spine_table.select(names).schema)


def same(a: pa.Table, b: pa.Table) -> bool:
    def norm(t: pa.Table) -> list[dict[str, Any]]:
        return [
            {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
            for r in t.to_pylist()
        ]

    return a.column_names == b.column_names and norm(a) == norm(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="tiny")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    e, r, s = SCALES[args.scale]
    print(f"== {args.scale}: E={e:,} users, R={r:,} rows (+{r // 100:,} corrections), S={s:,}")
    work = Path(tempfile.mkdtemp(prefix="fti-bench-spark-"))
    try:
        t0 = time.perf_counter()
        data = make_workload(e, r, s)
        build_store(work / "store", data)
        spine = data["spine"]
        print(f"set-up (generate, insert): {time.perf_counter() - t0:.1f}s")

        from pyspark.sql import SparkSession

        t0 = time.perf_counter()
        spark = (
            SparkSession.builder.master("local[*]")
            .appName("fti-bench")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.driver.memory", "4g")
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        print(f"SparkSession start (not counted): {time.perf_counter() - t0:.1f}s")

        fs = fti.connect(work / "store")
        fv = fs.get_feature_view("bench", version=1)
        query = fv.spec.query
        duck_times, spark_times = [], []
        duck = sparked = None
        spark_join(spark, fs, fv, spine.slice(0, 100))  # warm up the JVM's code paths
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            duck = td_service.point_in_time(fs._ctx, query, spine=spine).table
            duck_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            sparked = spark_join(spark, fs, fv, spine)
            spark_times.append(time.perf_counter() - t0)
        assert duck is not None
        assert sparked is not None
        d, k = statistics.median(duck_times), statistics.median(spark_times)
        print(f"DuckDB engine  point_in_time -> Arrow: median {d:.3f}s")
        print(f"Spark engine   point_in_time -> Arrow: median {k:.3f}s   ratio {k / d:.1f}x")
        print(f"identical rows: {same(duck, sparked)} ({duck.num_rows:,} rows)")
        fs.close()
        spark.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
