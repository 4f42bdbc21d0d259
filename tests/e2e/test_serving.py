"""The model server over HTTP (httpx through Starlette's TestClient against the ASGI app):
predictions, vectors, auth on every route, limits, errors, metrics, logs, reload."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import fti
import serving_world
from fti.services.tokens import create_token, revoke_token
from fti.serving import create_app
from fti.serving.app import PUBLIC_PATHS
from fti.store import context_of


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[serving_world.World]:
    fs = fti.connect(tmp_path_factory.mktemp("serving") / "store")
    yield serving_world.build(fs, trips=120)
    fs.close()


@pytest.fixture
def client(world: serving_world.World) -> Iterator[TestClient]:
    app = create_app(world.fs, world.model_name)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _nullify(values: list[Any]) -> list[Any]:
    return [None if isinstance(v, float) and not math.isfinite(v) else v for v in values]


def test_predict_returns_model_predictions_over_online_features(
    world: serving_world.World, client: TestClient
) -> None:
    entities = [{"trip_id": 3}, {"trip_id": 17}, {"trip_id": 40}]
    r = client.post(
        f"/v1/models/{world.model_name}/predict",
        json={"entities": entities, "request": {"dep_hour": 9}, "return_features": True},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == world.model_name
    assert body["model_version"] == 1
    assert body["training_dataset_version"] == 1
    assert len(body["request_id"]) == 32
    assert r.headers["x-request-id"] == body["request_id"]
    # Independent path: vectors in process, the model loaded from the registry.
    vectors = world.fv.feature_vectors(
        entities, request={"dep_hour": 9}, training_dataset_version=1, format="list"
    )
    assert body["features"] == [_nullify(v) for v in vectors]
    import numpy as np

    model = world.fs.models.get(world.model_name).load()
    import pandas as pd

    X = pd.DataFrame(np.array(vectors, dtype=np.float64), columns=body["feature_names"])
    assert body["predictions"] == model.predict(X).tolist()
    assert body["probabilities"] == model.predict_proba(X)[:, 1].tolist()
    assert body["untransformed"][0] == _nullify_dict(_untransformed(world, 3, 9))


def _nullify_dict(d: dict[str, Any]) -> dict[str, Any]:
    return dict(zip(d, _nullify(list(d.values())), strict=True))


def _untransformed(world: serving_world.World, trip_id: int, dep_hour: int) -> dict[str, Any]:
    # Untransformed features: read the online rows directly and compute the on-demand value.
    trip = world.fs.get_feature_group("trips").read_online({"trip_id": trip_id})[0]
    air = world.fs.get_feature_group("airport").read_online({"origin": trip["origin"]})[0] or {}
    distance = trip["distance"]
    return {
        "distance": distance,
        "carrier": trip["carrier"],
        "a_temp": air.get("temp"),
        "a_wind": air.get("wind"),
        "a_visib": air.get("visib"),
        "per_hour": None if distance is None else distance / (dep_hour + 1),
    }


def test_vectors_route_matches_in_process_vectors(
    world: serving_world.World, client: TestClient
) -> None:
    entities = [{"trip_id": i} for i in range(0, 60, 7)]
    r = client.post(
        "/v1/feature-views/trips_view/1/vectors",
        json={"entities": entities, "request": {"dep_hour": 2}, "training_dataset_version": 1},
    )
    assert r.status_code == 200, r.text
    expected = world.fv.feature_vectors(
        entities, request={"dep_hour": 2}, training_dataset_version=1, format="list"
    )
    assert r.json()["vectors"] == [_nullify(v) for v in expected]
    assert r.json()["feature_names"][:2] == ["distance", "carrier_AA"]


def test_unknown_key_is_404_naming_it_unless_missing_allowed(
    world: serving_world.World, client: TestClient
) -> None:
    r = client.post(
        f"/v1/models/{world.model_name}/predict",
        json={"entities": [{"trip_id": 1}, {"trip_id": 999_999}], "request": {"dep_hour": 1}},
    )
    assert r.status_code == 404
    assert "999999" in r.json()["message"]
    assert "Traceback" not in r.text
    app = create_app(world.fs, world.model_name, allow_missing=True, log_predictions=False)
    with TestClient(app) as c:
        r = c.post(
            f"/v1/models/{world.model_name}/predict",
            json={"entities": [{"trip_id": 1}, {"trip_id": 999_999}], "request": {"dep_hour": 1}},
        )
    assert r.status_code == 200
    assert r.json()["missing"] == [1]
    assert len(r.json()["predictions"]) == 2


def test_wrong_model_name_and_wrong_key_type(
    world: serving_world.World, client: TestClient
) -> None:
    r = client.post("/v1/models/other/predict", json={"entities": [{"trip_id": 1}]})
    assert r.status_code == 404
    assert world.model_name in r.json()["message"]
    r = client.post(
        f"/v1/models/{world.model_name}/predict",
        json={"entities": [{"trip_id": "1"}], "request": {"dep_hour": 1}},
    )
    assert r.status_code == 422
    assert "trip_id" in r.json()["message"]
    r = client.post(
        f"/v1/models/{world.model_name}/predict",
        json={"entities": [{"origin": "JFK"}], "request": {"dep_hour": 1}},
    )
    assert r.status_code == 422
    r = client.post(f"/v1/models/{world.model_name}/predict", json={"entities": [{"trip_id": 1}]})
    assert r.status_code == 422
    assert "dep_hour" in r.json()["message"]


def test_body_limits_media_types_and_unknown_fields(
    world: serving_world.World, client: TestClient
) -> None:
    url = f"/v1/models/{world.model_name}/predict"
    big = json.dumps({"entities": [{"trip_id": 1}], "request": {"pad": "x" * (1024 * 1024)}})
    r = client.post(url, content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"] == "PayloadTooLarge"

    def chunks() -> Iterator[bytes]:
        yield b'{"entities": [{"trip_id": 1}], "request": {"pad": "'
        for _ in range(20):
            yield b"y" * 65536
        yield b'"}}'

    r = client.post(url, content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    for ctype in ("application/x-python-pickle", "text/plain", "application/octet-stream"):
        r = client.post(url, content=b"\x80\x04K\x01.", headers={"content-type": ctype})
        assert r.status_code == 415, ctype
        assert "application/json" in r.json()["message"]
    r = client.post(url, json={"entities": [{"trip_id": 1}], "requests": {}})
    assert r.status_code == 422
    assert "'requests'" in r.json()["message"]
    r = client.post(url, json={"entities": [{"trip_id": i} for i in range(1001)]})
    assert r.status_code == 422
    assert "1000" in r.json()["message"]
    r = client.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "Traceback" not in r.text


def test_internal_errors_answer_500_without_a_stack_trace(
    world: serving_world.World,
) -> None:
    from fti.serving.loading import model_loader
    from fti.serving.runtime import ModelRef

    good = model_loader(world.fs, ModelRef(world.model_name))

    def broken_predict(vectors: list[list[Any]]) -> Any:
        raise RuntimeError("secret internal detail")

    def loader() -> Any:
        from dataclasses import replace

        return replace(good(), predict=broken_predict)

    app = create_app(world.fs, world.model_name, loader=loader, log_predictions=False)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post(
            f"/v1/models/{world.model_name}/predict",
            json={"entities": [{"trip_id": 1}], "request": {"dep_hour": 1}},
        )
    assert r.status_code == 500
    assert "secret internal detail" not in r.text
    assert "Traceback" not in r.text
    assert len(r.json()["request_id"]) == 32  # the id to look for in the server log


def _fill(path: str) -> str:
    return path.replace("{name}", "trip_model").replace("{version}", "1")


def test_every_route_but_health_checks_requires_a_token(world: serving_world.World) -> None:
    app = create_app(world.fs, world.model_name, auth=True, log_predictions=False)
    checked = []
    with TestClient(app) as c:
        for route in app.routes:
            path = getattr(route, "path", None)
            methods = getattr(route, "methods", None) or set()
            assert path is not None
            for method in methods - {"HEAD"}:
                r = c.request(method, _fill(path), json={"entities": [{"trip_id": 1}]})
                if path in PUBLIC_PATHS:
                    assert r.status_code == 200, path
                else:
                    assert r.status_code == 401, (method, path, r.status_code)
                    assert r.headers["www-authenticate"] == "Bearer"
                    r = c.request(
                        method,
                        _fill(path),
                        json={"entities": [{"trip_id": 1}]},
                        headers={"authorization": "Bearer fti_nope_nope"},
                    )
                    assert r.status_code == 401
                checked.append((method, path))
    paths = {p for _, p in checked}
    assert {"/v1/models/{name}/predict", "/metrics", "/docs", "/openapi.json"} <= paths
    assert paths >= PUBLIC_PATHS


def test_token_scopes_revocation_and_constant_hash_storage(world: serving_world.World) -> None:
    ctx = context_of(world.fs)
    predict_token, info = create_token(ctx, "predict")
    admin_token, _ = create_token(ctx, "admin")
    stored = ctx.registry.get("token", info.id, 1)
    assert stored is not None
    assert predict_token not in json.dumps(stored.body)  # only the hash is stored
    app = create_app(world.fs, world.model_name, auth=True, log_predictions=False)
    body = {"entities": [{"trip_id": 1}], "request": {"dep_hour": 3}}
    url = f"/v1/models/{world.model_name}/predict"
    with TestClient(app) as c:
        auth = {"authorization": f"Bearer {predict_token}"}
        assert c.post(url, json=body, headers=auth).status_code == 200
        r = c.post("/v1/feature-views/trips_view/1/vectors", json=body, headers=auth)
        assert r.status_code == 403
        assert c.post(f"/v1/models/{world.model_name}/reload", headers=auth).status_code == 403
        tampered = predict_token[:-2] + ("AA" if not predict_token.endswith("AA") else "BB")
        bad = {"authorization": f"Bearer {tampered}"}
        assert c.post(url, json=body, headers=bad).status_code == 401
        admin = {"authorization": f"Bearer {admin_token}"}
        assert c.post(f"/v1/models/{world.model_name}/reload", headers=admin).status_code == 200
        assert c.get("/metrics", headers=admin).status_code == 200
        assert c.get("/openapi.json", headers=auth).status_code == 200
        revoke_token(ctx, info.id)
        app.state.fti.tokens._loaded_at = -1e18  # skip the 10 s refresh interval
        assert c.post(url, json=body, headers=auth).status_code == 401


def test_metrics_count_requests_latency_errors_and_queue(
    world: serving_world.World, client: TestClient
) -> None:
    url = f"/v1/models/{world.model_name}/predict"
    for _ in range(3):
        client.post(url, json={"entities": [{"trip_id": 2}], "request": {"dep_hour": 5}})
    client.post(url, json={"entities": [{"trip_id": 10**9}], "request": {"dep_hour": 5}})
    text = client.get("/metrics").text
    assert (
        'fti_requests_total{route="/v1/models/{name}/predict",method="POST",status="200"} 3' in text
    )
    assert 'status="404"} 1' in text
    assert (
        'fti_request_duration_seconds_bucket{route="/v1/models/{name}/predict",le="+Inf"} 4' in text
    )
    assert 'fti_errors_total{route="/v1/models/{name}/predict",kind="NotFoundError"} 1' in text
    assert "fti_prediction_log_queue_depth " in text
    assert "fti_predictions_total 3" in text
    assert "# TYPE fti_request_duration_seconds histogram" in text


def test_predictions_are_logged_and_read_back(world: serving_world.World, tmp_path: Path) -> None:
    app = create_app(world.fs, world.model_name)
    url = f"/v1/models/{world.model_name}/predict"
    ids = []
    with TestClient(app) as c:
        for i in range(5):
            r = c.post(
                url,
                json={
                    "entities": [{"trip_id": i}, {"trip_id": i + 50}],
                    "request": {"dep_hour": i},
                },
            )
            assert r.status_code == 200
            ids.append(r.json()["request_id"])
    # Leaving the client ran the lifespan shutdown, which flushed the writer.
    log = world.fv.read_log(model=world.model_name)
    got = log[log["request_id"].isin(ids)]
    assert len(got) == 10
    row = got[(got["request_id"] == ids[2]) & (got["position"] == 1)].iloc[0]
    assert row["trip_id"] == 52
    assert row["dep_hour"] == 2
    assert row["model_version"] == 1
    assert row["training_dataset_version"] == 1
    assert 0.0 <= row["probability"] <= 1.0
    expected = world.fv.feature_vector(
        {"trip_id": 52}, request={"dep_hour": 2}, training_dataset_version=1
    )
    assert json.loads(row["transformed"]).keys() == expected.keys()
    assert world.fv.read_log(model="another_model").empty


def test_reload_follows_the_alias(world: serving_world.World) -> None:
    from sklearn.tree import DecisionTreeClassifier

    X, y = world.td.read("train")
    mv2 = world.fs.models.register(
        world.model_name,
        DecisionTreeClassifier(max_depth=2).fit(X, y),
        training_dataset=world.td,
        input_example=X.head(2),
    )
    world.fs.models.set_alias(world.model_name, "production", 1)
    app = create_app(world.fs, f"{world.model_name}@production", log_predictions=False)
    body = {"entities": [{"trip_id": 1}], "request": {"dep_hour": 3}}
    with TestClient(app) as c:
        assert (
            c.post(f"/v1/models/{world.model_name}/predict", json=body).json()["model_version"] == 1
        )
        world.fs.models.set_alias(world.model_name, "production", mv2.version)
        r = c.post(f"/v1/models/{world.model_name}/reload")
        assert r.json() == {
            "model": world.model_name,
            "previous_version": 1,
            "model_version": mv2.version,
            "training_dataset_version": 1,
        }
        assert (
            c.post(f"/v1/models/{world.model_name}/predict", json=body).json()["model_version"]
            == mv2.version
        )


def test_health_and_docs(world: serving_world.World, client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["model"] == world.model_name
    assert "swagger" in client.get("/docs").text.lower()
    spec = client.get("/openapi.json").json()
    assert "/v1/models/{name}/predict" in spec["paths"]


def test_token_cli_prints_the_token_once_and_stores_its_hash(tmp_path: Path) -> None:
    import hashlib

    from typer.testing import CliRunner

    from fti.cli.app import app as cli

    root = str(tmp_path / "store")
    runner = CliRunner()
    result = runner.invoke(cli, ["token", "create", "--scope", "read", "--root", root])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("fti_")
    listed = runner.invoke(cli, ["token", "list", "--root", root])
    assert token not in listed.output
    assert "read" in listed.output
    fs = fti.connect(root)
    try:
        (record,) = fs._ctx.registry.records("token")
        assert record.body["sha256"] == hashlib.sha256(token.encode()).hexdigest()
        assert token not in json.dumps(record.body)
    finally:
        fs.close()
    bad = runner.invoke(cli, ["token", "create", "--scope", "root", "--root", root])
    assert bad.exit_code != 0
