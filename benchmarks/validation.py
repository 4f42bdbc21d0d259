"""Write-time validation cost (issue 12): ``fg.insert`` of 1M rows x 8 features with the 7 rules
of the issue vs the same insert without rules, measured in the same run; the validation pass
alone; and, if a Pandera venv is given, Pandera validating the same frame with the same rules.

    .venv/bin/python benchmarks/validation.py [--rows 1000000] [--repeat 3]
        [--pandera-python /tmp/pandera-venv/bin/python]

Pandera lives in its own venv (it is not an fti dependency):
``python3.11 -m venv /tmp/pandera-venv``, then
``/tmp/pandera-venv/bin/pip install pandera pandas pyarrow``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import fti
from fti.backends.compute.duckdb import DuckDBEngine
from fti.services.validation import evaluate

RULES = [
    fti.expect.not_null("amount"),
    fti.expect.between("amount", 0, 10_000, mostly=0.99),
    fti.expect.in_set("country", ["US", "DE", "FR"]),
    fti.expect.matches("email", r"^[^@]+@[^@]+$"),
    fti.expect.unique(["tx_id"]),
    fti.expect.row_count(min=1, max=5_000_000),
    fti.expect.max_age("ts", timedelta(days=2)),
]

PANDERA = r"""
import sys, time, statistics
import pandas as pd
import pandera.pandas as pa
path, repeat = sys.argv[1], int(sys.argv[2])
df = pd.read_parquet(path)
now = pd.Timestamp.now(tz="UTC")
schema = pa.DataFrameSchema(
    {
        "amount": pa.Column(float, [pa.Check.in_range(0, 10_000, raise_warning=False)],
                            nullable=False),
        "country": pa.Column(str, pa.Check.isin(["US", "DE", "FR"])),
        "email": pa.Column(str, pa.Check.str_matches(r"^[^@]+@[^@]+$")),
        "tx_id": pa.Column(int, unique=True),
        "ts": pa.Column(checks=pa.Check(lambda s: s.max() >= now - pd.Timedelta(days=2))),
    },
    checks=[pa.Check(lambda d: 1 <= len(d) <= 5_000_000)],
)
times = []
for _ in range(repeat):
    t = time.perf_counter()
    schema.validate(df, lazy=True)
    times.append(time.perf_counter() - t)
print(statistics.median(times))
"""


def frame(rows: int) -> pa.Table:
    rng = np.random.default_rng(12)
    now = datetime.now(UTC)
    countries = np.array(["US", "DE", "FR"])
    return pa.table(
        {
            "tx_id": pa.array(np.arange(rows, dtype=np.int64)),
            "ts": pa.array(
                [now - timedelta(seconds=int(s)) for s in rng.integers(0, 86_400, rows)],
                pa.timestamp("us", tz="UTC"),
            ),
            "amount": rng.uniform(0, 9_000, rows),
            "country": pa.array(countries[rng.integers(0, 3, rows)]),
            "email": pa.array([f"user{i % 50_000}@example.com" for i in range(rows)]),
            "credit_limit": rng.uniform(1_000, 20_000, rows),
            "f1": rng.normal(size=rows),
            "f2": rng.normal(size=rows),
            "f3": rng.integers(0, 100, rows),
            "f4": rng.normal(size=rows),
        }
    )


def median_seconds(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pandera-python", default=None)
    args = ap.parse_args()
    data = frame(args.rows)
    print(f"{args.rows:,} rows x {data.num_columns - 2} features, {len(RULES)} rules")
    with tempfile.TemporaryDirectory() as tmp, fti.connect(Path(tmp) / "store") as fs:
        plain = fs.feature_group("plain", primary_key=["tx_id"], event_time="ts")
        checked = fs.feature_group(
            "checked", primary_key=["tx_id"], event_time="ts", expectations=RULES
        )
        plain.insert(data.slice(0, 10))  # create the tables and schemas outside the timing
        checked.insert(data.slice(0, 10))
        base, with_rules = [], []
        for _ in range(args.repeat):  # interleaved, so drift of the machine hits both
            t = time.perf_counter()
            plain.insert(data)
            base.append(time.perf_counter() - t)
            t = time.perf_counter()
            report = checked.insert(data)
            with_rules.append(time.perf_counter() - t)
            assert report.validation is not None
            assert report.validation.ok
        b, w = statistics.median(base), statistics.median(with_rules)
        engine = DuckDBEngine()
        alone = median_seconds(lambda: evaluate(RULES, data, engine=engine), args.repeat)
        print(f"fg.insert without rules   {b:8.3f} s")
        print(f"fg.insert with 7 rules    {w:8.3f} s   ratio {w / b:.3f} (+{(w / b - 1):.1%})")
        print(f"validation pass alone     {alone:8.3f} s   ({alone / b:.1%} of an insert)")
        if args.pandera_python:
            path = Path(tmp) / "frame.parquet"
            pq.write_table(data, path)
            script = Path(tmp) / "pandera_bench.py"
            script.write_text(PANDERA)
            out = subprocess.run(
                [args.pandera_python, str(script), str(path), str(args.repeat)],
                capture_output=True,
                text=True,
                check=True,
            )
            pandera = float(out.stdout.strip().splitlines()[-1])
            print(
                f"Pandera validate (pandas) {pandera:8.3f} s   fti validation is "
                f"{pandera / alone:.1f}x faster"
            )


if __name__ == "__main__":
    main()
