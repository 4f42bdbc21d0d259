"""The model server starts for a feature view whose labels come from an offline-only feature
group: the server reads only the groups that give model inputs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

import fti
from fti.serving import create_app

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[fti.FeatureStore]:
    fs = fti.connect(tmp_path / "store")
    yield fs
    fs.close()


def test_serve_a_model_whose_label_group_is_offline_only(store: fti.FeatureStore) -> None:
    from sklearn.tree import DecisionTreeClassifier

    users = store.feature_group("users", primary_key=["uid"], event_time="ts", online=True)
    users.insert(
        pd.DataFrame(
            {
                "uid": [1, 2, 3, 4],
                "ts": [T0 + timedelta(hours=h) for h in range(4)],
                "amount": [1.0, 5.0, 2.0, 8.0],
            }
        )
    )
    outcomes = store.feature_group("outcomes", primary_key=["uid"], event_time="ts")
    assert not outcomes.spec.online
    outcomes.insert(
        pd.DataFrame(
            {"uid": [1, 2, 3, 4], "ts": [T0 + timedelta(hours=5)] * 4, "churned": [0, 1, 0, 1]}
        )
    )
    fv = store.feature_view(
        "churn_view",
        query=users.select(["amount"]).join(outcomes.select([]), on=["uid"], prefix="o_"),
        labels=["churned"],
    )
    spine = pd.DataFrame({"uid": [1, 2, 3, 4], "ts": [T0 + timedelta(hours=6)] * 4})
    td = fv.create_training_dataset(spine=spine)
    X, y = td.read("train")
    assert list(X.columns) == ["amount"]
    assert y.tolist() == [0, 1, 0, 1]
    model = DecisionTreeClassifier(max_depth=1, random_state=0).fit(X, y)
    store.models.register("churn", model, feature_view=fv, training_dataset=td)
    app = create_app(store, "churn", log_predictions=False)
    with TestClient(app) as client:
        r = client.post(
            "/v1/models/churn/predict",
            json={"entities": [{"uid": 2}, {"uid": 3}], "return_features": True},
        )
        assert r.status_code == 200, r.text
        assert r.json()["feature_names"] == ["amount"]
        assert r.json()["predictions"] == [1, 0]
        r = client.post("/v1/feature-views/churn_view/1/vectors", json={"entities": [{"uid": 4}]})
        assert r.status_code == 200, r.text
        assert r.json()["vectors"] == [[8.0]]
