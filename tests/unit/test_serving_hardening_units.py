"""Pieces of the server's hardening, without a server: which models take missing values,
bounded echoes of input, local paths out of messages, the body deadline."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pytest

from fti._internal.previews import preview
from fti.services.model_formats import handles_missing_values
from fti.serving.limits import BodyLimitMiddleware, PathRedactor


def _fitted(model: Any) -> Any:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    return model.fit(X, y)


def _models() -> dict[str, tuple[Any, bool]]:
    import lightgbm as lgb
    import xgboost as xgb
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.impute import KNNImputer, SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    cases = [
        ("logistic regression", LogisticRegression(), False),
        ("svc", SVC(), False),
        ("gradient boosting", GradientBoostingClassifier(n_estimators=3), False),
        ("hist gradient boosting", HistGradientBoostingClassifier(max_iter=3), True),
        ("tree", DecisionTreeClassifier(max_depth=2), True),
        ("forest", RandomForestClassifier(n_estimators=3), True),
        ("imputer + linear", make_pipeline(SimpleImputer(), LogisticRegression()), True),
        ("knn imputer + linear", make_pipeline(KNNImputer(), LogisticRegression()), True),
        ("scaler + linear", make_pipeline(StandardScaler(), LogisticRegression()), False),
        ("scaler + hgb", make_pipeline(StandardScaler(), HistGradientBoostingClassifier()), True),
        # an imputer of -1 lets NaN through to a model that refuses it
        (
            "imputer of -1 + linear",
            make_pipeline(SimpleImputer(missing_values=-1), LogisticRegression()),
            False,
        ),
        ("lightgbm wrapper", lgb.LGBMClassifier(n_estimators=3, verbose=-1), True),
        ("xgboost wrapper", xgb.XGBClassifier(n_estimators=3), True),
    ]
    return {name: (model, expected) for name, model, expected in cases}


NAMES = [
    "logistic regression",
    "svc",
    "gradient boosting",
    "hist gradient boosting",
    "tree",
    "forest",
    "imputer + linear",
    "knn imputer + linear",
    "scaler + linear",
    "scaler + hgb",
    "imputer of -1 + linear",
    "lightgbm wrapper",
    "xgboost wrapper",
]


@pytest.mark.parametrize("name", NAMES)
def test_which_models_handle_missing_values(name: str) -> None:
    model, expected = _models()[name]
    if name != "imputer of -1 + linear":
        model = _fitted(model)
    assert handles_missing_values(model) is expected, name
    if expected and name != "imputer of -1 + linear":
        # The claim holds: the model predicts on a row with NaN.
        model.predict(np.array([[np.nan, 0.5, np.nan]]))


def test_boosters_and_unknown_objects() -> None:
    import lightgbm as lgb

    booster = _fitted(lgb.LGBMClassifier(n_estimators=3, verbose=-1)).booster_
    assert handles_missing_values(booster) is True

    class Custom:  # a pickled model of unknown kind: no claim, so refused
        def predict(self, X: Any) -> Any:
            return X[:, 0]

    assert handles_missing_values(Custom()) is False
    assert handles_missing_values(b"onnx bytes") is False


def test_preview_bounds_every_echo() -> None:
    huge = {f"k{i}": "v" * 5000 for i in range(20_000)}
    text = preview(huge)
    assert len(text) < 2_000
    assert "19995 more" in text
    assert len(preview("x" * 10_000)) < 250
    assert preview({"trip_id": 3}) == "{'trip_id': 3}"
    assert preview([1, 2]) == "[1, 2]"


def test_redactor_replaces_local_folders_only(tmp_path: Any) -> None:
    class Config:
        root = tmp_path / "store"
        offline = f"{tmp_path}/store/offline"
        online = "redis://127.0.0.1:6379/0"
        registry = f"sqlite:///{tmp_path}/store/registry.db"
        artifacts = f"file://{tmp_path}/elsewhere/artifacts"

    redact = PathRedactor.for_store(Config)
    text = redact(
        f"Artifact 'models/m/1/model.skops' is missing from {tmp_path}/elsewhere/artifacts. "
        f"Root {tmp_path}/store/x.db; POST to /v1/models/m/predict."
    )
    assert str(tmp_path) not in text
    assert "'models/m/1/model.skops'" in text
    assert "/v1/models/m/predict" in text
    assert redact("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert len(redact("x" * 100_000)) < 1_100


def test_a_body_that_does_not_arrive_in_time_is_408_and_closes() -> None:
    called = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope)

    sent: list[dict[str, Any]] = []

    async def run() -> None:
        chunks = iter([b'{"entities": [', b"{"])

        async def receive() -> dict[str, Any]:
            chunk = next(chunks, None)
            if chunk is None:
                await asyncio.sleep(3600)  # the client stops sending
            return {"type": "http.request", "body": chunk, "more_body": True}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        middleware = BodyLimitMiddleware(app, read_timeout=0.3)
        scope = {
            "type": "http",
            "method": "POST",
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"500")],
        }
        await asyncio.wait_for(middleware(scope, receive, send), 30)

    asyncio.run(run())
    assert called == []
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    body = json.loads(sent[1]["body"])
    assert body["error"] == "RequestTimeout"
    assert "0.3 seconds" in body["message"]
