"""``fti fg stats``: the merged statistics of a feature group on the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from typer.testing import CliRunner

import fti
from fti.cli.app import app

runner = CliRunner()


def make_store(root: Path) -> None:
    with fti.connect(root) as fs:
        fg = fs.feature_group("tx", version=1, primary_key=["id"], event_time="ts")
        days = [datetime(2024, 1, d, 12, tzinfo=UTC) for d in (1, 2, 3)]
        fg.insert(
            pa.table(
                {
                    "id": [1, 2, 3],
                    "ts": days,
                    "amount": [1.0, 2.0, None],
                    "country": ["US", "DE", "US"],
                }
            )
        )


def test_stats_table_json_window_and_errors(tmp_path: Path) -> None:
    make_store(tmp_path)
    env = {"COLUMNS": "200"}
    out = runner.invoke(app, ["fg", "stats", "tx:1", "--root", str(tmp_path)], env=env)
    assert out.exit_code == 0, out.output
    assert "3 rows in 1 commit(s)" in out.output
    assert "US (2)" in out.output
    args = ["fg", "stats", "tx", "--root", str(tmp_path), "--start", "2024-01-02", "--json"]
    got = json.loads(runner.invoke(app, args, env=env).output)
    assert got["rows"] == 2
    assert got["features"]["amount"] == {**got["features"]["amount"], "count": 1, "nulls": 1}
    assert got["start"] == "2024-01-02T00:00:00+00:00"
    bad = runner.invoke(app, ["fg", "stats", "tx", "--root", str(tmp_path), "--end", "soon"])
    assert bad.exit_code != 0
    assert "--end 'soon' is not an ISO date or time" in bad.output + str(bad.exception)
    v0 = runner.invoke(
        app, ["fg", "stats", "tx", "--root", str(tmp_path), "--version", "0", "--json"], env=env
    )
    assert json.loads(v0.output)["rows"] == 0
