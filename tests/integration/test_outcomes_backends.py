"""Outcomes and live metrics with the Redis online store and the registry on SQLite and on
PostgreSQL: batch predictions logged, outcomes by key and by request id, performance, and the
outcomes group joined as labels into the next training data."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import fti
from service_checks import require_service

pytestmark = pytest.mark.integration
pytest.importorskip("sklearn")

T0 = datetime(2026, 3, 2, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def store(tmp_path: Path, registry_url: str) -> Iterator[fti.FeatureStore]:
    require_service("Redis", "127.0.0.1", 6379)
    prefix = "fti_test_" + uuid.uuid4().hex[:12]
    fs = fti.connect(
        tmp_path / "store",
        online=f"redis://127.0.0.1:6379/0?prefix={prefix}",
        registry=registry_url,
    )
    yield fs
    fs.close()
    import redis

    client: Any = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.unlink(*keys)
    finally:
        client.close()


def test_outcomes_and_live_metrics_on_redis_and_sql_registries(store: fti.FeatureStore) -> None:
    from sklearn.linear_model import LogisticRegression

    fs = store
    flights = fs.feature_group(
        "flights",
        primary_key=["flight_id"],
        event_time="ts",
        online=True,
        features={"flight_id": "int64", "ts": "timestamp", "distance": "float64"},
    )
    flights.insert(
        pd.DataFrame({"flight_id": [1, 2, 3, 4], "ts": [T0] * 4, "distance": [1.0, 2.0, 3.0, 4.0]})
    )
    fv = fs.feature_view("delays", query=flights.select(["distance"]))
    x = fv.training_data(start=T0, end=T0 + DAY)[["distance"]]
    fs.models.register(
        "delays",
        LogisticRegression().fit(x, [0, 0, 1, 1]),
        feature_view=fv,
        metrics={"test_auc": 0.9},
    )
    vectors = pd.DataFrame(fv.feature_vectors([{"flight_id": k} for k in (1, 2, 3, 4)]))
    scored = pd.DataFrame(
        {
            "flight_id": [1, 2, 3, 4],
            "logged_at": [T0 + DAY] * 4,
            "request_id": ["a", "b", "c", "d"],
            "prediction": [0, 0, 1, 1],
            "probability": [0.1, 0.4, 0.6, 0.9],
            "distance": vectors["distance"],
        }
    )
    assert fs.models.log_predictions("delays", scored, keys=["flight_id"]) == 4
    fs.models.log_outcomes("delays", pd.DataFrame({"request_id": ["a", "b"], "delayed": [0, 1]}))
    fs.models.log_outcomes(
        "delays",
        pd.DataFrame({"flight_id": [3], "outcome_time": [T0 + 2 * DAY], "delayed": [1]}),
    )
    perf = fs.models.performance("delays", start=T0 + DAY, every="1D")
    assert perf[["predictions", "labelled"]].values.tolist() == [[4, 3]]
    assert perf["accuracy"][0] == pytest.approx(2 / 3)
    assert perf["auc"][0] == 1.0
    assert perf["test_auc"][0] == 0.9

    labels = fs.get_feature_group("delays_outcomes", version=1)
    retrain = fs.feature_view(
        "delays_retrain",
        query=flights.select(["distance"]).join(labels.select(["delayed"]), on=["flight_id"]),
        labels=["delayed"],
    )
    log = fv.read_log(model="delays")
    spine = log[["flight_id", "logged_at"]].rename(columns={"logged_at": "ts"})
    td = retrain.training_data(spine=spine)
    assert td["distance"].tolist() == log["distance"].tolist()
    assert td["delayed"].tolist()[:3] == [0, 1, 1]
    assert pd.isna(td["delayed"].tolist()[3])
