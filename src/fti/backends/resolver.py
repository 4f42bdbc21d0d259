"""Build backends from URLs, importing each implementation (and its extra) only when used."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlparse

from fti.config import mask_url
from fti.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    from fti.backends.artifacts import ArtifactStore
    from fti.backends.offline import OfflineStore
    from fti.backends.online import OnlineStore
    from fti.backends.registry import Registry

__all__ = ["open_artifacts", "open_offline", "open_online", "open_registry"]


def _require(module: str, package: str, extra: str, purpose: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(package, extra, purpose)


def open_offline(url: str) -> OfflineStore:
    from fti.backends.offline.delta import DeltaOfflineStore

    return DeltaOfflineStore(url)


def open_online(url: str) -> OnlineStore:
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        from fti.backends.online.sqlite import SqliteOnlineStore

        return SqliteOnlineStore(url)
    if scheme in ("redis", "rediss"):
        _require("redis", "redis", "redis", "The Redis online store")
        _require("msgpack", "msgpack", "redis", "The Redis online store")
        from fti.backends.online.redis import RedisOnlineStore

        return RedisOnlineStore(url)
    raise ConfigError(f"Unknown online store URL {mask_url(url)!r}.")


def open_registry(url: str) -> Registry:
    scheme = urlparse(url).scheme
    if scheme.startswith("postgresql"):
        _require("psycopg", "psycopg", "postgres", "The PostgreSQL registry")
    from fti.backends.registry.sql import SqlRegistry

    return SqlRegistry(url)


def open_artifacts(url: str) -> ArtifactStore:
    from fti.backends.artifacts.local import LocalArtifactStore

    return LocalArtifactStore(url)
