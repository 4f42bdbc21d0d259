"""Schema changes made by another process, with the Redis online store: a long-lived store
reads the new column through a new view, keeps serving the old view, and a column the online
store never saw (hashes have no schema) reads as null, so such a model is servable."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

import fti
from fti.definitions.fields import Field
from fti.services import feature_groups, feature_vectors
from service_checks import require_service

pytestmark = pytest.mark.integration

T = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def online_url() -> Iterator[str]:
    require_service("Redis", "127.0.0.1", 6379)
    import redis

    prefix = "fti_test_" + uuid.uuid4().hex[:12]
    yield f"redis://127.0.0.1:6379/0?prefix={prefix}"
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.unlink(*keys)
    client.close()


def test_a_long_lived_store_reads_columns_another_store_added(
    tmp_path: Path, online_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "store"
    with fti.connect(root, online=online_url) as first:
        a = first.feature_group("a", primary_key=["id"], event_time="ts", online=True)
        a.insert(pd.DataFrame({"id": [1, 2], "ts": [T, T], "x": [1.0, 2.0]}))
        fv1 = first.feature_view("v1", query=a.select(["x"]))
        assert fv1.feature_vector({"id": 1}) == {"x": 1.0}
        assert a.read_online({"id": 1}) == [{"id": 1, "ts": T, "x": 1.0}]
        with fti.connect(root, online=online_url) as other:
            b = other.get_feature_group("a")
            b.add_features({"y": "float64"})
            b.insert(pd.DataFrame({"id": [1], "ts": [T], "x": [10.0], "y": [3.0]}))
            spec = b.spec
            # A column stored in the registry only (its writer stopped before the online
            # store): Redis hashes have no schema, so it reads as null.
            feature_groups.set_columns(
                other._ctx, spec, (*spec.columns, Field("z", "float64")), reason="columns_added"
            )
        fv2 = first.feature_view("v2", query=a.select(["x", "y", "z"]))
        for _ in range(2):
            assert fv2.feature_vector({"id": 1}) == {"x": 10.0, "y": 3.0, "z": None}
            assert fv1.feature_vector({"id": 1}) == {"x": 10.0}
        monkeypatch.setattr(feature_groups, "SCHEMA_RECHECK_SECONDS", 0.0)
        assert a.read_online({"id": 1}) == [{"id": 1, "ts": T, "x": 10.0, "y": 3.0, "z": None}]
        plan = feature_vectors.plan_for_view(first._ctx, fv2.spec, fitted=None)
        assert plan.problems() == []
