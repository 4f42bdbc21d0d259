"""A drift run vs a hand-written DuckDB query computing the same histograms (issue 13).

    .venv/bin/python benchmarks/drift.py [--rows 10000000] [--features 10] [--repeat 3]

Builds a feature group of ``--rows`` rows x ``--features`` float64 features (inserted in large
Arrow batches; kept in ``--root`` between runs when given), then times:

- ``mon.run()`` of a monitor with reference = the first half of the rows (a window) and
  detection = the second half (features 0-2 shifted), metric ``auto`` (PSI over the
  reference's deciles);
  the windows' whole UTC days come from the per-commit sketches, their partial days (one at
  the midpoint) from a scan;
- the same run with ``FTI_DRIFT_SKETCHES=0``: every window scanned;
- the baseline: hand-written DuckDB over the same Delta table's Arrow dataset, doing the same
  work as the scan -- one ``quantile_cont`` pass over the reference for the bin edges, then
  one ``histogram()`` pass per window over the same bins -- and the PSI in numpy.

Medians over ``--repeat`` runs; the machine may be shared, so read the ratio rather than the
absolute figures. Target: <= 2x the baseline (<= 3 s for 10M rows on a quiet machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

import fti
from fti.store import context_of

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DECILES = [i / 10 for i in range(1, 10)]


def interleaved(fns: list[Callable[[], Any]], repeat: int) -> list[tuple[float, Any]]:
    """Median seconds and last result of each function, run in turns (a, b, a, b, ...) so
    that a busy spell of the machine hits both alike."""
    times: list[list[float]] = [[] for _ in fns]
    outs: list[Any] = [None for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            outs[i] = fn()
            times[i].append(time.perf_counter() - t0)
    return [(statistics.median(t), o) for t, o in zip(times, outs, strict=True)]


def build(fs: fti.FeatureStore, rows: int, features: int) -> fti.FeatureGroup:
    fg = fs.feature_group("drift_bench", primary_key=["id"], event_time="t")
    if fg.stats()["rows"] == rows:
        return fg
    rng = np.random.default_rng(0)
    batch = 2_000_000
    start_us = int(T0.timestamp() * 1e6)
    for lo in range(0, rows, batch):
        n = min(batch, rows - lo)
        ids = np.arange(lo, lo + n)
        cols: dict[str, Any] = {
            "id": pa.array(ids),
            "t": pa.array(start_us + ids * 1_000_000, pa.timestamp("us", tz="UTC")),
        }
        second_half = ids >= rows // 2
        for i in range(features):
            shift = 0.5 if i < 3 else 0.0
            cols[f"f{i}"] = pa.array(rng.normal(i, 1 + i, n) + shift * second_half)
        fg.insert(pa.table(cols))
        print(f"  inserted {lo + n:,} rows", flush=True)
    return fg


def baseline(data: Any, names: list[str], mid: datetime) -> dict[str, float]:
    """Hand-written: deciles of the reference, then one histogram() pass per window."""
    con = duckdb.connect()
    try:
        con.register("t", data)
        q = ", ".join(f"quantile_cont({n}, {DECILES!r})" for n in names)
        edges = con.execute(f"SELECT {q} FROM t WHERE t < ?", [mid]).fetchone()
        assert edges is not None
        bins = [
            " + ".join(f"CAST({n} > {float(e)!r} AS INTEGER)" for e in sorted(set(es)))
            for n, es in zip(names, edges, strict=True)
        ]
        hist = ", ".join(f"histogram({b})" for b in bins)
        ref = con.execute(f"SELECT {hist} FROM t WHERE t < ?", [mid]).fetchone()
        det = con.execute(f"SELECT {hist} FROM t WHERE t >= ?", [mid]).fetchone()
        assert ref is not None
        assert det is not None
    finally:
        con.close()
    out = {}
    for n, r, d, es in zip(names, ref, det, edges, strict=True):
        k = len(set(es)) + 1
        p = np.maximum(np.array([r.get(i, 0) for i in range(k)], float) / sum(r.values()), 1e-4)
        qq = np.maximum(np.array([d.get(i, 0) for i in range(k)], float) / sum(d.values()), 1e-4)
        out[n] = float(np.sum((qq - p) * np.log(qq / p)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--root", type=Path, default=None, help="keep the store here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fti-drift-") as tmp:
        root = args.root or Path(tmp) / "store"
        fs = fti.connect(root)
        print(f"rows={args.rows:,} features={args.features} repeat={args.repeat} store={root}")
        t0 = time.perf_counter()
        fg = build(fs, args.rows, args.features)
        print(f"  build {time.perf_counter() - t0:.1f} s")
        names = [f"f{i}" for i in range(args.features)]
        mid = T0 + timedelta(seconds=args.rows // 2)
        mon = fs.monitor(
            f"drift_bench_{args.rows}_{args.features}",
            feature_group=fg,
            features=names,
            reference=fti.window(end=mid),
            detection=fti.window(start=mid),
        )
        data, _ = context_of(fs).offline.dataset(fg.spec.key)

        def scanned() -> dict[str, Any]:
            os.environ["FTI_DRIFT_SKETCHES"] = "0"
            try:
                return mon.run()
            finally:
                del os.environ["FTI_DRIFT_SKETCHES"]

        (ours, result), (scan, scan_result), (base, psi) = interleaved(
            [mon.run, scanned, lambda: baseline(data, names, mid)], args.repeat
        )
        for what, r in (("sketches", result), ("scan", scan_result)):
            got = {f["feature"]: f["value"] for f in r["features"]}
            worst = max(abs(got[n] - psi[n]) for n in names)
            print(f"  {what}: drifted {r['drifted']}  max |PSI fti - PSI baseline| = {worst:.2e}")
        label = f"drift run ({args.features} features)"
        for what, secs in (("sketches", ours), ("scan only", scan)):
            print(
                f"{label + ', ' + what:<40} fti {secs:8.3f} s   "
                f"hand-written DuckDB {base:8.3f} s   ratio {secs / base:6.2f}x"
            )
        fs.close()


if __name__ == "__main__":
    main()
