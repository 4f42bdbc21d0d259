"""Live model metrics (issue 13): ``fs.models.performance`` over 1M logged predictions with 1M
outcomes vs a hand-written DuckDB join + group-by over the same Delta tables, computing the
same per-day metrics (counts, accuracy, log loss, calibration error, rank AUC), measured in the
same run, interleaved. Also times ``fs.models.log_outcomes`` of the 1M outcomes once.

    .venv/bin/python benchmarks/model_performance.py [--rows 1000000] [--repeat 5]

Target: ``performance()`` <= 2x the hand-written query.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

import fti
from fti.services import ingestion, prediction_logs

T0 = datetime(2026, 1, 5, tzinfo=UTC)

BASELINE = """
WITH j AS (
    SELECT time_bucket(INTERVAL 1 DAY, l.logged_at, $origin) AS b, l.probability AS p,
           CAST(l.prediction AS DOUBLE) AS yhat, CAST(o.delayed AS DOUBLE) AS y
    FROM logs l LEFT JOIN outs o USING (request_id, position)
    WHERE l.model_name = 'delays'
),
agg AS (
    SELECT b, count(*) AS predictions, count(y) AS labelled,
           avg(CASE WHEN y IS NOT NULL THEN (yhat = y)::DOUBLE END) AS accuracy,
           -avg(y * ln(greatest(least(p, 1 - 1e-15), 1e-15))
                + (1 - y) * ln(1 - greatest(least(p, 1 - 1e-15), 1e-15))) AS log_loss
    FROM j GROUP BY b
),
s AS (SELECT b, y, p FROM j WHERE y IS NOT NULL),
r AS (SELECT b, y, rank() OVER (PARTITION BY b ORDER BY p)
                   + (count(*) OVER (PARTITION BY b, p) - 1) / 2.0 AS r FROM s),
auc AS (SELECT b, (sum(CASE WHEN y = 1 THEN r END) - count_if(y = 1)::DOUBLE
                   * (count_if(y = 1) + 1) / 2) / (count_if(y = 1)::DOUBLE * count_if(y = 0))
                   AS auc FROM r GROUP BY b),
cal AS (SELECT b, sum(abs(g)) / sum(n) AS ece FROM
        (SELECT b, sum(y) - sum(p) AS g, count(*) AS n FROM s GROUP BY b, least(floor(p * 10), 9))
        GROUP BY b)
SELECT * FROM agg LEFT JOIN auc USING (b) LEFT JOIN cal USING (b) ORDER BY b
"""


@dataclass
class FakeField:
    name: str
    dtype: str


@dataclass
class FakeView:
    name: str
    version: int
    features: list[FakeField]
    labels: list[str]


def build(fs: fti.FeatureStore, rows: int) -> float:
    """Register a model, write ``rows`` logged predictions over 28 days; returns the seconds
    ``log_outcomes`` took for an outcome per prediction."""
    from sklearn.linear_model import LogisticRegression

    x = pd.DataFrame({"x": np.arange(10.0)})
    view = FakeView("delays_fv", 1, [FakeField("x", "float64")], ["delayed"])
    fs.models.register(
        "delays",
        LogisticRegression().fit(x, x["x"] > 4),
        feature_view=view,
        metrics={"auc": 0.75},
    )
    rng = np.random.default_rng(0)
    p = rng.random(rows)
    ids = np.array([f"r{i}" for i in range(rows)], dtype=object)
    logged = pd.Timestamp(T0) + pd.to_timedelta(rng.uniform(0, 28 * 86400, rows), unit="s")
    table = pa.table(
        {
            "request_id": pa.array(ids, pa.string()),
            "position": pa.array(np.zeros(rows, np.int32)),
            "logged_at": pa.array(logged.astype("datetime64[us, UTC]")),
            "entity": pa.array([f'{{"flight_id":{i}}}' for i in range(rows)], pa.string()),
            "request": pa.array(["{}"] * rows, pa.string()),
            "features": pa.array(['{"x":1.0}'] * rows, pa.string()),
            "transformed": pa.array(["null"] * rows, pa.string()),
            "prediction": pa.array((p > 0.5).astype(int).astype(str), pa.string()),
            "probability": pa.array(p),
            "model_name": pa.array(["delays"] * rows, pa.string()),
            "model_version": pa.array(np.ones(rows, np.int64)),
            "training_dataset_version": pa.nulls(rows, pa.int64()),
        }
    )
    spec = prediction_logs.log_spec(fs._ctx, "delays_fv", 1)
    ingestion.insert(fs._ctx, spec, table)
    outcomes = pd.DataFrame({"request_id": ids, "delayed": (rng.random(rows) < p).astype(int)})
    t = time.perf_counter()
    fs.models.log_outcomes("delays", outcomes)
    return time.perf_counter() - t


def baseline(fs: fti.FeatureStore) -> pa.Table:
    log = fs.get_feature_group("delays_fv_log", version=1)
    out = fs.get_feature_group("delays_outcomes", version=1)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("logs", fs._ctx.offline.dataset(log.spec.key)[0])
        con.register("outs", fs._ctx.offline.dataset(out.spec.key)[0])
        return con.sql(BASELINE, params={"origin": T0}).to_arrow_table()
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average, {os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory() as tmp:
        fs = fti.connect(Path(tmp) / "store")
        t = time.perf_counter()
        log_seconds = build(fs, args.rows)
        print(
            f"setup {time.perf_counter() - t:.1f}s; log_outcomes of {args.rows:,} outcomes: "
            f"{log_seconds:.2f}s ({args.rows / log_seconds:,.0f} rows/s)"
        )
        ours: list[float] = []
        raw: list[float] = []
        perf = base = None
        for _ in range(args.repeat):
            t = time.perf_counter()
            perf = fs.models.performance("delays", start=T0, every="1D")
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            base = baseline(fs)
            raw.append(time.perf_counter() - t)
        assert perf is not None
        assert base is not None
        assert len(perf) == base.num_rows == 28
        assert perf["predictions"].tolist() == base["predictions"].to_pylist()
        gap = np.max(np.abs(perf["auc"].to_numpy() - np.array(base["auc"].to_pylist())))
        assert gap < 1e-9, gap
        fs.close()
    a, b = statistics.median(ours), statistics.median(raw)
    print(
        f"performance() over {args.rows:,} predictions + {args.rows:,} outcomes, 28 daily "
        f"buckets: median {a * 1000:.0f} ms"
    )
    print(f"hand-written DuckDB join + group-by (same metrics):   median {b * 1000:.0f} ms")
    print(f"ratio {a / b:.2f}x (target <= 2x)")
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
