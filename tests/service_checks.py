"""Service checks for tests that talk to real Redis / PostgreSQL / brokers.

A plain module (not a conftest) so every test file can import it: ``from service_checks import
require_service``. Locally a missing service skips; in CI (``FTI_REQUIRE_SERVICES=1``) it fails.
"""

from __future__ import annotations

import os
import socket

import pytest

__all__ = ["require_service", "service_up"]


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
