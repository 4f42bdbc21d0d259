"""One behaviour for feature vectors: ``fv.feature_vector(s)`` in process and ``/vectors`` over
HTTP decide the training dataset the same way (the one given, else the latest) and give the
same vectors, also for a view with model-dependent transformations."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

import fti
import serving_world
from fti.serving import create_app

ENTITIES = [{"trip_id": i} for i in range(0, 60, 6)]
REQUEST = {"dep_hour": 5}
URL = "/v1/feature-views/trips_view/1/vectors"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[serving_world.World]:
    fs = fti.connect(tmp_path_factory.mktemp("vector_plan") / "store")
    yield serving_world.build(fs, trips=60, model=False)
    fs.close()


def _nullify(rows: list[list[Any]]) -> list[list[Any]]:
    # JSON has no NaN: the server sends null where the in-process vector has NaN.
    return [[None if isinstance(v, float) and not math.isfinite(v) else v for v in r] for r in rows]


def _http(client: TestClient, td_version: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"entities": ENTITIES, "request": REQUEST}
    if td_version is not None:
        body["training_dataset_version"] = td_version
    r = client.post(URL, json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _in_process(fv: Any, td_version: int | None) -> list[list[Any]]:
    vectors = fv.feature_vectors(
        ENTITIES, request=REQUEST, training_dataset_version=td_version, format="list"
    )
    return _nullify(vectors)


def test_vectors_are_the_same_in_process_and_over_http(world: serving_world.World) -> None:
    fv = world.fv
    assert fv.spec.transformations  # the case where the training dataset matters
    with TestClient(create_app(world.fs, None, log_predictions=False)) as client:
        # Without a version both take the latest training dataset (the only one: 1).
        latest = _http(client, None)
        assert latest["training_dataset_version"] == 1
        assert latest["vectors"] == _in_process(fv, None)
        explicit = _http(client, 1)
        assert explicit == latest
        assert explicit["feature_names"][:2] == ["distance", "carrier_AA"]

        # A new training dataset (other rows, so other fitted statistics) is the latest at once,
        # for both entry points; version 1 stays reachable by number.
        spine = pd.DataFrame(
            {
                "trip_id": list(range(20)),
                "ts": [serving_world.T0 + timedelta(hours=13)] * 20,
                "dep_hour": [i % 3 for i in range(20)],
            }
        )
        td2 = fv.create_training_dataset(spine=spine)
        assert td2.version == 2
        newer = _http(client, None)
        assert newer["training_dataset_version"] == 2
        assert newer["vectors"] == _in_process(fv, None) == _in_process(fv, 2)
        assert newer["vectors"] != latest["vectors"]  # the statistics did change
        assert _http(client, 2) == newer
        assert _http(client, 1)["vectors"] == latest["vectors"] == _in_process(fv, 1)


def test_unknown_training_dataset_version_is_the_same_error_on_both_paths(
    world: serving_world.World,
) -> None:
    with pytest.raises(fti.NotFoundError, match="no training dataset version 99") as e:
        world.fv.feature_vector(ENTITIES[0], request=REQUEST, training_dataset_version=99)
    with TestClient(create_app(world.fs, None, log_predictions=False)) as client:
        r = client.post(URL, json={"entities": ENTITIES, "training_dataset_version": 99})
    assert r.status_code == 404
    assert r.json()["message"] == str(e.value)
