"""Service checks for tests that talk to real Redis / PostgreSQL / brokers.

A plain module (not a conftest) so every test file can import it: ``from service_checks import
require_service``. Locally a missing service skips; in CI (``FTI_REQUIRE_SERVICES=1``) it fails.
"""

from __future__ import annotations

import os
import socket
import uuid

import pytest

__all__ = ["create_pg_database", "drop_pg_database", "require_service", "service_up"]

PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


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


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql)


def create_pg_database() -> str:
    """A new, empty PostgreSQL database with a unique name; returns its URL."""
    name = f"fti_test_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
