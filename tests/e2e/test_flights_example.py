"""The flights example, reduced (4 months, a small model), end to end on the embedded store."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

import fti

EXAMPLE = Path(__file__).parents[2] / "examples" / "flights"


@pytest.mark.slow
def test_flights_example_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    for name in ("demo", "pipelines", "features", "raw", "report", "monitoring"):
        sys.modules.pop(name, None)
    demo = importlib.import_module("demo")
    root = tmp_path / "flights"
    demo.main(["--root", str(root), "--months", "4", "--estimators", "20"])

    fs = fti.connect(root)
    mv = fs.models.get("flight_delays", alias="production")
    metrics = dict(mv.metrics)
    # a real model on real data: better than chance, and the metrics are consistent
    assert 0.55 < metrics["test_auc"] < 1.0
    assert metrics["test_rows"] > 10_000
    preds = fs.get_feature_group("flight_delay_predictions").read()
    assert len(preds) == metrics["test_rows"]
    assert preds["delay_probability"].between(0, 1).all()
    assert set(preds["model_version"]) == {mv.version}
    # the model's lineage reaches the raw input files
    files = {Path(n.name).name for n in fs.lineage(mv).upstream() if n.kind == "file"}
    assert files == {"flights.csv.zip", "weather.csv", "planes.csv"}
    # the realistic rule quarantines the raw data's 1048 mph wind speed (EWR, 2013-02-12)
    aside = fs.get_feature_group("weather").quarantined()
    assert list(aside["wind_speed"].round()) == [1048]
    assert list(aside["_fti_rules"].iloc[0]) == ["plausible_wind_speed"]
    # monitoring: every scored flight logged, outcomes for all but the last days, live AUC
    live = fs.models.performance("flight_delays", every="7D")
    assert live["predictions"].sum() == metrics["test_rows"]
    assert 0 < live["labelled"].sum() < live["predictions"].sum()
    assert live["coverage"].iloc[0] == 1.0
    assert live["coverage"].iloc[-1] < 1.0
    assert (live["auc"].dropna() > 0.5).all()
    assert (live["test_auc"] == metrics["test_auc"]).all()
    # the weather drift monitor ran once per month, each run stored
    drift = fs.monitor("weather_drift")
    assert [r["run"] for r in drift.runs()] == [1, 2, 3, 4]
    assert set(drift.history()["feature"]) == {"temp", "humid", "wind_speed", "visib", "pressure"}
    report = (root / "report.html").read_text()
    assert report.count("data:image/png;base64,") == 5
    assert "Live AUC per week" in report
    assert "Weather drift per feature" in report
    # data quality: the validation summary and the weather group's merged statistics
    assert "<h2>Data quality</h2>" in report
    assert "wind_speed" in report.split("<h2>Data quality</h2>")[1]
    stats = fs.get_feature_group("weather").statistics()
    assert f"{stats.commits} commit(s), {stats.rows:,} rows" in report
    assert f"<td>{stats['wind_speed']['count']}</td>" in report
    fs.close()
