"""Every code block of README.md runs, so the README cannot drift from the code.

``python`` blocks run in README order, in one namespace, on a fresh embedded store (``FTI_HOME``
and the current folder are a temporary directory). The README shows fragments: a block may use
a name no earlier block defined, and the names below (``PROVIDED``) supply it — tiny stand-ins
built when a block first needs them, so the README itself stays free of set-up code:

- ``df``: hourly weather rows (``origin``, ``time_hour``, ``temp``) for the quick start;
  ``gusts_df``: the same keys and times with only ``wind_gust`` (a partial insert);
- ``flights``, ``weather``: feature groups of a few flights (``flight_id``, ``origin``,
  ``carrier``, ``distance``, ``delayed``, ``dep_time``) and of the weather above;
  ``outcomes``: a snapshot group of the flights' ``arr_delay``;
- ``spine_df``: flight keys and times with their labels; ``day``, ``next_day``: a batch window;
- ``clf``: a LogisticRegression fitted on the training dataset ``td`` of an earlier block;
- ``start``, ``end``: a window around now (prediction logs); ``frame``: rows for a pipeline;
- ``train``: a training pipeline for the monolithic example; ``data/weather.csv``: a raw file.

``bash`` blocks: every ``fti ...`` command must name existing commands and options (checked by
parsing it with ``--help`` appended, so nothing runs); other programs are not checked.

A failure names the README line of the block (or command) that broke.

A block that cannot run in sequence (it demonstrates an error, or destroys what later blocks
use) may be preceded by ``<!-- readme-test: skip REASON -->`` (invisible on GitHub); the reason
is required and the skips are listed when the test runs. Prefer a block that runs.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

import fti
from fti.cli.app import app

README = Path(__file__).resolve().parents[2] / "README.md"
T0 = datetime(2013, 1, 1, tzinfo=UTC)
_FENCE = re.compile(r"^```(\w*)\s*$")
_SKIP = re.compile(r"^<!--\s*readme-test:\s*skip\b\s*(?P<reason>.*?)\s*-->\s*$")


def blocks(language: str, *, skipped: bool = False) -> list[tuple[int, str]]:
    """(line number of the first code line, code) of every fenced block in ``language``; with
    ``skipped``, of the blocks marked ``<!-- readme-test: skip REASON -->`` instead, the code
    replaced by the reason."""
    out: list[tuple[int, str]] = []
    lines = README.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        start = i + 1
        end = start
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        marker = _SKIP.match(lines[i - 1]) if i > 0 else None
        if m.group(1) == language and (marker is not None) == skipped:
            code = marker.group("reason") if marker else "\n".join(lines[start:end]) + "\n"
            out.append((start + 1, code))
        i = end + 1
    return out


# ---------------------------------------------------------------------- provided names
def _weather_rows(ns: dict[str, Any]) -> pd.DataFrame:
    hours = [T0 + timedelta(hours=h) for h in range(48)]
    return pd.DataFrame(
        {
            "origin": [o for _ in hours for o in ("JFK", "LGA", "EWR")],
            "time_hour": [t for t in hours for _ in range(3)],
            "temp": [float(i % 17) for i in range(len(hours) * 3)],
        }
    )


def _flight_rows() -> pd.DataFrame:
    n = 60
    return pd.DataFrame(
        {
            "flight_id": list(range(n)),
            "dep_time": [T0 + timedelta(hours=2 + i % 40, minutes=i) for i in range(n)],
            "origin": [("JFK", "LGA", "EWR")[i % 3] for i in range(n)],
            "carrier": [("UA", "AA", "B6", "DL")[i % 4] for i in range(n)],
            "distance": [float(80 + 37 * i % 900) for i in range(n)],
            "delayed": [int(i % 3 == 0) for i in range(n)],
        }
    )


def _flights(ns: dict[str, Any]) -> Any:
    fg = ns["fs"].feature_group(
        "flights", primary_key=["flight_id"], event_time="dep_time", online=True
    )
    fg.insert(_flight_rows())
    return fg


def _outcomes(ns: dict[str, Any]) -> Any:
    rows = _flight_rows()
    fg = ns["fs"].feature_group("outcomes", primary_key=["flight_id"])  # a snapshot group
    fg.insert(rows[["flight_id"]].assign(arr_delay=[float(i % 7) for i in range(len(rows))]))
    return fg


def _weather(ns: dict[str, Any]) -> Any:
    return ns["fs"].get_feature_group("weather", version=1)


def _spine(ns: dict[str, Any]) -> pd.DataFrame:
    return _flight_rows()[["flight_id", "dep_time", "delayed"]].head(20)


def _clf(ns: dict[str, Any]) -> Any:
    from sklearn.linear_model import LogisticRegression

    x, y = ns["td"].read("train")
    return LogisticRegression().fit(x.fillna(0), y.squeeze())


def _train(ns: dict[str, Any]) -> Any:
    @fti.training_pipeline
    def train(fs: fti.FeatureStore, days: int = 30) -> int:
        return len(fs.get_feature_group("weather", version=1).read())

    return train


def _frame(ns: dict[str, Any]) -> Any:
    return _weather_rows(ns).assign(wind_gust=1.0)  # the quick start added wind_gust


PROVIDED: dict[str, Callable[[dict[str, Any]], Any]] = {
    "df": _weather_rows,
    "flights": _flights,
    "weather": _weather,
    "outcomes": _outcomes,
    "spine_df": _spine,
    "day": lambda ns: T0 + timedelta(days=1),
    "next_day": lambda ns: T0 + timedelta(days=2),
    "clf": _clf,
    "start": lambda ns: datetime.now(UTC) - timedelta(days=1),
    "end": lambda ns: datetime.now(UTC) + timedelta(days=1),
    "frame": _frame,
    "gusts_df": lambda ns: _weather_rows(ns)[["origin", "time_hour"]].assign(wind_gust=2.5),
    "train": _train,
}


def _free_names(code: str) -> list[str]:
    """Names the block reads at its top level before (or without) binding them."""
    tree = ast.parse(code)
    bound: set[str] = set()
    free: list[str] = []
    for node in tree.body:
        # function bodies read names at call time; a provided name they use must exist by then
        for sub in ast.walk(node):
            loads = isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load)
            if loads and sub.id not in bound and sub.id not in free:
                free.append(sub.id)
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                bound.add(sub.id)
            elif isinstance(sub, ast.FunctionDef | ast.ClassDef):
                bound.add(sub.name)
            elif isinstance(sub, ast.alias):
                bound.add((sub.asname or sub.name).split(".")[0])
    return free


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FTI_HOME", str(tmp_path / "store"))
    monkeypatch.setenv("FTI_PROGRESS", "0")
    for var in ("FTI_OFFLINE", "FTI_ONLINE", "FTI_REGISTRY", "FTI_ARTIFACTS"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "data").mkdir()
    _weather_rows({}).to_csv(tmp_path / "data" / "weather.csv", index=False)
    return tmp_path


def test_readme_has_blocks() -> None:
    assert len(blocks("python")) >= 5
    assert len(blocks("bash")) >= 4
    for line, reason in blocks("python", skipped=True) + blocks("bash", skipped=True):
        assert reason, f"README.md line {line}: a readme-test skip needs a reason"
        print(f"README.md line {line}: block not run ({reason})")


def test_python_blocks_run_in_order(sandbox: Path) -> None:
    pytest.importorskip("sklearn")
    ns: dict[str, Any] = {"__name__": "readme"}
    # the store the blocks open with fti.connect() (FTI_HOME), for provided names that need it
    ns["fs"] = fti.connect()
    try:
        for line, code in blocks("python"):
            for name in _free_names(code):
                if name not in ns and name in PROVIDED:
                    ns[name] = PROVIDED[name](ns)
            try:
                exec(compile(code, f"README.md:{line}", "exec"), ns)
            except Exception as e:
                detail = "".join(traceback.format_exception(e, limit=-3))
                pytest.fail(f"README.md line {line}: the python block failed:\n{detail}")
    finally:
        for value in list(ns.values()):
            if isinstance(value, fti.FeatureStore):
                value.close()


def _fti_commands() -> list[tuple[int, list[str]]]:
    """(README line, argv after ``fti``) of every fti command in the bash blocks."""
    out = []
    for first, code in blocks("bash"):
        logical: list[tuple[int, str]] = []
        pending, pending_line = "", 0
        for offset, raw in enumerate(code.splitlines()):
            text = pending + raw
            if not pending:
                pending_line = first + offset
            if text.rstrip().endswith("\\"):
                pending = text.rstrip()[:-1] + " "
                continue
            pending = ""
            logical.append((pending_line, text))
        for line, text in logical:
            text = re.sub(r"(^|\s)#.*$", "", text)  # comments
            for part in text.split(";"):
                words = shlex.split(part.replace("[", " ").replace("]", " "))
                if words[:1] == ["fti"]:
                    out.append((line, words[1:]))
    return out


@pytest.mark.slow
def test_bash_fti_commands_parse() -> None:
    commands = _fti_commands()
    assert len(commands) >= 20
    runner = CliRunner()
    env = {**os.environ, "FTI_HOME": "/nonexistent/fti-readme-check"}
    for line, argv in commands:
        result = runner.invoke(app, [*argv, "--help"], env=env)
        assert result.exit_code == 0, (
            f"README.md line {line}: 'fti {' '.join(argv)}' does not parse:\n{result.output}"
        )
