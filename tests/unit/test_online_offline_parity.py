"""Online/offline parity: ``feature_vector(k)`` equals the point-in-time path for the spine row
``(k, now)`` with the same transformations — 0 mismatches, nulls and NaN kept distinct."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

import fti
import serving_world
from fti.services.feature_vectors import plan_for_view


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[serving_world.World]:
    fs = fti.connect(tmp_path_factory.mktemp("parity") / "store")
    yield serving_world.build(fs, trips=400, seed=11, model=False)
    fs.close()


def _same(a: Any, b: Any) -> bool:
    """Equal values; None only equals None, NaN only equals NaN."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(b, float) and math.isnan(b):
        return False
    return bool(a == b)


def _keys_and_hours(n: int, seed: int) -> tuple[list[dict[str, int]], list[int]]:
    rng = random.Random(seed)
    keys = [{"trip_id": rng.randrange(0, 440)} for _ in range(n)]  # >= 400: unknown keys
    hours = [rng.randrange(0, 24) for _ in range(n)]
    return keys, hours


def _spine(keys: list[dict[str, int]], hours: list[int]) -> pd.DataFrame:
    now = datetime.now(UTC)
    return pd.DataFrame(
        {
            "trip_id": [k["trip_id"] for k in keys],
            "ts": [now] * len(keys),
            "dep_hour": hours,
        }
    )


def test_transformed_vectors_match_batch_data_for_1000_random_keys(
    world: serving_world.World,
) -> None:
    keys, hours = _keys_and_hours(1000, seed=1)
    online = world.fv.feature_vectors(
        keys,
        request=[{"dep_hour": h} for h in hours],
        training_dataset_version=1,
        allow_missing=True,
        format="list",
    )
    offline = world.fv.batch_data(
        spine=_spine(keys, hours), training_dataset_version=1, format="arrow"
    )
    names = offline.column_names
    rows = offline.to_pylist()
    mismatches = [
        (i, n, row[n], vec[j])
        for i, (row, vec) in enumerate(zip(rows, online, strict=True))
        for j, n in enumerate(names)
        if not _same(row[n], vec[j])
    ]
    assert mismatches == []
    # The data really exercises nulls, NaN and unknown keys.
    flat = [v for vec in online for v in vec]
    assert any(v is None for v in flat)
    assert any(isinstance(v, float) and math.isnan(v) for v in flat)
    assert any(k["trip_id"] >= 400 for k in keys)


def test_untransformed_vectors_match_training_data(world: serving_world.World) -> None:
    keys, hours = _keys_and_hours(1000, seed=2)
    plan = plan_for_view(world.fs._ctx, world.fv.spec, fitted=None)
    batch = plan.compute(keys, [{"dep_hour": h} for h in hours], allow_missing=True)
    offline = world.fv.training_data(spine=_spine(keys, hours), format="arrow")
    rows = offline.to_pylist()
    mismatches = [
        (i, n, row[n], got[n])
        for i, (row, got) in enumerate(zip(rows, batch.features, strict=True))
        for n in world.fv.features
        if not _same(row[n], got[n])
    ]
    assert mismatches == []
    assert batch.missing == [i for i, k in enumerate(keys) if k["trip_id"] >= 400]


def test_missing_keys_raise_naming_the_key_unless_allowed(world: serving_world.World) -> None:
    with pytest.raises(fti.NotFoundError, match="'trip_id': 12345"):
        world.fv.feature_vector({"trip_id": 12345}, request={"dep_hour": 1})
    vec = world.fv.feature_vector(
        {"trip_id": 12345}, request={"dep_hour": 1}, allow_missing=True, format="dict"
    )
    assert vec["a_wind"] is None
    with pytest.raises(fti.ValidationError, match="trip_id"):
        world.fv.feature_vector({"trip_id": "7"}, request={"dep_hour": 1})


def test_formats_agree(world: serving_world.World) -> None:
    keys = [{"trip_id": 5}, {"trip_id": 6}]
    req = {"dep_hour": 3}
    as_dicts = world.fv.feature_vectors(keys, request=req, training_dataset_version=1)
    as_lists = world.fv.feature_vectors(
        keys, request=req, training_dataset_version=1, format="list"
    )
    frame = world.fv.feature_vectors(keys, request=req, training_dataset_version=1, format="pandas")
    array = world.fv.feature_vectors(keys, request=req, training_dataset_version=1, format="numpy")
    assert [list(d.values()) for d in as_dicts] == as_lists
    assert list(frame.columns) == list(as_dicts[0])
    assert array.shape == (2, len(as_lists[0]))
    single = world.fv.feature_vector(
        keys[0], request=req, training_dataset_version=1, format="list"
    )
    assert single == as_lists[0]


def test_model_feature_view_is_bound_to_its_training_dataset(
    world: serving_world.World,
) -> None:
    bound = world.fv.bind(training_dataset_version=1)
    key, req = {"trip_id": 9}, {"dep_hour": 4}
    assert bound.feature_vector(key, request=req) == world.fv.feature_vector(
        key, request=req, training_dataset_version=1
    )
    with pytest.raises(fti.NotFoundError):
        world.fv.bind(training_dataset_version=99)
