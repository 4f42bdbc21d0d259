"""The backends of one store, opened lazily, shared by every service and handle."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING

from fti.backends import resolver
from fti.config import StoreConfig

if TYPE_CHECKING:
    from fti.backends.artifacts import ArtifactStore
    from fti.backends.compute.duckdb import DuckDBEngine
    from fti.backends.offline import OfflineStore
    from fti.backends.online import OnlineStore
    from fti.backends.registry import Registry

__all__ = ["StoreContext"]


class StoreContext:
    """Config plus lazily opened backends (an online store is opened only when used).

    ``read_only=True`` is for listings that never write: the registry may then be opened
    read-only (see :func:`fti.backends.resolver.open_registry`), and writing through it fails.
    """

    def __init__(self, config: StoreConfig, *, read_only: bool = False) -> None:
        self.config = config
        self.read_only = read_only
        self.lock = threading.RLock()

    @cached_property
    def offline(self) -> OfflineStore:
        return resolver.open_offline(self.config.offline, registry_url=self.config.registry)

    @cached_property
    def online(self) -> OnlineStore:
        return resolver.open_online(self.config.online)

    @cached_property
    def registry(self) -> Registry:
        return resolver.open_registry(self.config.registry, read_only=self.read_only)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        return resolver.open_artifacts(self.config.artifacts)

    @cached_property
    def compute(self) -> DuckDBEngine:
        """The store's DuckDB (configured from ``FTI_DUCKDB_*``): every SQL pass runs on a
        cursor of it (``ctx.compute.cursor()``, ``ctx.compute.query(...)``)."""
        from fti.backends.compute.duckdb import DuckDBEngine  # duckdb loads on first use

        return DuckDBEngine()

    def close(self) -> None:
        for name in ("online", "registry", "compute"):
            backend = self.__dict__.pop(name, None)
            if backend is not None:
                backend.close()
