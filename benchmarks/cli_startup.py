"""CLI start-up: ``fti --help`` and ``fti fg list --json`` next to ``python -c "import typer,
rich"`` (the floor any Typer + Rich CLI pays), all measured in the same run.

    .venv/bin/python benchmarks/cli_startup.py [--runs 15] [--groups 100]

Builds a temporary embedded store with ``--groups`` feature groups (3 rows each), then runs every
command ``--runs`` times in a fresh interpreter (interleaved, so load changes hit all commands
alike) and prints medians, the difference to the baseline and the target:

- ``fti --help`` within 150 ms of the baseline;
- ``fti fg list --json`` within 400 ms of the baseline on a store with 100 groups.

Wall time is what the targets are about; on a busy machine it stretches with the load, so the
CPU time of each process (user + system, from ``getrusage``) is printed too: it barely moves with
load. Not a test: read the differences, not the absolutes.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

TARGETS_MS = {"fti --help": 150.0, "fti fg list --json": 400.0}


def build_store(root: Path, groups: int) -> None:
    import pyarrow as pa

    import fti

    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    frame = pa.table({"k": [1, 2, 3], "t": [t0] * 3, "x": [1.0, 2.0, 3.0]})
    with fti.connect(root) as fs:
        for i in range(groups):
            fg = fs.feature_group(
                f"group_{i:03d}", primary_key=["k"], event_time="t", online=i % 2 == 0
            )
            fg.insert(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--groups", type=int, default=100)
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "store"
        print(f"Building a store with {args.groups} feature groups ...", flush=True)
        build_store(root, args.groups)
        env = {**os.environ, "FTI_HOME": str(root), "FTI_PROGRESS": "0"}
        commands = {
            'python -c "import typer, rich"': [python, "-c", "import typer, rich"],
            "fti --help": [python, "-m", "fti", "--help"],
            "fti fg list --json": [python, "-m", "fti", "fg", "list", "--json"],
        }
        out = subprocess.run(
            commands["fti fg list --json"], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.count('"name"') == args.groups, out.stdout[:500]
        times: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, cmd in commands.items():
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True)
                times[name].append(time.perf_counter() - start)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[name].append(
                    after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
                )
    median = {name: statistics.median(t) * 1000 for name, t in times.items()}
    median_cpu = {name: statistics.median(t) * 1000 for name, t in cpu.items()}
    base_name = 'python -c "import typer, rich"'
    base, base_cpu = median[base_name], median_cpu[base_name]
    print(f"\nmedians of {args.runs} runs each (ms), load average {os.getloadavg()[0]:.1f}:")
    print(f"  {'':<34} {'wall':>7}   {'':<26} {'cpu':>7}")
    print(f"  {base_name:<34} {base:7.1f}   {'(baseline)':<26} {base_cpu:7.1f}")
    for name, target in TARGETS_MS.items():
        diff = median[name] - base
        verdict = "ok" if diff <= target else "OVER"
        print(
            f"  {name:<34} {median[name]:7.1f}   +{diff:6.1f} (target +{target:.0f}: {verdict:<4})"
            f" {median_cpu[name]:7.1f}   +{median_cpu[name] - base_cpu:6.1f} cpu"
        )


if __name__ == "__main__":
    main()
