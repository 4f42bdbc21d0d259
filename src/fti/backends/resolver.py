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


def open_offline(url: str, *, registry_url: str | None = None) -> OfflineStore:
    """The Delta offline store at ``url``; on ``s3://`` with ``commit_lock=registry``, every
    commit holds a lock in the registry at ``registry_url``."""
    from fti._internal.s3_location import S3Location, is_s3
    from fti.backends.offline.delta import DeltaOfflineStore

    if is_s3(url) and S3Location.parse(url).commit_lock == "registry":
        if registry_url is None:
            raise ConfigError(
                f"The offline store {url!r} asks for commit_lock=registry but no registry URL "
                "was given. Pass one or use commit_lock=conditional."
            )
        if urlparse(registry_url).scheme.startswith("postgresql"):
            _require("psycopg", "psycopg", "postgres", "The PostgreSQL commit lock")
        from fti.backends.registry.commit_lock import SqlCommitLock

        return DeltaOfflineStore(url, commit_lock=SqlCommitLock(registry_url))
    return DeltaOfflineStore(url)


def open_online(url: str) -> OnlineStore:
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        from fti.backends.online.sqlite import SqliteOnlineStore

        return SqliteOnlineStore(url)
    if scheme in ("redis", "rediss"):
        _require("redis", "redis", "redis", "The Redis online store")
        from fti.backends.online.redis import RedisOnlineStore

        return RedisOnlineStore(url)
    raise ConfigError(f"Unknown online store URL {mask_url(url)!r}.")


def open_registry(url: str, *, read_only: bool = False) -> Registry:
    """The registry at ``url``. ``read_only``: the caller only reads, so an SQLite file at the
    schema head is read through ``sqlite3`` without importing SQLAlchemy (what keeps ``fti fg
    list`` fast); anything else opens the full registry as usual."""
    scheme = urlparse(url).scheme
    if read_only and scheme == "sqlite":
        from fti.backends.registry.sqlite_readonly import SqliteReadonlyRegistry

        reader = SqliteReadonlyRegistry.open_at_head(url)
        if reader is not None:
            return reader
    if scheme.startswith("postgresql"):
        _require("psycopg", "psycopg", "postgres", "The PostgreSQL registry")
    from fti.backends.registry.sql import SqlRegistry

    return SqlRegistry(url)


def open_artifacts(url: str) -> ArtifactStore:
    if urlparse(url).scheme == "s3":
        _require("boto3", "boto3", "s3", "The S3 artifact store")
        from fti.backends.artifacts.s3 import S3ArtifactStore

        return S3ArtifactStore(url)
    from fti.backends.artifacts.local import LocalArtifactStore

    return LocalArtifactStore(url)
