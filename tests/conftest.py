"""Shared fixtures: a fresh embedded store per test, and service checks for integration tests."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import fti


@pytest.fixture
def fs(tmp_path: Path) -> Iterator[fti.FeatureStore]:
    """An empty embedded feature store in a temporary folder."""
    store = fti.connect(tmp_path / "store")
    yield store
    store.close()


def service_up(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip when a service is down, except in CI (FTI_REQUIRE_SERVICES=1), where it fails."""
    if service_up(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("FTI_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " and FTI_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)
