"""Small files (issue 18, item 5): ``fg.read()`` after N small commits, before and after
compaction, next to a raw deltalake read of the same table in the same run.

For each N: N inserts of ``--rows`` rows with automatic compaction off, then read medians
(fti ``fg.read()`` and raw ``DeltaTable(path).to_pyarrow_table()``), then ``fg.compact()``
and the same reads again; then the same N inserts into a second group with automatic
compaction on (``FTI_COMPACT_FILES``, default 256) and its read median. Read time should be
flat in N after compaction and with automatic compaction.

    .venv/bin/python benchmarks/small_files.py [--commits 100 500 1555] [--rows 5] [--repeat 7]
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

import pyarrow as pa
from deltalake import DeltaTable

import fti

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _median(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _batch(i: int, rows: int) -> pa.Table:
    return pa.table(
        {
            "k": pa.array([(i * rows + j) % 997 for j in range(rows)], pa.int64()),
            "t": pa.array(
                [T0 + timedelta(seconds=i * rows + j) for j in range(rows)],
                pa.timestamp("us", "UTC"),
            ),
            "x": pa.array([float(i + j) for j in range(rows)]),
        }
    )


def _fill(fs: fti.FeatureStore, name: str, commits: int, rows: int) -> fti.FeatureGroup:
    fg = fs.feature_group(name, primary_key=["k"], event_time="t")
    for i in range(commits):
        fg.insert(_batch(i, rows))
    return fg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, nargs="+", default=[100, 500, 1555])
    parser.add_argument("--rows", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    os.environ["FTI_PROGRESS"] = "0"
    print(
        f"{'commits':>7} {'rows':>6} {'files':>6} | {'fg.read':>9} {'raw delta':>9} {'ratio':>6} "
        f"| compacted: {'files':>5} {'fg.read':>9} {'raw delta':>9} {'ratio':>6} "
        f"| auto: {'files':>5} {'fg.read':>9}"
    )
    for n in args.commits:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["FTI_COMPACT_FILES"] = "0"
            fs = fti.connect(Path(tmp) / "store")
            fg = _fill(fs, "small", n, args.rows)
            path = fs._ctx.offline.path(fg.spec.key)  # type: ignore[attr-defined]
            files = fg.stats()["files"]
            rows = len(fg.read())

            def read(fg: fti.FeatureGroup = fg) -> object:
                return fg.read()

            def raw(path: str = path) -> object:
                return DeltaTable(path).to_pyarrow_table()

            before = _median(read, args.repeat), _median(raw, args.repeat)
            report = fg.compact()
            after = _median(read, args.repeat), _median(raw, args.repeat)
            assert len(fg.read()) == rows
            os.environ.pop("FTI_COMPACT_FILES")
            auto = _fill(fs, "auto", n, args.rows)
            auto_files = auto.stats()["files"]

            def read_auto(fg: fti.FeatureGroup = auto) -> object:
                return fg.read()

            auto_read = _median(read_auto, args.repeat)
            fs.close()
        print(
            f"{n:>7} {rows:>6} {files:>6} | {before[0] * 1e3:>7.1f}ms {before[1] * 1e3:>7.1f}ms "
            f"{before[0] / before[1]:>5.2f}x | compacted: {report.files_after:>5} "
            f"{after[0] * 1e3:>7.1f}ms {after[1] * 1e3:>7.1f}ms {after[0] / after[1]:>5.2f}x "
            f"| auto: {auto_files:>5} {auto_read * 1e3:>7.1f}ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
