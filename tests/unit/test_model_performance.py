"""Delayed labels and live model metrics: ``fs.models.log_outcomes`` and ``performance``.

Metrics are checked against scikit-learn (and a numpy ECE) bucket by bucket on random data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    roc_auc_score,
)
from typer.testing import CliRunner

import fti
from fti.cli.app import app
from fti.errors import ValidationError
from fti.services import prediction_logs
from fti.services.prediction_logs import LogRow

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday


@dataclass
class FakeField:
    name: str
    dtype: str


@dataclass
class FakeView:
    name: str
    version: int
    features: list[FakeField]
    labels: list[str]


def _register(fs: fti.FeatureStore, name: str, fv_version: int = 1, **kw: Any) -> Any:
    from sklearn.linear_model import LogisticRegression

    x = pd.DataFrame({"x": np.arange(10.0)})
    y = (x["x"] > 4).astype("int64")
    view = FakeView("delays_fv", fv_version, [FakeField("x", "float64")], ["delayed"])
    return fs.models.register(name, LogisticRegression().fit(x, y), feature_view=view, **kw)


def _log(
    fs: fti.FeatureStore,
    rows: list[tuple[str, datetime, int, Any, float | None]],
    *,
    model: str = "delays",
    model_version: int = 1,
    fv_version: int = 1,
) -> None:
    """rows: (request_id, logged_at, flight_id, prediction, probability)."""
    spec = prediction_logs.log_spec(fs._ctx, "delays_fv", fv_version)
    prediction_logs.append(
        fs._ctx,
        spec,
        [
            LogRow(
                rid,
                0,
                t,
                {"flight_id": k},
                {},
                {"x": 1.0},
                None,
                pred,
                model,
                model_version,
                None,
                prob,
            )
            for rid, t, k, pred, prob in rows
        ],
    )


def _ece(y: np.ndarray, p: np.ndarray) -> float:
    bins = np.minimum(np.floor(p * 10), 9)
    total = 0.0
    for b in np.unique(bins):
        m = bins == b
        total += abs(y[m].sum() - p[m].sum())
    return total / len(y)


def test_classifier_metrics_match_scikit_learn_per_bucket(fs: fti.FeatureStore) -> None:
    _register(fs, "delays", metrics={"test_auc": 0.81, "log_loss": 0.4, "auc": 0.5})
    rng = np.random.default_rng(3)
    n = 600
    times = [T0 + timedelta(hours=float(h)) for h in rng.uniform(0, 72, n)]
    # Ties in the probabilities (rounded) exercise the average ranks of the AUC.
    probs = np.round(rng.random(n), 2)
    y = (rng.random(n) < probs).astype(int)
    preds = (probs >= 0.5).astype(int)
    labelled = rng.random(n) < 0.7
    _log(fs, [(f"r{i}", times[i], i, int(preds[i]), float(probs[i])) for i in range(n)])
    out = pd.DataFrame(
        {"request_id": [f"r{i}" for i in range(n) if labelled[i]], "delayed": y[labelled]}
    )
    report = fs.models.log_outcomes("delays", out)
    assert report.rows == labelled.sum()
    assert report.unknown == []

    perf = fs.models.performance("delays", start=T0, end=T0 + timedelta(days=3), every="1D")
    assert list(perf["bucket_start"]) == [T0 + timedelta(days=d) for d in range(3)]
    day = np.array([(t - T0) // timedelta(days=1) for t in times])
    for d, row in perf.iterrows():
        m = day == d
        lm = m & labelled
        assert row["predictions"] == m.sum()
        assert row["labelled"] == lm.sum()
        assert row["coverage"] == pytest.approx(lm.sum() / m.sum(), abs=1e-12)
        assert row["auc"] == pytest.approx(roc_auc_score(y[lm], probs[lm]), abs=1e-9)
        assert row["log_loss"] == pytest.approx(log_loss(y[lm], probs[lm], labels=[0, 1]), abs=1e-9)
        assert row["accuracy"] == pytest.approx(accuracy_score(y[lm], preds[lm]), abs=1e-9)
        assert row["calibration_error"] == pytest.approx(_ece(y[lm], probs[lm]), abs=1e-9)
        assert not row["pending"]
        assert row["test_auc"] == 0.81
        assert row["test_log_loss"] == 0.4
        assert row["model_version"] == 1
    assert "mae" not in perf.columns


def test_regressor_metrics_match_scikit_learn(fs: fti.FeatureStore) -> None:
    _register(fs, "delays", metrics={"mae": 3.0})
    rng = np.random.default_rng(5)
    n = 300
    times = [T0 + timedelta(hours=float(h)) for h in rng.uniform(0, 48, n)]
    pred = rng.normal(10, 5, n)
    truth = pred + rng.normal(0, 2, n)
    _log(fs, [(f"r{i}", times[i], i, float(pred[i]), None) for i in range(n)])
    fs.models.log_outcomes(
        "delays", pd.DataFrame({"request_id": [f"r{i}" for i in range(n)], "arr_delay": truth})
    )
    perf = fs.models.performance("delays", start=T0, every="1D")
    day = np.array([(t - T0) // timedelta(days=1) for t in times])
    assert len(perf) == 2
    for d, row in perf.iterrows():
        m = day == d
        assert row["mae"] == pytest.approx(mean_absolute_error(truth[m], pred[m]), abs=1e-9)
        rmse = float(np.sqrt(mean_squared_error(truth[m], pred[m])))
        assert row["rmse"] == pytest.approx(rmse, abs=1e-9)
        assert row["test_mae"] == 3.0
    assert "auc" not in perf.columns


def test_label_delay_marks_recent_buckets_pending_and_unscored(fs: fti.FeatureStore) -> None:
    _register(fs, "delays")
    now = datetime.now(UTC)
    start = now - timedelta(days=4)
    rows = [(f"r{i}", start + timedelta(days=i, hours=12), i, 1, 0.9 - 0.1 * i) for i in range(4)]
    _log(fs, rows)
    fs.models.log_outcomes(
        "delays", pd.DataFrame({"request_id": ["r0", "r1", "r2", "r3"], "delayed": [1, 0, 1, 1]})
    )
    # Buckets end at now-3d, now-2d, now-1d and now: only the last ends within a day of now.
    perf = fs.models.performance("delays", start=start, every="1D", label_delay=timedelta(days=1))
    assert list(perf["pending"]) == [False, False, False, True]
    assert perf["accuracy"].isna().tolist() == [False, False, False, True]
    assert list(perf["predictions"]) == [1, 1, 1, 1]  # counted all the same
    assert list(perf["labelled"]) == [1, 1, 1, 1]
    unscored = fs.models.performance("delays", start=start, every="1D")
    assert not unscored["pending"].any()


def test_outcomes_by_entity_key_label_predictions_since_the_previous_outcome(
    fs: fti.FeatureStore,
) -> None:
    _register(fs, "delays")
    h = timedelta(hours=1)
    _log(
        fs,
        [
            ("a", T0 + 1 * h, 7, 1, 0.8),
            ("b", T0 + 2 * h, 7, 1, 0.7),
            ("c", T0 + 5 * h, 7, 0, 0.2),
            ("d", T0 + 9 * h, 7, 0, 0.1),  # after every outcome: stays unlabelled
            ("e", T0 + 1 * h, 8, 1, 0.6),
        ],
    )
    out = pd.DataFrame(
        {
            "flight_id": [7, 7, 8],
            "outcome_time": [T0 + 3 * h, T0 + 6 * h, T0 + 1 * h],
            "delayed": [1, 0, 1],
        }
    )
    report = fs.models.log_outcomes("delays", out)
    assert report.rows == 4
    got = fs.get_feature_group("delays_outcomes", version=1).read()
    assert dict(zip(got["request_id"], got["delayed"], strict=True)) == {
        "a": 1,
        "b": 1,
        "c": 0,
        "e": 1,
    }
    # An outcome arriving late between two stored ones relabels what it now closes.
    fs.models.log_outcomes(
        "delays",
        pd.DataFrame(
            {"flight_id": [7], "outcome_time": [T0 + h + timedelta(minutes=30)], "delayed": [0]}
        ),
    )
    got = fs.get_feature_group("delays_outcomes", version=1).read()
    assert dict(zip(got["request_id"], got["delayed"], strict=True)) == {
        "a": 0,
        "b": 1,
        "c": 0,
        "e": 1,
    }
    # A key without an earlier prediction matches nothing: an error, nothing written.
    with pytest.raises(ValidationError, match="match no logged prediction"):
        fs.models.log_outcomes(
            "delays",
            pd.DataFrame({"flight_id": [99], "outcome_time": [T0 + 3 * h], "delayed": [1]}),
        )


def test_bad_outcomes_are_refused_with_nothing_written(fs: fti.FeatureStore) -> None:
    _register(fs, "delays")
    _log(fs, [("r1", T0, 1, 1, 0.9), ("r2", T0, 2, 0, 0.1)])
    with pytest.raises(ValidationError, match=r"1 outcome\(s\) match no logged.*'nope'"):
        fs.models.log_outcomes(
            "delays", pd.DataFrame({"request_id": ["r1", "nope"], "delayed": [1, 0]})
        )
    with pytest.raises(ValidationError, match="no label column"):
        fs.models.log_outcomes("delays", pd.DataFrame({"request_id": ["r1"]}))
    with pytest.raises(ValidationError, match=r"'flight_id'.*'outcome_time'"):
        fs.models.log_outcomes("delays", pd.DataFrame({"delayed": [1]}))
    with pytest.raises(ValidationError, match="timezone-aware"):
        fs.models.log_outcomes(
            "delays",
            pd.DataFrame(
                {"request_id": ["r1"], "delayed": [1], "outcome_time": [datetime(2026, 1, 1)]}
            ),
        )
    with pytest.raises(fti.errors.NotFoundError, match="Model 'nobody' does not exist"):
        fs.models.log_outcomes("nobody", pd.DataFrame({"request_id": ["r1"], "delayed": [1]}))
    with pytest.raises(fti.errors.NotFoundError):
        fs.get_feature_group("delays_outcomes", version=1)
    # Unknown ids may be skipped explicitly, and are reported.
    report = fs.models.log_outcomes(
        "delays", pd.DataFrame({"request_id": ["r1", "nope"], "delayed": [1, 0]}), on_unknown="skip"
    )
    assert (report.rows, report.unknown) == (1, ["nope"])
    # Later outcomes must carry the same label columns.
    with pytest.raises(ValidationError, match="same label columns"):
        fs.models.log_outcomes("delays", pd.DataFrame({"request_id": ["r2"], "late": [1]}))
    # Labels that are not 0/1 cannot be scored as a classifier.
    fs.models.log_outcomes("delays", pd.DataFrame({"request_id": ["r2"], "delayed": [3]}))
    with pytest.raises(ValidationError, match=r"other than 0 and 1.*task='regressor'"):
        fs.models.performance("delays")


def test_user_groups_may_not_take_the_outcomes_suffix(fs: fti.FeatureStore) -> None:
    with pytest.raises(ValidationError, match="'_outcomes' are reserved"):
        fs.feature_group("delays_outcomes", primary_key=["k"])


def test_a_request_with_several_entities_needs_a_position(fs: fti.FeatureStore) -> None:
    _register(fs, "delays")
    spec = prediction_logs.log_spec(fs._ctx, "delays_fv", 1)
    prediction_logs.append(
        fs._ctx,
        spec,
        [
            LogRow("r1", i, T0, {"flight_id": i}, {}, {}, None, 1, "delays", 1, None, 0.7)
            for i in range(2)
        ],
    )
    with pytest.raises(ValidationError, match="'position'"):
        fs.models.log_outcomes("delays", pd.DataFrame({"request_id": ["r1"], "delayed": [1]}))
    fs.models.log_outcomes(
        "delays", pd.DataFrame({"request_id": ["r1", "r1"], "position": [0, 1], "delayed": [1, 0]})
    )
    perf = fs.models.performance("delays")
    assert (perf["labelled"][0], perf["accuracy"][0]) == (2, 0.5)


def test_a_corrected_outcome_replaces_the_first(fs: fti.FeatureStore) -> None:
    _register(fs, "delays")
    _log(fs, [("r1", T0, 1, 1, 0.9)])
    fs.models.log_outcomes("delays", pd.DataFrame({"request_id": ["r1"], "delayed": [0]}))
    fs.models.log_outcomes("delays", pd.DataFrame({"request_id": ["r1"], "delayed": [1]}))
    perf = fs.models.performance("delays")
    assert (perf["labelled"][0], perf["accuracy"][0]) == (1, 1.0)


def test_versions_read_as_one_timeline(fs: fti.FeatureStore) -> None:
    _register(fs, "delays", fv_version=1, metrics={"auc": 0.7})
    _register(fs, "delays", fv_version=2, metrics={"auc": 0.9})
    _log(fs, [("r1", T0, 1, 1, 0.9)], model_version=1, fv_version=1)
    _log(fs, [("r2", T0 + timedelta(days=1), 2, 0, 0.2)], model_version=2, fv_version=2)
    fs.models.log_outcomes("delays", pd.DataFrame({"request_id": ["r1", "r2"], "delayed": [1, 1]}))
    perf = fs.models.performance("delays", start=T0, every="1D")
    assert list(perf["model_version"]) == [1, 2]
    assert list(perf["test_auc"]) == [0.7, 0.9]
    assert list(perf["accuracy"]) == [1.0, 0.0]
    one = fs.models.performance("delays", version=2, start=T0)
    assert list(one["predictions"]) == [1]
    assert list(one["model_version"]) == [2]


def test_cli_models_performance(fs: fti.FeatureStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(fs, "delays", metrics={"auc": 0.8})
    _log(fs, [("r1", T0, 1, 1, 0.9), ("r2", T0, 2, 0, 0.4)])
    fs.models.log_outcomes("delays", pd.DataFrame({"request_id": ["r1", "r2"], "delayed": [1, 0]}))
    monkeypatch.setenv("FTI_HOME", str(fs.config.root))
    runner = CliRunner()
    result = runner.invoke(app, ["models", "performance", "delays", "--every", "7D", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows[0]["predictions"] == 2
    assert rows[0]["auc"] == 1.0
    text = runner.invoke(app, ["models", "performance", "delays"])
    assert text.exit_code == 0
    assert "auc" in text.output
    bad = runner.invoke(app, ["models", "performance", "delays", "--every", "soon"])
    # main() prints fti errors without a traceback; the runner hands the error back.
    assert isinstance(bad.exception, ValidationError)
    assert "every='soon'" in str(bad.exception)


def test_batch_predictions_are_logged_for_outcomes_and_metrics(fs: fti.FeatureStore) -> None:
    _register(fs, "delays", metrics={"test_auc": 0.7})
    scored = pd.DataFrame(
        {
            "flight_id": [1, 2, 3],
            "logged_at": [T0, T0, T0 + timedelta(days=1)],
            "prediction": [1, 0, 1],
            "probability": [0.8, 0.3, 0.6],
            "distance": [100.0, 200.0, 300.0],
        }
    )
    assert fs.models.log_predictions("delays", scored, keys=["flight_id"]) == 3
    log = prediction_logs.read(fs._ctx, "delays_fv", 1)
    assert log["distance"].tolist() == [100.0, 200.0, 300.0]
    assert log["model_version"].tolist() == [1, 1, 1]
    outcomes = pd.DataFrame(
        {
            "flight_id": [1, 2, 3],
            "outcome_time": [T0 + 2 * timedelta(days=1)] * 3,
            "delayed": [1, 1, 0],
        }
    )
    assert fs.models.log_outcomes("delays", outcomes).rows == 3
    perf = fs.models.performance("delays", start=T0, every="1D")
    assert perf["accuracy"].tolist() == [0.5, 0.0]
    assert perf["test_auc"].tolist() == [0.7, 0.7]
    with pytest.raises(ValidationError, match="'prediction'"):
        fs.models.log_predictions("delays", scored.drop(columns="prediction"), keys=["flight_id"])


def test_a_log_written_before_probabilities_were_logged_still_reads(
    fs: fti.FeatureStore,
) -> None:
    # Logs created by an earlier fti had no 'probability' column.
    from fti.definitions.fields import Field
    from fti.services import feature_groups, ingestion

    _register(fs, "delays")
    old_fields = tuple(f for f in prediction_logs.LOG_FIELDS if f.name != "probability")
    spec = feature_groups.get_or_create(
        fs._ctx,
        "delays_fv_log",
        version=1,
        primary_key=["request_id", "position"],
        event_time="logged_at",
        online=False,
        ttl=feature_groups._UNSET,
        description="",
        features=old_fields,
        generated=True,
    )
    assert all(isinstance(f, Field) for f in old_fields)
    ingestion.insert(
        fs._ctx,
        spec,
        pd.DataFrame(
            {
                "request_id": ["r1"],
                "position": pd.array([0], "int32"),
                "logged_at": [T0],
                "entity": ['{"flight_id":1}'],
                "request": ["{}"],
                "features": ["{}"],
                "transformed": ["null"],
                "prediction": ["3.5"],
                "model_name": ["delays"],
                "model_version": [1],
                "training_dataset_version": pd.array([None], "Int64"),
            }
        ),
    )
    fs.models.log_outcomes("delays", pd.DataFrame({"request_id": ["r1"], "y": [4.0]}))
    perf = fs.models.performance("delays")
    assert perf["mae"].tolist() == [0.5]
