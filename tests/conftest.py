"""Shared fixtures: a fresh embedded store per test, and service checks for integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import fti
from service_checks import create_pg_database, drop_pg_database, require_service, service_up

__all__ = ["fs", "registry_url", "require_service", "service_up"]


@pytest.fixture
def fs(tmp_path: Path) -> Iterator[fti.FeatureStore]:
    """An empty embedded feature store in a temporary folder."""
    store = fti.connect(tmp_path / "store")
    yield store
    store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty registry per test: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    require_service("PostgreSQL", "127.0.0.1", 5432)
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)
