"""The ``fti`` command line, end to end: Typer's CliRunner in-process, and ``python -m fti`` in a
subprocess where the real entry point (errors without tracebacks, exit codes) matters."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import fti
from fti._internal import progress
from fti.cli.app import app, main
from fti.services import ingestion

runner = CliRunner()
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def run(*args: str) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    with fti.connect(root) as fs:
        fg = fs.feature_group(
            "weather",
            primary_key=["origin"],
            event_time="time_hour",
            online=True,
            description="hourly weather",
        )
        fg.insert(
            pd.DataFrame(
                {
                    "origin": ["JFK", "LGA", "JFK"],
                    "time_hour": [T0, T0, T0.replace(hour=1)],
                    "temp": [1.5, 2.5, 3.5],
                }
            )
        )
        fs.feature_group("weather", version=2, primary_key=["origin"])
        snap = fs.feature_group("planes", primary_key=["tailnum", "year"], online=True)
        snap.insert(pd.DataFrame({"tailnum": ["N1"], "year": [2013], "seats": [55]}))
    return root


def test_init_creates_the_store(tmp_path: Path) -> None:
    out = run("init", str(tmp_path / "new"))
    assert "Feature store ready" in out
    assert (tmp_path / "new" / "registry.db").is_file()
    for part in ("offline", "online", "registry", "artifacts"):
        assert part in out


def test_fg_list(store: Path) -> None:
    out = run("fg", "list", "--root", str(store))
    lines = [line for line in out.splitlines() if "weather" in line or "planes" in line]
    assert len(lines) == 3  # weather v1, weather v2, planes v1
    v1 = next(line for line in lines if "hourly weather" in line)
    for cell in ("origin", "time_hour", "yes", "3"):
        assert cell in v1
    planes = next(line for line in lines if "planes" in line)
    assert "tailnum, year" in planes
    v2 = next(line for line in lines if "weather" in line and line is not v1)
    assert "no" in v2.split()


def test_fg_show(store: Path) -> None:
    out = run("fg", "show", "weather:1", "--root", str(store))
    assert "weather version 1" in out
    assert "rows written  3 in 1 file(s)" in out
    assert "table version 1" in out
    assert "online rows   2" in out
    for column, dtype, role in [
        ("origin", "string", "key"),
        ("time_hour", "timestamp", "event time"),
        ("temp", "float64", "feature"),
    ]:
        assert any(
            column in line and dtype in line and role in line for line in out.splitlines()
        ), column
    latest = run("fg", "show", "weather", "--root", str(store))
    assert "weather version 2" in latest  # no version: the latest
    assert "rows written  0" in latest


def test_fg_preview_offline_and_online(store: Path) -> None:
    out = run("fg", "preview", "weather:1", "--root", str(store))
    rows = [line for line in out.splitlines() if "JFK" in line or "LGA" in line]
    assert len(rows) == 3
    assert "3.5" in rows[-1]  # ordered by event time: the latest row last
    assert len(run("fg", "preview", "weather:1", "-n", "1", "--root", str(store)).split("JFK")) == 2
    online = run("fg", "preview", "weather:1", "--online", "origin=JFK", "--root", str(store))
    assert "(online)" in online
    row = next(line for line in online.splitlines() if "JFK" in line)
    assert "3.5" in row
    assert "01:00:00" in row
    composite = run(
        "fg", "preview", "planes", "--online", "tailnum=N1", "--online", "year=2013",
        "--root", str(store),
    )  # fmt: skip
    row = next(line for line in composite.splitlines() if "N1" in line)
    assert "2013" in row
    assert "55" in row


def test_fg_show_and_preview_after_a_correction(store: Path) -> None:
    with fti.connect(store) as fs:
        fs.get_feature_group("weather", version=1).insert(
            pd.DataFrame({"origin": ["JFK"], "time_hour": [T0], "temp": [9.5]})  # corrects 1.5
        )
    out = run("fg", "show", "weather:1", "--root", str(store))
    assert "rows written  4" in out
    assert "history rows  3" in out
    assert "current rows  2" in out

    def temps(*flags: str) -> list[str]:
        out = run("fg", "preview", "weather:1", *flags, "--root", str(store))
        lines = [line for line in out.splitlines() if "JFK" in line or "LGA" in line]
        return [line.split("│")[3].strip() for line in lines]

    assert temps() == ["2.5", "9.5", "3.5"]  # corrected history, by (event time, ingestion)
    assert temps("--latest") == ["2.5", "3.5"]
    assert temps("--all") == ["1.5", "2.5", "9.5", "3.5"]
    assert temps("--include-superseded") == temps("--all")
    result = runner.invoke(app, ["fg", "preview", "weather:1", "--latest", "--all"])
    assert result.exit_code == 2
    assert "exclude each other" in result.output


def test_doctor_reports_every_part(store: Path) -> None:
    out = run("doctor", "--root", str(store))
    for part in ("offline", "online", "registry", "artifacts"):
        line = next(line for line in out.splitlines() if line.strip("│ ").startswith(part))
        assert "ok" in line
    assert "3 feature" in out


def test_doctor_fails_on_an_unreachable_backend(store: Path) -> None:
    result = runner.invoke(
        app,
        ["doctor", "--root", str(store)],
        env={"COLUMNS": "200", "FTI_REGISTRY": "postgresql://127.0.0.1:1/nothing"},
    )
    assert result.exit_code == 1
    assert "FAIL" in result.output


def _commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


ALL_COMMANDS = [(), *(path for path, _ in _commands(typer.main.get_group(app)))]


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "fti")
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    out = run(*path, "--help")
    assert "Usage:" in out
    assert "example" in out.lower(), out


def fti_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fti", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fg", "show", "nope"], "Feature group 'nope' does not exist"),
        (["fg", "show", "weather:x"], "use NAME or NAME:VERSION"),
        (["fg", "preview", "weather:1", "--online", "nokey=1"], "Unknown key column 'nokey'"),
        (["fg", "preview", "weather:1", "--online", "origin"], "use KEY=VALUE"),
    ],
)
def test_errors_print_without_traceback_and_exit_non_zero(
    store: Path,
    args: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "argv", ["fti", *args, "--root", str(store)])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code not in (0, None)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert err.startswith("error:")
    assert message in " ".join(err.split())


@pytest.mark.slow
def test_python_dash_m_fti(store: Path, tmp_path: Path) -> None:
    ok = fti_cli("fg", "list", "--root", str(store), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "weather" in ok.stdout
    bad = fti_cli("fg", "show", "nope", "--root", str(store), cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: Feature group 'nope' does not exist")
    assert "Traceback" not in bad.stderr + bad.stdout


def test_insert_with_progress_forced_on(
    fs: fti.FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FTI_PROGRESS=1 shows the bar even off a terminal; here it appears at once."""
    monkeypatch.setenv("FTI_PROGRESS", "1")
    shown: list[progress.StepProgress] = []

    @contextmanager
    def immediate(description: str, total: int) -> Iterator[progress.StepProgress]:
        bar = progress.StepProgress(description, total, delay=0.0)
        shown.append(bar)
        try:
            yield bar
        finally:
            bar.close()

    monkeypatch.setattr(ingestion, "step_progress", immediate)
    fg = fs.feature_group("p", primary_key=["k"], online=True)
    report = fg.insert(pd.DataFrame({"k": range(1000), "v": [0.5] * 1000}))
    assert report.rows == 1000
    assert shown
    assert shown[0].done == 2000  # offline rows + online rows
    assert shown[0]._bar is not None
    assert len(fg.read()) == 1000
