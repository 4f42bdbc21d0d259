"""Bitemporal reads and the skew check (issue 13, sections 3 and 4).

    .venv/bin/python benchmarks/known_at.py                  # small: E=100k, R=1M, S=100k
    .venv/bin/python benchmarks/known_at.py --scale large    # E=1M, R=10M, S=1M
    .venv/bin/python benchmarks/known_at.py --only skew      # the skew check alone

**known_at**: the workload of ``training_data.py`` plus a batch of late-arriving rows (1% of R,
early event times) inserted last. Interleaved in the same run, medians over ``--repeat``:

- ``training_data(spine)`` (today's join, the baseline);
- ``training_data(spine, known_at=T)`` with T between the main inserts and the late batch
  (one cut-off: a filter on every group's rows);
- ``training_data(spine, known_at="seen")`` with a per-row cut-off: half the spine rows at T,
  half after everything, so the rows whose ASOF match is a late row are re-chosen by the range
  join.

Target: the known_at join <= 1.3x the baseline at the large scale.

**skew**: ``fs.models.skew_check`` of 1,000 logged predictions (the serving test world of
``tests/serving_world.py``: two online groups, an on-demand feature, transformations), served
in process through the model server's runtime; target <= 5 s on a quiet machine. ``uptime`` is
printed first: the machine may be shared, so read ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

import fti

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

from training_data import (
    DAY_US,
    SCALES,
    START_US,
    build_store,
    interleaved,
    make_workload,
)

TARGET = 1.3
SKEW_TARGET_S = 5.0


def late_rows(e: int, r: int, seed: int = 1) -> pa.Table:
    """1% of R rows with event times spread over the 90 days, inserted after everything."""
    rng = np.random.default_rng(seed)
    n = max(r // 100, 1)
    return pa.table(
        {
            "user_id": rng.integers(0, e, n, dtype=np.int64),
            "ts": pa.array(
                START_US + rng.integers(0, 90 * DAY_US, n, dtype=np.int64),
                pa.timestamp("us", "UTC"),
            ),
            **{f"f{i}": rng.standard_normal(n) for i in range(5)},
        }
    )


def run_known_at(scale: str, repeat: int) -> None:
    e, r, s = SCALES[scale]
    print(f"\n== known_at, {scale}: E={e:,}, R={r:,} (+1% corrections, +1% late rows), S={s:,}")
    work = Path(tempfile.mkdtemp(prefix=f"fti-bench-known-{scale}-"))
    try:
        data = make_workload(e, r, s)
        build_store(work / "store", data)
        spine = data["spine"]
        del data
        fs = fti.connect(work / "store")
        time.sleep(0.01)
        cut = datetime.now(UTC)
        time.sleep(0.01)
        fs.get_feature_group("activity", version=1).insert(late_rows(e, r))
        after = datetime.now(UTC)
        fv = fs.get_feature_view("bench", version=1)
        rng = np.random.default_rng(2)
        seen = np.where(rng.random(spine.num_rows) < 0.5, cut, after)
        per_row = spine.append_column("seen", pa.array(seen, pa.timestamp("us", "UTC")))
        fns: dict[str, Callable[[], Any]] = {
            "today": lambda: fv.training_data(spine=spine),
            "known_at=T": lambda: fv.training_data(spine=spine, known_at=cut),
            "known_at=column": lambda: fv.training_data(spine=per_row, known_at="seen"),
        }
        times, out = interleaved(fns, repeat)
        base = statistics.median(times["today"])
        print(f"training_data(spine):                     median {base:.3f}s")
        for name in ("known_at=T", "known_at=column"):
            t = statistics.median(times[name])
            ratio = t / base
            verdict = "OK" if ratio <= TARGET else "MISSED"
            print(
                f"training_data(spine, {name + '):':<17} median {t:.3f}s  ratio {ratio:.2f}x "
                f"(target <= {TARGET}x at large scale: {verdict})"
            )
        differ = int((out["today"]["f0"].fillna(0) != out["known_at=T"]["f0"].fillna(0)).sum())
        print(f"rows whose f0 differs between today and known_at=T (late rows hidden): {differ:,}")
        fs.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_skew(requests: int, repeat: int) -> None:
    import serving_world
    from fti.serving import create_app

    print(f"\n== skew check of {requests:,} logged predictions")
    work = Path(tempfile.mkdtemp(prefix="fti-bench-skew-"))
    try:
        fs = fti.connect(work / "store")
        world = serving_world.build(fs, trips=300)
        from fastapi.testclient import TestClient

        app = create_app(fs, world.model_name)
        with TestClient(app) as c:
            for n in range(0, requests, 10):
                ids = [world.trip_ids[(n + i) % len(world.trip_ids)] for i in range(10)]
                c.post(
                    f"/v1/models/{world.model_name}/predict",
                    json={"entities": [{"trip_id": t} for t in ids], "request": {"dep_hour": 3}},
                )
        runs = []
        report = None
        for _ in range(repeat):
            started = time.perf_counter()
            report = fs.models.skew_check(world.model_name, sample=requests)
            runs.append(time.perf_counter() - started)
        assert report is not None
        t = statistics.median(runs)
        verdict = "OK" if t <= SKEW_TARGET_S else "MISSED"
        print(f"{report}")
        print(
            f"skew_check(sample={requests}): median {t:.3f}s "
            f"(target <= {SKEW_TARGET_S}s: {verdict})"
        )
        fs.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["small", "large"], default="small")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1_000)
    parser.add_argument("--only", choices=["known_at", "skew"], default=None)
    args = parser.parse_args()
    load = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"uptime: {load}")
    if args.only in (None, "known_at"):
        run_known_at(args.scale, args.repeat)
    if args.only in (None, "skew"):
        run_skew(args.requests, args.repeat)


if __name__ == "__main__":
    main()
