"""Shared fixtures: a fresh embedded store per test, and service checks for integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import fti
from service_checks import require_service, service_up

__all__ = ["fs", "require_service", "service_up"]


@pytest.fixture
def fs(tmp_path: Path) -> Iterator[fti.FeatureStore]:
    """An empty embedded feature store in a temporary folder."""
    store = fti.connect(tmp_path / "store")
    yield store
    store.close()
