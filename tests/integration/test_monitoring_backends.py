"""Drift monitors on the SQLite and PostgreSQL registries: monitors, runs and history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fti

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MID = T0 + timedelta(days=10)


def test_monitor_runs_and_history(tmp_path: Path, registry_url: str) -> None:
    rng = np.random.default_rng(0)
    n = 1_000
    df = pd.DataFrame(
        {
            "id": np.arange(2 * n),
            "t": [T0 + timedelta(days=10 * i / n) for i in range(2 * n)],
            "amount": np.r_[rng.normal(0, 1, n), rng.normal(2, 1, n)],
        }
    )
    with fti.connect(tmp_path / "store", registry=registry_url) as fs:
        fg = fs.feature_group("tx", primary_key=["id"], event_time="t")
        fg.insert(df)
        mon = fs.monitor(
            "tx_drift",
            feature_group=fg,
            features=["amount"],
            reference=fti.window(end=MID),
            detection=fti.window(start=MID),
            schedule="0 * * * *",
        )
        assert mon.run()["drifted"] == ["amount"]
        mon.run()
    with fti.connect(tmp_path / "store", registry=registry_url) as fs:
        assert [m.name for m in fs.monitors()] == ["tx_drift"]
        assert list(fs.monitor("tx_drift").history()["run"]) == [1, 2]
