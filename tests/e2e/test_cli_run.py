"""The pipeline commands end to end: fti run / runs / lineage / backfill / schedule / scheduler."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

import fti
from fti.cli.app import app
from fti.pipelines.runs import list_runs
from fti.store import context_of

FLOW = textwrap.dedent(
    """
    from datetime import datetime, timedelta
    from pathlib import Path

    import pandas as pd

    import fti
    from fti._internal.lineage_events import record_output

    RAW = Path(__file__).with_name("raw.csv")

    @fti.feature_pipeline
    def hourly(fs: fti.FeatureStore, start: datetime, end: datetime, temp: float = 1.0) -> int:
        fti.record_input_file(RAW)
        hours = int((end - start) / timedelta(hours=1))
        times = [start + timedelta(hours=i) for i in range(hours)]
        frame = pd.DataFrame({"origin": "JFK", "time_hour": times, "temp": temp})
        fs.feature_group("weather", primary_key=["origin"], event_time="time_hour").insert(frame)
        return hours

    @fti.training_pipeline
    def train(fs: fti.FeatureStore, name: str = "delays") -> int:
        rows = len(fs.get_feature_group("weather", version=1).read())
        record_output("model", name, 1)
        return rows

    @fti.inference_pipeline
    def crash(fs: fti.FeatureStore) -> None:
        raise RuntimeError("scoring failed on purpose")
    """
)


@pytest.fixture
def env(tmp_path: Path) -> tuple[Path, Path]:
    flow = tmp_path / "flow.py"
    flow.write_text(FLOW)
    (tmp_path / "raw.csv").write_text("origin,temp\nJFK,1.0\n")
    return flow, tmp_path / "store"


def invoke(*args: str) -> str:
    result = CliRunner(env={"COLUMNS": "250", "FTI_PROGRESS": "0"}).invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.output


def test_run_runs_and_lineage(env: tuple[Path, Path]) -> None:
    flow, root = env
    out = invoke(
        "run", f"{flow}:hourly", "--param", "temp=2.5",
        "--start", "2013-01-01T00:00:00Z", "--end", "2013-01-01T05:00:00Z", "--root", str(root),
    )  # fmt: skip
    assert "feature run" in out
    assert "succeeded" in out
    assert "wrote feature_group weather v1 (table_version=1)" in out
    assert f"read  file {(flow.parent / 'raw.csv').resolve()}" in out

    out = invoke("run", f"{flow}:train", "-p", "name=delays", "--root", str(root))
    assert "read  feature_group weather v1 (table_version=1)" in out
    assert "wrote model delays v1" in out

    with fti.connect(root) as fs:
        runs = list_runs(context_of(fs))
    assert [r.pipeline for r in runs] == ["train", "hourly"]
    assert runs[1].parameters["temp"] == 2.5

    listing = invoke("runs", "list", "--root", str(root))
    assert runs[0].id in listing
    assert runs[1].id in listing
    shown = invoke("runs", "show", runs[1].id, "--root", str(root))
    assert "start       2013-01-01T00:00:00+00:00" in shown
    assert "output      feature_group weather v1 (table_version=1)" in shown

    tree = invoke("lineage", "model", "delays:1", "--root", str(root))
    assert "raw.csv" in tree  # the model's lineage reaches the raw input file
    assert runs[1].id in tree
    downstream = invoke(
        "lineage", "fg", "weather:1", "--direction", "downstream", "--root", str(root)
    )
    assert "model delays v1" in downstream


def test_monolithic_backfill_and_failure(env: tuple[Path, Path]) -> None:
    flow, root = env
    out = invoke(
        "run", "--monolithic", f"{flow}:hourly", f"{flow}:train",
        "--start", "2013-01-01T00:00:00Z", "--end", "2013-01-01T02:00:00Z", "--root", str(root),
    )  # fmt: skip
    assert "step 1 feature hourly: succeeded" in out
    assert "step 2 training train: succeeded" in out
    assert "monolithic run" in out

    out = invoke(
        "backfill", f"{flow}:hourly", "--start", "2013-01-02T00:00:00Z",
        "--end", "2013-01-04T12:00:00Z", "--chunk", "1d", "--root", str(root),
    )  # fmt: skip
    assert "3 chunk run(s)" in out
    with fti.connect(root) as fs:
        runs = list_runs(context_of(fs))
        assert len(fs.get_feature_group("weather", version=1).read()) == 2 + 24 + 24 + 12
    assert [r.kind for r in runs] == ["feature"] * 3 + ["monolithic"]

    result = CliRunner(env={"COLUMNS": "250"}).invoke(
        app, ["run", f"{flow}:crash", "--root", str(root)]
    )
    assert result.exit_code == 1
    assert "RuntimeError: scoring failed on purpose" in result.output
    assert "fti runs show" in result.output


def test_schedule_commands(env: tuple[Path, Path]) -> None:
    flow, root = env
    out = invoke(
        "schedule", "add", "hourly_weather", f"{flow}:hourly", "--cron", "0 * * * *",
        "--param", "temp=3", "--root", str(root),
    )  # fmt: skip
    assert "Schedule hourly_weather" in out
    listing = invoke("schedule", "list", "--root", str(root))
    assert "hourly_weather" in listing
    assert "0 * * * *" in listing
    # created just now: the first tick is in the future, so nothing is due yet
    assert "0 run(s) started." in invoke("scheduler", "--once", "--root", str(root))
    assert "Removed" in invoke("schedule", "remove", "hourly_weather", "--root", str(root))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "{flow}:nope"], "has no function 'nope'"),
        (["run", "{flow}:train", "--param", "depth=3"], "Unknown parameter(s) ['depth']"),
        (["run", "{flow}:train", "--param", "depth"], "use KEY=VALUE"),
        (["run", "{flow}:train", "--monolithic"], "--monolithic takes two pipelines"),
        (["lineage", "table", "x"], "Unknown lineage kind"),
        (["runs", "show", "nope"], "Run 'nope' does not exist"),
        (["backfill", "{flow}:train", "--start", "2013-01-01T00:00:00Z", "--end",
          "2013-01-02T00:00:00Z"], "needs 'start' and 'end' parameters"),
        (["schedule", "add", "s", "{flow}:train", "--cron", "hourly"], "Invalid cron"),
    ],
)  # fmt: skip
def test_bad_input_is_a_clear_error(env: tuple[Path, Path], args: list[str], message: str) -> None:
    flow, root = env
    argv = [a.replace("{flow}", str(flow)) for a in args] + ["--root", str(root)]
    result = CliRunner().invoke(app, argv)
    assert isinstance(result.exception, fti.FtiError), result.output
    assert message in str(result.exception)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "missing.py:f"], "Pipeline file 'missing.py' does not exist"),
        (["run", "{flow}:hourly", "--start", "2013-01-01T00:00:00"], "has no timezone"),
    ],
)
def test_errors_print_without_a_traceback(
    env: tuple[Path, Path], args: list[str], message: str
) -> None:
    flow, root = env
    argv = [a.replace("{flow}", str(flow)) for a in args] + ["--root", str(root)]
    done = subprocess.run(
        [sys.executable, "-m", "fti", *argv],
        capture_output=True,
        text=True,
        cwd=flow.parent,
        env={"COLUMNS": "250", "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr
