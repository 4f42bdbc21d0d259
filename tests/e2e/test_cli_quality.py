"""``fti fg validations`` and ``fti fg quarantine`` (tables and --json)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import fti
from fti.cli.app import app

runner = CliRunner()
NOW = datetime.now(UTC)


def run(*args: str) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    with fti.connect(root) as fs:
        fg = fs.feature_group(
            "tx",
            primary_key=["tx_id"],
            event_time="ts",
            expectations=[fti.expect.between("amount", 0, 100, id="amount_range")],
            on_invalid="quarantine",
        )
        fg.insert(pd.DataFrame({"tx_id": [1, 2], "ts": [NOW] * 2, "amount": [5.0, 500.0]}))
    return root


def test_validations_table_and_json(root: Path) -> None:
    out = run("fg", "validations", "tx:1", "--root", str(root))
    assert "between(amount, 0, 100" in out
    assert "FAIL" in out
    rows = json.loads(run("fg", "validations", "tx", "--json", "--root", str(root)))
    assert len(rows) == 1
    assert rows[0]["rule"] == "amount_range"
    assert rows[0]["failed"] == 1
    assert rows[0]["table_version"] == 1
    assert rows[0]["revision"] == 1


def test_quarantine_table_and_json(root: Path) -> None:
    out = run("fg", "quarantine", "tx", "--root", str(root))
    assert "500.0" in out
    assert "amount_range" in out
    rows = json.loads(run("fg", "quarantine", "tx:1", "--json", "--root", str(root)))
    assert [r["tx_id"] for r in rows] == [2]
    assert rows[0]["_fti_rules"] == ["amount_range"]


def test_help_has_examples() -> None:
    assert "fti fg validations tx" in run("fg", "validations", "--help")
    assert "fti fg quarantine tx" in run("fg", "quarantine", "--help")
