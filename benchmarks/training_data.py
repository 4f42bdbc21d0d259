"""Point-in-time training data: ``fv.training_data(spine)`` vs a hand-written DuckDB ASOF JOIN.

    .venv/bin/python benchmarks/training_data.py                 # small: E=100k, R=1M, S=100k
    .venv/bin/python benchmarks/training_data.py --scale large   # E=1M, R=10M, S=1M
    .venv/bin/python benchmarks/training_data.py --scale both --repeat 3

Workload (issue 3): ``activity`` holds E users x 5 float features with ~10 updates per user
over 90 days (R rows) plus 1% corrections (same key and event time, inserted later), TTL 30
days; ``profile`` holds 1-3 rows per user (int, string, float) with an event time; the spine has
S rows with 1% unknown users and 0.5% duplicate rows.

Measured in the same run, interleaved (baseline, fti, baseline, ...), medians over ``--repeat``
rounds plus the median of the per-round ratios, each result converted to pandas:

- **baseline**: a hand-written DuckDB query on the same rows written as Parquet files: two
  ``ASOF LEFT JOIN`` s with the TTL as a ``CASE`` (it does not break ties by ingestion order, so
  a correction may lose, and does not keep spine order);
- **fti**: ``fv.training_data(spine=...)`` on the Delta tables (exact semantics, spine order);
- **baseline on fti's files** (information only): the baseline query reading the Delta tables'
  Parquet files (zstd) instead of its own (snappy), to separate storage format from join cost;
- **feast** (optional, issue 3): ``FeatureStore.get_historical_features(entity_df=spine,
  features=[...]).to_df()`` over the baseline's own Parquet files, run by
  ``benchmarks/feast_pit.py`` in a child process: with this interpreter if ``feast`` is
  importable, else with ``--feast-python PATH`` (or ``$FTI_FEAST_PYTHON``), e.g. a separate venv
  made with ``python3.11 -m venv /tmp/feast-venv && /tmp/feast-venv/bin/pip install
  'feast[duckdb]==0.67.0'``; otherwise prints "skipped". ``--feast-store`` picks Feast's DuckDB
  offline store (default), its default ``file`` (dask) store, or both. The child is set up
  before the rounds and then driven one call per round, so Feast is interleaved with the others;
  its time is measured inside the child (spine already in pandas, excluding process start-up
  and ``apply``). The row count Feast returns is printed next to the spine size, with the
  non-null counts of ``f0`` and ``age`` next to fti's (a coarse check of the same semantics).

    .venv/bin/python benchmarks/training_data.py --feast-python /tmp/feast-venv/bin/python \
        --feast-store both

Peak memory of ``fv.training_data`` is measured in a fresh child process (``ru_maxrss``), so
data generation does not count. The machine may be shared: read ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable

import fti

SCALES = {"small": (100_000, 1_000_000, 100_000), "large": (1_000_000, 10_000_000, 1_000_000)}
START_US = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
DAY_US = 86_400_000_000
TTL = timedelta(days=30)
CHUNK = 2_000_000
TARGET = 1.25


def _ts(values: np.ndarray) -> pa.Array:
    return pa.array(values, pa.timestamp("us", "UTC"))


def make_workload(e: int, r: int, s: int, seed: int = 0) -> dict[str, pa.Table]:
    """The three tables of the workload, as Arrow (corrections as a separate table)."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, e, r, dtype=np.int64)
    times = START_US + rng.integers(0, 90 * DAY_US, r, dtype=np.int64)
    activity = pa.table(
        {
            "user_id": users,
            "ts": _ts(times),
            **{f"f{i}": rng.standard_normal(r) for i in range(5)},
        }
    )
    fix = rng.choice(r, size=r // 100, replace=False)
    corrections = pa.table(
        {
            "user_id": users[fix],
            "ts": _ts(times[fix]),
            **{f"f{i}": rng.standard_normal(fix.size) for i in range(5)},
        }
    )
    per_user = rng.integers(1, 4, e)
    p_users = np.repeat(np.arange(e, dtype=np.int64), per_user)
    n = p_users.size
    profile = pa.table(
        {
            "user_id": p_users,
            "pts": _ts(START_US - 30 * DAY_US + rng.integers(0, 120 * DAY_US, n, dtype=np.int64)),
            "age": rng.integers(18, 90, n, dtype=np.int64),
            "country": pa.array(rng.choice(["us", "de", "fr", "in", "br"], n)),
            "score": rng.random(n),
        }
    )
    spine_users = rng.integers(0, e, s, dtype=np.int64)
    unknown = rng.random(s) < 0.01
    spine_users[unknown] = e + rng.integers(0, e, int(unknown.sum()))
    spine_times = START_US + rng.integers(0, 90 * DAY_US, s, dtype=np.int64)
    dup = rng.choice(s, size=s // 200, replace=False)
    spine_users = np.concatenate([spine_users, spine_users[dup]])
    spine_times = np.concatenate([spine_times, spine_times[dup]])
    spine = pa.table(
        {
            "user_id": spine_users,
            "ts": _ts(spine_times),
            "label": rng.integers(0, 2, spine_users.size, dtype=np.int64),
        }
    )
    return {"activity": activity, "corrections": corrections, "profile": profile, "spine": spine}


def build_store(root: Path, data: dict[str, pa.Table]) -> None:
    """Insert the workload through fti (chunked) and create the feature view."""
    fs = fti.connect(root)
    activity = fs.feature_group("activity", primary_key=["user_id"], event_time="ts", ttl=TTL)
    for table in (data["activity"], data["corrections"]):
        for off in range(0, table.num_rows, CHUNK):
            activity.insert(table.slice(off, CHUNK))
    profile = fs.feature_group("profile", primary_key=["user_id"], event_time="pts")
    profile.insert(data["profile"])
    fs.feature_view(
        "bench",
        query=activity.select([f"f{i}" for i in range(5)]).join(
            profile.select(["age", "country", "score"]), on=["user_id"], prefix="p_"
        ),
    )
    fs.close()


def write_parquet(folder: Path, data: dict[str, pa.Table]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    # Corrections are appended after the originals, as a second file would be.
    pq.write_table(pa.concat_tables([data["activity"], data["corrections"]]), folder / "a.parquet")
    pq.write_table(data["profile"], folder / "p.parquet")


def _files(paths: list[Path]) -> str:
    return "[" + ", ".join(f"'{p}'" for p in paths) + "]"


def delta_files(root: Path, group: str) -> list[Path]:
    """The Parquet files of a feature group's current Delta table version in the store."""
    return [Path(u) for u in DeltaTable(str(root / "offline" / f"{group}_v1")).file_uris()]


def baseline_sql(a: list[Path], p: list[Path]) -> str:
    ttl_us = TTL // timedelta(microseconds=1)
    feats = ", ".join(
        f"CASE WHEN epoch_us(a.ts) >= epoch_us(s.ts) - {ttl_us} THEN a.f{i} END AS f{i}"
        for i in range(5)
    )
    return (
        f"SELECT s.user_id, s.ts, s.label, {feats}, p.age AS p_age, p.country AS p_country, "
        f"p.score AS p_score FROM spine s "
        f"ASOF LEFT JOIN read_parquet({_files(a)}) a ON s.user_id = a.user_id AND s.ts >= a.ts "
        f"ASOF LEFT JOIN read_parquet({_files(p)}) p ON s.user_id = p.user_id AND s.ts >= p.pts"
    )


def interleaved(
    fns: dict[str, Callable[[], Any]], repeat: int
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Run each function once per round, alternating, so load changes hit all of them alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    out: dict[str, Any] = {}
    for _ in range(repeat):
        for name, fn in fns.items():
            started = time.perf_counter()
            out[name] = fn()
            times[name].append(time.perf_counter() - started)
    return times, out


def child_peak(root: Path, spine_path: Path) -> dict[str, float]:
    """Run fv.training_data once in a fresh process; its peak RSS and time."""
    code = (
        "import json, resource, time, sys\n"
        "import pyarrow.parquet as pq, fti\n"
        f"fs = fti.connect({str(root)!r})\n"
        "fv = fs.get_feature_view('bench', version=1)\n"
        f"spine = pq.read_table({str(spine_path)!r})\n"
        "t = time.perf_counter(); df = fv.training_data(spine=spine)\n"
        "s = time.perf_counter() - t\n"
        "print(json.dumps({'seconds': s, 'rows': len(df), "
        "'peak_gb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


FEAST_DRIVER = Path(__file__).with_name("feast_pit.py")
FEAST_HINT = (
    "not installed; pip install 'feast[duckdb]==0.67.0' (in a separate venv, then pass "
    "--feast-python PATH or set FTI_FEAST_PYTHON) to compare"
)


def feast_python(option: str | None) -> str | None:
    """The interpreter that runs Feast: this one if it has ``feast``, else the option/env var."""
    if importlib.util.find_spec("feast") is not None:
        return sys.executable
    path = option or os.environ.get("FTI_FEAST_PYTHON")
    if not path:
        return None
    if not Path(path).is_file():
        raise SystemExit(
            f"--feast-python / FTI_FEAST_PYTHON: {path!r} is not a file; give the python "
            "executable of a venv where feast is installed"
        )
    return path


class FeastDriver:
    """``feast_pit.py --sync`` in a child process: set up once, then one timed call per run()."""

    def __init__(self, python: str, store: str, work: Path) -> None:
        self.store = store
        self.stderr_path = work / f"feast-{store}.stderr"
        self.stderr = self.stderr_path.open("w")
        parquet = work / "parquet"
        self.proc = subprocess.Popen(
            [
                python,
                str(FEAST_DRIVER),
                "--activity",
                str(parquet / "a.parquet"),
                "--profile",
                str(parquet / "p.parquet"),
                "--spine",
                str(work / "spine.parquet"),
                "--store",
                store,
                "--sync",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        self.meta = self._read()
        self.runs: list[dict[str, Any]] = []

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self.stderr.flush()
            tail = self.stderr_path.read_text().strip().splitlines()[-3:]
            raise RuntimeError(f"feast_pit.py exited {self.proc.returncode}: " + " | ".join(tail))
        result: dict[str, Any] = json.loads(line)
        return result

    def run(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        result = self._read()
        self.runs.append(result)
        return result

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=120)
        self.stderr.close()


def start_feast(python: str | None, stores: list[str], work: Path) -> dict[str, FeastDriver]:
    drivers: dict[str, FeastDriver] = {}
    if python is None:
        print(f"feast: skipped ({FEAST_HINT})")
        return drivers
    for store in stores:
        try:
            drivers[store] = FeastDriver(python, store, work)
        except (RuntimeError, OSError, ValueError) as exc:
            print(f"feast ({store}): failed to set up: {exc}")
    return drivers


def report_feast(
    drivers: dict[str, FeastDriver], base_times: list[float], fti_df: Any, spine_rows: int
) -> None:
    base_s = statistics.median(base_times)
    fti_nn = (int(fti_df["f0"].notna().sum()), int(fti_df["p_age"].notna().sum()))
    for store, drv in drivers.items():
        if not drv.runs:
            continue
        secs = [r["seconds"] for r in drv.runs]
        med = statistics.median(secs)
        paired = statistics.median([f / b for f, b in zip(secs, base_times, strict=True)])
        last = drv.runs[-1]
        rows = last["rows"]
        note = "" if rows == spine_rows else f"  <- {spine_rows - rows:,} spine rows missing"
        print(
            f"feast {drv.meta['feast']} ({store} offline store): median {med:.3f}s  "
            f"ratio vs baseline {med / base_s:.2f}x (paired {paired:.2f}x)  "
            f"(rows returned {rows:,} of {spine_rows:,}){note}"
        )
        nn = last["non_null"]
        print(
            f"  non-null f0 / age: feast {nn['f0']:,} / {nn['age']:,}, "
            f"fti {fti_nn[0]:,} / {fti_nn[1]:,}; feast peak RSS {last['peak_gb']:.2f} GB"
        )


def run_scale(
    name: str, repeat: int, keep: Path | None, feast_py: str | None, feast_stores: list[str]
) -> None:
    e, r, s = SCALES[name]
    print(f"\n== {name}: E={e:,} users, R={r:,} rows (+{r // 100:,} corrections), S={s:,} spine")
    work = Path(tempfile.mkdtemp(prefix=f"fti-bench-td-{name}-", dir=keep))
    try:
        started = time.perf_counter()
        data = make_workload(e, r, s)
        build_store(work / "store", data)
        write_parquet(work / "parquet", data)
        pq.write_table(data["spine"], work / "spine.parquet")
        print(f"set-up (generate, insert, write Parquet): {time.perf_counter() - started:.1f}s")
        spine = data["spine"]
        del data

        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.register("spine", spine)
        sql = baseline_sql([work / "parquet" / "a.parquet"], [work / "parquet" / "p.parquet"])
        # The same hand-written query over fti's own files (zstd Delta Parquet): how much of
        # the gap is the storage format rather than the join.
        sql_delta = baseline_sql(
            delta_files(work / "store", "activity"), delta_files(work / "store", "profile")
        )
        fs = fti.connect(work / "store")
        fv = fs.get_feature_view("bench", version=1)
        drivers = start_feast(feast_py, feast_stores, work)
        fns: dict[str, Callable[[], Any]] = {
            "baseline": lambda: con.sql(sql).df(),
            "fti": lambda: fv.training_data(spine=spine),
            "baseline_delta": lambda: con.sql(sql_delta).df(),
        }
        for store, drv in drivers.items():
            fns[f"feast_{store}"] = drv.run
        try:
            times, out = interleaved(fns, repeat)
        finally:
            for drv in drivers.values():
                drv.close()
        fs.close()
        con.close()
        assert len(out["fti"]) == spine.num_rows, (len(out["fti"]), spine.num_rows)
        assert len(out["baseline"]) == spine.num_rows
        base_s = statistics.median(times["baseline"])
        fti_s = statistics.median(times["fti"])
        ratio = fti_s / base_s
        paired = statistics.median(
            [f / b for f, b in zip(times["fti"], times["baseline"], strict=True)]
        )
        verdict = "OK" if ratio <= TARGET else "MISSED"
        delta_s = statistics.median(times["baseline_delta"])
        print(f"baseline DuckDB ASOF (Parquet -> pandas): median {base_s:.3f}s")
        print(
            f"fti fv.training_data(spine) -> pandas:    median {fti_s:.3f}s  "
            f"ratio {ratio:.2f}x (median of paired runs {paired:.2f}x; target <= {TARGET}x: "
            f"{verdict})"
        )
        print(
            f"(same baseline query on fti's Delta files: median {delta_s:.3f}s = "
            f"{delta_s / base_s:.2f}x the baseline; fti / it = {fti_s / delta_s:.2f}x)"
        )
        peak = child_peak(work / "store", work / "spine.parquet")
        print(
            f"fti in a fresh process: {peak['seconds']:.3f}s, peak RSS {peak['peak_gb']:.2f} GB "
            f"(target at large scale <= 3 GB)"
        )
        report_feast(drivers, times["baseline"], out["fti"], spine.num_rows)
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["small", "large", "both"], default="small")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="keep the data under this folder")
    parser.add_argument(
        "--feast-python",
        default=None,
        help="python of a venv with feast installed, used if this one has no feast "
        "(default: $FTI_FEAST_PYTHON)",
    )
    parser.add_argument("--feast-store", choices=["duckdb", "file", "both"], default="duckdb")
    args = parser.parse_args()
    scales = ["small", "large"] if args.scale == "both" else [args.scale]
    feast_py = feast_python(args.feast_python)
    stores = ["duckdb", "file"] if args.feast_store == "both" else [args.feast_store]
    for name in scales:
        run_scale(name, args.repeat, args.keep, feast_py, stores)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"\n(benchmark process peak RSS incl. data generation: {peak:.2f} GB)")


if __name__ == "__main__":
    main()
