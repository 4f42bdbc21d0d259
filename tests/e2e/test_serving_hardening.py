"""The model server's answers to awkward input (in process, through the ASGI app): missing
features and models that cannot take them, large entities in errors, local paths, /docs."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest
from fastapi.testclient import TestClient

import fti
import serving_world
from fti.serving import create_app

LR = "lr_model"  # refuses NaN
LGBM = "lgbm_model"  # handles missing values itself


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[serving_world.World]:
    fs = fti.connect(tmp_path_factory.mktemp("hardening") / "store")
    w = serving_world.build(fs, trips=60)
    import lightgbm as lgb
    from sklearn.linear_model import LogisticRegression

    X, y = w.td.read("train")
    filled = X.fillna(0.0)
    fs.models.register(
        LR, LogisticRegression().fit(filled, y), training_dataset=w.td, input_example=filled[:2]
    )
    fs.models.register(
        LGBM,
        lgb.LGBMClassifier(n_estimators=10, min_child_samples=2, verbose=-1).fit(X, y),
        training_dataset=w.td,
        input_example=X.head(2),
    )
    yield w
    fs.close()


def _client(world: serving_world.World, model: str, **kwargs: Any) -> TestClient:
    app = create_app(world.fs, model, log_predictions=False, **kwargs)
    return TestClient(app, raise_server_exceptions=False)


def _trip_without_airport(world: serving_world.World) -> int:
    # BOS has no airport rows: the joined features of its trips are null.
    trips = world.fs.get_feature_group("trips")
    for trip_id in world.trip_ids:
        row = trips.read_online({"trip_id": trip_id})[0]
        if row is not None and row["origin"] == "BOS":
            return trip_id
    raise AssertionError("the world has no BOS trip")


def test_allow_missing_with_a_model_that_refuses_nan_is_422_naming_keys_and_features(
    world: serving_world.World,
) -> None:
    body = {"entities": [{"trip_id": 10}, {"trip_id": 99_999}], "request": {"dep_hour": 3}}
    with _client(world, LR, allow_missing=True) as c:
        r = c.post(f"/v1/models/{LR}/predict", json=body)
    assert r.status_code == 422, r.text
    message = r.json()["message"]
    assert f"Model '{LR}' version 1 cannot predict with missing values" in message
    assert "{'trip_id': 99999} (no online row, missing ['distance'" in message
    assert "'a_temp'" not in message  # imputed by the view's impute_mean: never missing
    assert "impute them in the feature view" in message


def test_null_joined_features_with_such_a_model_are_422_too(
    world: serving_world.World,
) -> None:
    trip_id = _trip_without_airport(world)
    body = {"entities": [{"trip_id": trip_id}], "request": {"dep_hour": 3}}
    with _client(world, LR) as c:
        r = c.post(f"/v1/models/{LR}/predict", json=body)
    assert r.status_code == 422, r.text
    message = r.json()["message"]
    assert f"{{'trip_id': {trip_id}}} (missing ['a_wind', 'a_visib']" in message


def test_a_model_with_its_own_missing_value_handling_predicts_on_missing_features(
    world: serving_world.World,
) -> None:
    trip_id = _trip_without_airport(world)
    entities = [{"trip_id": 99_999}, {"trip_id": trip_id}, {"trip_id": 5}]
    body = {"entities": entities, "request": {"dep_hour": 3}, "return_features": True}
    with _client(world, LGBM, allow_missing=True) as c:
        r = c.post(f"/v1/models/{LGBM}/predict", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["missing"] == [0]
    features = np.array(
        [[np.nan if v is None else v for v in row] for row in out["features"]], dtype=np.float64
    )
    assert np.isnan(features[0]).sum() >= 4  # the unknown key: its features are missing
    model = world.fs.models.get(LGBM).load()
    import pandas as pd

    X = pd.DataFrame(features, columns=out["feature_names"])
    assert out["probabilities"] == pytest.approx(model.predict_proba(X)[:, 1].tolist())
    assert out["predictions"] == model.predict(X).tolist()


def test_error_bodies_do_not_echo_large_entities(world: serving_world.World) -> None:
    # 20,000 keys (507 KB of error before), 60 keys of 4,000 characters, 1,000 bad entities.
    huge = {f"k{i}": i for i in range(20_000)}
    wide = {f"k{i}": "x" * 4_000 for i in range(60)}
    long_key = {"trip_id": "y" * 4_000}
    bad = [{"trip_id": [1]}] * 1_000
    paths = [f"/v1/models/{world.model_name}/predict", "/v1/feature-views/trips_view/1/vectors"]
    with _client(world, world.model_name) as c:
        for path in paths:
            for entities in ([huge], [wide], [long_key], bad, [long_key] * 1_000):
                r = c.post(
                    path,
                    json={"entities": entities, "training_dataset_version": 1}
                    if "vectors" in path
                    else {"entities": entities},
                )
                assert 400 <= r.status_code < 500, r.text[:300]
                assert len(r.content) < 4_096, (path, len(r.content), r.text[:300])
                # no echoed value longer than 200 characters
                assert re.search("x{201,}|y{201,}", r.text) is None, r.text[:300]


def test_a_failed_reload_names_no_local_path(world: serving_world.World, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = world.td.read("train")
    filled = X.fillna(0.0)
    world.fs.models.set_alias(LR, "live", 1)
    with _client(world, f"{LR}@live") as c:
        mv = world.fs.models.register(
            LR,
            LogisticRegression(C=0.5).fit(filled, y),
            training_dataset=world.td,
            input_example=filled[:2],
        )
        artifacts = Path(urlparse(world.fs.config.artifacts).path)
        (artifacts / mv.spec.artifact.key).unlink()  # lost: the load will fail
        world.fs.models.set_alias(LR, "live", mv.version)
        r = c.post(f"/v1/models/{LR}/reload")
        assert r.status_code == 404, r.text
        assert mv.spec.artifact.key in r.json()["message"]  # the key is fine to name
        for local in (str(world.fs.config.root), str(artifacts), tempfile.gettempdir()):
            assert local not in r.text
        # a good reload answers names and versions, nothing else
        world.fs.models.set_alias(LR, "live", 1)
        r = c.post(f"/v1/models/{LR}/reload")
        assert r.status_code == 200
        assert set(r.json()) == {
            "model",
            "previous_version",
            "model_version",
            "training_dataset_version",
        }


def test_docs_are_served_by_the_server_itself(world: serving_world.World) -> None:
    with _client(world, world.model_name) as c:
        r = c.get("/docs")
        assert r.status_code == 200
        page = r.text
        assert "https://" not in page
        assert "http://" not in page
        refs = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert "/docs/swagger-ui-bundle.js" in refs
        assert "/docs/swagger-ui.css" in refs
        for ref in refs:
            asset = c.get(ref)
            assert asset.status_code == 200, ref
            assert len(asset.content) > 0
        assert "SwaggerUIBundle" in c.get("/docs/swagger-ui-bundle.js").text
        assert c.get("/docs/other.js").status_code == 404
        assert c.get("/docs/..%2Fapp.py").status_code == 404
        assert "/v1/models/{name}/predict" in c.get("/openapi.json").json()["paths"]
