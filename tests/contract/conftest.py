"""Backends under contract: each online store and each registry database, isolated per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from service_checks import create_pg_database, drop_pg_database, require_service

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_flush_prefix(prefix: str) -> int:
    """Delete every key under ``prefix:`` (what a Redis restart without persistence loses)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.unlink(*keys[start : start + 1000])
        return len(keys)
    finally:
        client.close()


@pytest.fixture
def redis_prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    """A key prefix nobody else uses; its keys are removed afterwards."""
    require_service("Redis", "127.0.0.1", 6379)
    prefix = "fti_test_" + uuid.uuid4().hex[:12]
    yield prefix
    redis_flush_prefix(prefix)


@pytest.fixture(scope="session")
def pg_session_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """One fresh PostgreSQL database for the whole test session, dropped at the end."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture
def pg_fresh_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db.sqlite'}"
