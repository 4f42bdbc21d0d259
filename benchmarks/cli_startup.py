"""CLI start-up: ``fti --help`` and ``fti fg list --json`` next to ``python -c "import typer,
rich"`` (the floor any Typer + Rich CLI pays), all measured in the same run.

    .venv/bin/python benchmarks/cli_startup.py [--runs 15] [--groups 100] [--imports]

Builds a temporary embedded store with ``--groups`` feature groups (3 rows each), then runs every
command ``--runs`` times in a fresh interpreter (interleaved, so load changes hit all commands
alike) and prints medians, the difference to the baseline and the target:

- ``fti --help`` within 150 ms of the baseline;
- ``fti fg list --json`` within 400 ms of the baseline on a store with 100 groups.

Wall time is what the targets are about; on a busy machine it stretches with the load, so the
CPU time of each process (user + system, from ``getrusage``) is printed too: it barely moves with
load. Not a test: read the differences, not the absolutes.

A second reference, not part of the targets: a one-command Typer program with a ``--root PATH``
option. Typer (0.29) validates every option value with pydantic, so any Typer command that takes
an option pays for importing pydantic, which ``import typer, rich`` does not show.

``--imports`` then runs each command ``--runs`` times more under ``python -X importtime`` and
prints the median import time per top-level package (fti per subpackage): far less noisy than
wall time on a shared machine, and it says where the time goes.

``--instructions`` runs each command once under valgrind (``cachegrind``, needs the ``valgrind``
package) and prints the instructions it executed: unlike any time, that count does not depend on
the load, so on a busy machine it is the figure to compare (it runs ~50x slower).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

TARGETS_MS = {"fti --help": 150.0, "fti fg list --json": 400.0}
BASELINE = 'python -c "import typer, rich"'
TYPER_OPTION = "typer command with an option"
TYPER_OPTION_CODE = """
from pathlib import Path
from typing import Annotated
import typer
app = typer.Typer()
@app.command()
def main(root: Annotated[Path | None, typer.Option("--root")] = None) -> None:
    print("[]")
app()
"""


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


def print_medians(times: dict[str, list[float]], cpu: dict[str, list[float]], runs: int) -> None:
    median = {name: statistics.median(t) * 1000 for name, t in times.items()}
    median_cpu = {name: statistics.median(t) * 1000 for name, t in cpu.items()}
    base, base_cpu = median[BASELINE], median_cpu[BASELINE]
    print(f"\nmedians of {runs} runs each (ms), load average {os.getloadavg()[0]:.1f}:")
    print(f"  {'':<34} {'wall':>7}   {'':<26} {'cpu':>7}")
    print(f"  {BASELINE:<34} {base:7.1f}   {'(baseline)':<26} {base_cpu:7.1f}")
    typer_diff = median[TYPER_OPTION] - base
    print(
        f"  {TYPER_OPTION:<34} {median[TYPER_OPTION]:7.1f}   +{typer_diff:6.1f} {'(reference)':<19}"
        f" {median_cpu[TYPER_OPTION]:7.1f}   +{median_cpu[TYPER_OPTION] - base_cpu:6.1f} cpu"
    )
    for name, target in TARGETS_MS.items():
        diff = median[name] - base
        verdict = "ok" if diff <= target else "OVER"
        print(
            f"  {name:<34} {median[name]:7.1f}   +{diff:6.1f} (target +{target:.0f}: {verdict:<4})"
            f" {median_cpu[name]:7.1f}   +{median_cpu[name] - base_cpu:6.1f} cpu"
        )


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "fti" else parts[0]


def import_times(
    commands: dict[str, list[str]], env: dict[str, str], runs: int, top: int = 16
) -> None:
    """Median import time (self, ms) per package of each command, from ``-X importtime``."""
    times: dict[str, dict[str, list[int]]] = {
        name: collections.defaultdict(list) for name in commands
    }
    totals: dict[str, list[int]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            err = subprocess.run(
                [cmd[0], "-X", "importtime", *cmd[1:]],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stderr
            per: collections.Counter[str] = collections.Counter()
            for line in err.splitlines():
                if line.startswith("import time:") and "imported package" not in line:
                    self_us, _, module = line.removeprefix("import time:").split("|")
                    per[_package(module.strip())] += int(self_us)
            totals[name].append(sum(per.values()))
            for package, us in per.items():
                times[name][package].append(us)

    def ms(name: str, package: str) -> float:
        got = times[name].get(package, [])
        return statistics.median(got + [0] * (runs - len(got))) / 1000

    names = list(commands)
    packages = sorted(
        {p for n in names for p in times[n]}, key=lambda p: -max(ms(n, p) for n in names)
    )
    print(f"\nimport time by package, median of {runs} runs (ms, self time summed):")
    short = {BASELINE: "baseline", TYPER_OPTION: "typer+option"}
    print(f"  {'':<20}" + "".join(f"{short.get(n, n.removeprefix('fti ')):>20}" for n in names))
    print(
        f"  {'(all)':<20}" + "".join(f"{statistics.median(totals[n]) / 1000:20.1f}" for n in names)
    )
    for package in packages[:top]:
        print(f"  {package:<20}" + "".join(f"{ms(n, package):20.1f}" for n in names))


def instructions(commands: dict[str, list[str]], env: dict[str, str]) -> None:
    """Instructions each command executes (valgrind's ``I refs``), next to the baseline's."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--instructions needs valgrind: apt-get install valgrind")
    counts = {}
    for name, cmd in commands.items():
        err = subprocess.run(
            [
                valgrind,
                "--tool=cachegrind",
                "--cache-sim=no",
                "--cachegrind-out-file=/dev/null",
                *cmd,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=True,
        ).stderr
        found = re.search(r"I\s+refs:\s+([\d,]+)", err)
        assert found is not None, err[-500:]
        counts[name] = int(found.group(1).replace(",", "")) / 1e6
    base = counts[BASELINE]
    print("\ninstructions executed (millions, valgrind; independent of the load):")
    print(f"  {BASELINE:<34} {base:8.1f}   (baseline)")
    for name, count in counts.items():
        if name != BASELINE:
            print(
                f"  {name:<34} {count:8.1f}   +{count - base:7.1f} ({count / base:.2f}x baseline)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument(
        "--imports", action="store_true", help="Also print the import time by package."
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="Also count the instructions each command executes (valgrind).",
    )
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "store"
        print(f"Building a store with {args.groups} feature groups ...", flush=True)
        build_store(root, args.groups)
        env = {**os.environ, "FTI_HOME": str(root), "FTI_PROGRESS": "0"}
        # Measure start-up as installed: with cached bytecode (the first run below writes it).
        # Without it every run compiles fti's modules again, which no user pays for.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        typer_program = Path(tmp) / "typer_option.py"
        typer_program.write_text(TYPER_OPTION_CODE)
        commands = {
            BASELINE: [python, "-c", "import typer, rich"],
            TYPER_OPTION: [python, str(typer_program)],
            "fti --help": [python, "-m", "fti", "--help"],
            "fti fg list --json": [python, "-m", "fti", "fg", "list", "--json"],
        }
        for cmd in commands.values():  # warm-up: writes the bytecode
            subprocess.run(cmd, env=env, capture_output=True, check=True)
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
        print_medians(times, cpu, args.runs)
        if args.imports:
            import_times(commands, env, args.runs)
        if args.instructions:
            instructions(commands, env)


if __name__ == "__main__":
    main()
