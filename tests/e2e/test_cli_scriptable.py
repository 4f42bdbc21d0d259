"""A scriptable CLI: ``--json`` on every list/show/status command (stable keys, JSON only on
stdout), whole lines when piped, ``fti token create`` printing only the token, ``fti fv`` /
``fti td``, lineage naming and errors, and one-line errors instead of tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

import fti
from fti._internal.lineage_events import record_output
from fti.cli.app import app

T0 = datetime(2024, 1, 1, tzinfo=UTC)
LONG = "hourly weather at the three New York airports, " * 4  # wider than any terminal


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m fti ARGS`` in a subprocess: stdout is a pipe, as in a script."""
    return subprocess.run(
        [sys.executable, "-m", "fti", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "FTI_PROGRESS": "0", **(env or {})},
        timeout=120,
    )


def as_json(*args: str) -> Any:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, (args, result.output, result.exception)
    return json.loads(result.stdout)  # nothing but JSON on stdout


@fti.feature_pipeline
def load(fs: fti.FeatureStore, path: Path) -> None:
    fti.record_input_file(path)
    frame = pd.read_csv(path)
    frame["t"] = pd.to_datetime(frame["t"], utc=True)
    fs.feature_group("flights", primary_key=["flight"], event_time="t").insert(frame)


@fti.training_pipeline
def train(fs: fti.FeatureStore) -> None:
    fs.get_feature_group("flights", version=1).read()
    record_output("model", "other", 1)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sklearn = pytest.importorskip("sklearn.linear_model")
    tmp = tmp_path_factory.mktemp("scriptable")
    root = tmp / "store"
    raw = tmp / "flights.csv"
    with fti.connect(root) as fs:
        weather = fs.feature_group(
            "weather", primary_key=["origin"], event_time="t", online=True, description=LONG
        )
        weather.insert(pd.DataFrame({"origin": ["JFK", "LGA"], "t": [T0, T0], "temp": [1.5, 2.5]}))
        for day in range(2):  # the raw file changes between the two runs: two file versions
            rows = range(day * 8, day * 8 + 8)
            pd.DataFrame(
                {
                    "flight": list(rows),
                    "t": [T0 + timedelta(hours=i) for i in rows],
                    "distance": [float(i) for i in rows],
                    "delayed": [i % 2 for i in rows],
                }
            ).to_csv(raw, index=False)
            fti.run_pipeline(load, fs=fs, params={"path": str(raw)})
        flights = fs.get_feature_group("flights", version=1)
        fv = fs.feature_view("delays", query=flights.select(["distance"]), labels=["delayed"])
        td = fv.create_training_dataset(split={"train": 0.75, "test": 0.25}, seed=1)
        x, y = td.read("train")
        model = sklearn.LogisticRegression().fit(x, y.squeeze())
        fs.models.register("delays", model, metrics={"auc": 0.5}, feature_view=fv,
                           training_dataset=td)  # fmt: skip
        fti.run_pipeline(train, fs=fs)
    return root


@pytest.fixture(autouse=True)
def _home(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTI_HOME", str(store))
    monkeypatch.setenv("FTI_PROGRESS", "0")


def test_every_list_show_status_command_prints_json_with_stable_keys(store: Path) -> None:
    fg_list = as_json("fg", "list")
    assert [(g["name"], g["rows"]) for g in fg_list] == [("flights", 16), ("weather", 2)]
    assert set(fg_list[0]) == {
        "name", "version", "primary_key", "event_time", "online", "ttl_seconds", "description",
        "tags", "rows",
    }  # fmt: skip
    shown = as_json("fg", "show", "weather")
    assert shown["description"] == LONG
    assert shown["online_rows"] == 2
    assert [c["role"] for c in shown["columns"]] == ["key", "event time", "feature"]
    assert {"files", "size_bytes", "offline_version", "last_commit"} <= set(shown)

    fv = as_json("fv", "list")
    assert [(v["name"], v["features"], v["labels"], v["training_datasets"]) for v in fv] == [
        ("delays", ["distance"], ["delayed"], [1])
    ]
    assert as_json("fv", "show", "delays:1")["feature_groups"][0]["name"] == "flights"
    tds = as_json("td", "list")
    assert [(t["name"], t["rows"]["train"] + t["rows"]["test"]) for t in tds] == [
        ("delays_v1:1", 16)
    ]
    assert as_json("td", "show", "delays_v1:1")["table_versions"] == {"flights_v1": 2}

    models = as_json("models", "list")
    assert models[0]["training_dataset"]["feature_view"] == "delays"
    assert as_json("models", "show", "delays")["signature"]["inputs"][0]["name"] == "distance"
    runs = as_json("runs", "list")
    assert [r["pipeline"] for r in runs] == ["train", "load", "load"]
    assert as_json("runs", "show", runs[0]["id"])["code_version"]
    assert as_json("schedule", "list") == []
    assert isinstance(as_json("token", "list"), list)
    assert as_json("online", "status", "weather")["online_keys"] == 2
    assert as_json("stream", "status") == []
    doctor = as_json("doctor")
    assert doctor["ok"] is True
    assert [p["part"] for p in doctor["parts"]] == ["offline", "online", "registry", "artifacts"]
    lineage = as_json("lineage", "model", "delays:1")
    assert lineage["root"] == {"kind": "model", "name": "delays", "version": 1}
    assert {"kind": "training_dataset", "name": "delays_v1", "version": 1} in lineage["upstream"]


def test_piped_tables_are_not_cut(store: Path) -> None:
    out = cli("fg", "list")
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if "weather" in x)
    assert LONG.strip() in line  # one line, nothing wrapped or cut with "…"


@pytest.mark.slow
def test_token_create_prints_only_the_token_and_scopes_repeat(store: Path) -> None:
    out = cli("token", "create", "--scope", "predict", "--scope", "read")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("\n") == 1
    token = out.stdout.strip()
    assert token.startswith("fti_")
    assert "shown only now" in out.stderr
    assert token not in out.stderr
    listed = as_json("token", "list")
    assert ["predict", "read"] in [t["scopes"] for t in listed]

    from fti.errors import AuthError
    from fti.serving.auth import TokenStore
    from fti.store import context_of

    with fti.connect(store) as fs:
        tokens = TokenStore(context_of(fs))
        assert tokens.check(f"Bearer {token}", "read").scope == "predict read"
        assert tokens.check(f"Bearer {token}", "predict")
        with pytest.raises(AuthError, match="--scope read"):  # the scope the route needs
            tokens.check(None, "read")


def test_unknown_keys_error_names_the_servers_allow_missing_flag(store: Path) -> None:
    with fti.connect(store) as fs:
        fv = fs.feature_view(
            "by_origin", query=fs.get_feature_group("weather", version=1).select(["temp"])
        )
        with pytest.raises(fti.NotFoundError, match="fti serve --allow-missing"):
            fv.feature_vector({"origin": "XXX"})


@pytest.mark.slow
def test_lineage_names_and_errors(store: Path) -> None:
    unknown = cli("lineage", "model", "nope:1")
    assert unknown.returncode != 0
    assert "Traceback" not in unknown.stderr
    assert "No model 'nope' version 1" in unknown.stderr
    assert cli("lineage", "fg", "weather:7").returncode != 0
    assert cli("lineage", "fg", "weather:1").returncode == 0  # exists, nothing recorded yet

    shown = cli("models", "show", "delays:1").stdout
    tree = cli("lineage", "model", "delays:1").stdout
    assert "delays_v1 v1" in shown  # the same training dataset name in both
    assert "training_dataset delays_v1 v1" in tree
    raw = next(x for x in tree.splitlines() if "flights.csv" in x)
    assert tree.count("flights.csv") == 1
    assert "(2 versions)" in raw  # the two runs read two different contents

    fv = cli("lineage", "fv", "delays:1", "--direction", "downstream").stdout
    assert "training_dataset delays_v1 v1" in fv
    assert "model delays v1" in fv
    data = json.loads(cli("lineage", "fv", "delays:1", "--json").stdout)
    assert {"kind": "model", "name": "delays", "version": 1} in data["downstream"]


def test_stream_backfill_with_a_missing_events_file_is_one_line(tmp_path: Path) -> None:
    out = cli(
        "stream", "backfill", "examples/streaming/card_activity.py:card_activity",
        "--events", str(tmp_path / "missing.parquet"),
    )  # fmt: skip
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = [x for x in out.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, out.stderr
    assert "missing.parquet" in lines[0]
    assert "does not exist" in lines[0]


@pytest.mark.slow
def test_backfill_chunk_accepts_calendar_months(tmp_path: Path) -> None:
    flow = tmp_path / "flow.py"
    flow.write_text(
        textwrap.dedent(
            """
            from datetime import datetime
            import fti

            @fti.feature_pipeline
            def monthly(fs: fti.FeatureStore, start: datetime, end: datetime) -> None:
                pass
            """
        )
    )
    out = cli(
        "backfill", f"{flow}:monthly", "--start", "2024-01-31T00:00:00Z",
        "--end", "2024-05-01T00:00:00Z", "--chunk", "1mo", "--root", str(tmp_path / "s"),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "4 chunk run(s)" in out.stdout
    assert "2024-01-31T00:00:00+00:00 .. 2024-02-29T00:00:00+00:00" in out.stdout
    assert "2024-04-30T00:00:00+00:00 .. 2024-05-01T00:00:00+00:00" in out.stdout
