"""Deleting a feature group on the Redis online store, with the registry on SQLite and on
PostgreSQL: its keys, files and records go; every other key, file and record stays
byte-identical."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import fti
from fti.errors import DependantsError, NameConflictError
from lifecycle_world import build, offline_files, online_rows, registry_snapshot
from service_checks import require_service

pytestmark = pytest.mark.integration
pytest.importorskip("sklearn")


@pytest.fixture
def prefix() -> Iterator[str]:
    require_service("Redis", "127.0.0.1", 6379)
    p = "fti_test_" + uuid.uuid4().hex[:12]
    yield p
    client = _redis()
    try:
        keys = list(client.scan_iter(match=f"{p}:*", count=1000))
        if keys:
            client.unlink(*keys)
    finally:
        client.close()


def _redis() -> Any:
    import redis

    return redis.Redis.from_url("redis://127.0.0.1:6379/0")


def redis_dump(prefix: str, table: str) -> dict[bytes, Any]:
    client = _redis()
    try:
        out: dict[bytes, Any] = {}
        for key in sorted(client.scan_iter(match=f"{prefix}:{table}:*", count=1000)):
            kind = client.type(key)
            out[key] = (
                client.hgetall(key)
                if kind == b"hash"
                else sorted(client.smembers(key))
                if kind == b"set"
                else client.get(key)
            )
        return out
    finally:
        client.close()


@pytest.fixture
def store(tmp_path: Path, prefix: str, registry_url: str) -> Iterator[fti.FeatureStore]:
    fs = fti.connect(
        tmp_path / "store",
        online=f"redis://127.0.0.1:6379/0?prefix={prefix}",
        registry=registry_url,
    )
    yield fs
    fs.close()


@pytest.mark.slow
def test_delete_on_redis_touches_nothing_else(store: fti.FeatureStore, prefix: str) -> None:
    w = build(store)
    keys = [{"k": "a"}, {"k": "b"}]
    assert redis_dump(prefix, "flights_v1")
    other_redis = redis_dump(prefix, "other_v1")
    other_online = online_rows(store, w.other, keys)
    other_files = offline_files(store, "other_v1")
    records = registry_snapshot(store)

    with pytest.raises(DependantsError, match="feature view 'delays' version 1"):
        store.delete_feature_group("flights", version=1)
    assert registry_snapshot(store) == records
    deleted = store.delete_feature_group("flights", version=1, force=True)

    assert deleted[-1] == "feature group 'flights' version 1"
    assert redis_dump(prefix, "flights_v1") == {}
    assert not (store.config.root / "offline" / "flights_v1").exists()
    assert redis_dump(prefix, "other_v1") == other_redis
    assert online_rows(store, w.other, keys) == other_online
    assert offline_files(store, "other_v1") == other_files
    after = registry_snapshot(store)
    other = {k: v for k, v in records.items() if k[1] == "other"}
    assert {k: v for k, v in after.items() if k[1] == "other"} == other
    retired = {k for k, v in after.items() if "retired" in v[0]}  # numbered versions' stubs
    assert {k[:2] for k in retired} == {("training_dataset", "delays_v1"), ("model", "delays")}
    assert set(after) - set(other) - retired == {("model_alias", "delays", 1)}


def test_names_differing_in_case_on_redis_and_the_registry(store: fti.FeatureStore) -> None:
    store.feature_group("Prices", primary_key=["sku"], online=True)
    with pytest.raises(NameConflictError):
        store.feature_group("prices", primary_key=["sku"], online=True)
