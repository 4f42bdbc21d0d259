"""A local S3-compatible server (moto) for the object-storage tests.

Uses the server at ``FTI_S3_ENDPOINT`` when set (CI may start one), otherwise starts
``moto_server`` from the test venv on a free loopback port for the session. Without moto (or
when it does not come up) tests skip locally and fail under ``FTI_REQUIRE_SERVICES=1``.
Credentials are fake ones moto accepts, set in the environment (the standard AWS chain).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest

__all__ = ["S3Server", "make_bucket", "s3_env", "start_s3_server"]

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def url(self, bucket: str, prefix: str = "", **options: str) -> str:
        """``s3://bucket/prefix?endpoint=...&path_style=true`` (no credentials)."""
        settings = {"endpoint": self.endpoint, "path_style": "true", **options}
        query = "&".join(f"{k}={v}" for k, v in settings.items())
        return f"s3://{bucket}/{prefix}?{query}" if prefix else f"s3://{bucket}?{query}"


def s3_env() -> dict[str, str]:
    """Environment for subprocesses: fake credentials for moto."""
    return dict(FAKE_CREDENTIALS)


def _fail_or_skip(message: str) -> None:
    if os.environ.get("FTI_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " and FTI_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _up(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def start_s3_server() -> Iterator[S3Server]:
    """Body of the session fixture: an external server, or a moto_server we start and stop."""
    for k, v in FAKE_CREDENTIALS.items():
        os.environ.setdefault(k, v)
    external = os.environ.get("FTI_S3_ENDPOINT")
    if external:
        parts = urlparse(external)
        if not _up(parts.port or 80, parts.hostname or "127.0.0.1"):
            _fail_or_skip(f"the S3 server at FTI_S3_ENDPOINT={external} is not reachable")
        yield S3Server(external)
        return
    exe = Path(sys.executable).with_name("moto_server")
    if not exe.exists():
        found = shutil.which("moto_server")
        if found is None:
            _fail_or_skip("moto_server (pip install 'moto[server]') is not installed")
        exe = Path(str(found))
    port = _free_port()
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if _up(port) or proc.poll() is not None:
                break
            time.sleep(0.1)
        if not _up(port):
            _fail_or_skip(f"moto_server did not come up on 127.0.0.1:{port}")
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def make_bucket(server: S3Server) -> str:
    """A new, empty bucket with a unique name."""
    import boto3

    name = f"fti-test-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=name)
    return name
