"""Shared fixtures: a fresh embedded store per test, and service checks for integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import fti
from s3_server import S3Server, make_bucket, start_s3_server
from service_checks import create_pg_database, drop_pg_database, require_service, service_up

__all__ = ["fs", "registry_url", "require_service", "s3_bucket", "s3_server", "service_up"]


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


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A local S3-compatible server: ``FTI_S3_ENDPOINT`` if set, else a moto_server we start."""
    yield from start_s3_server()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A new, empty bucket on the test S3 server."""
    return make_bucket(s3_server)
