"""Passwords in backend URLs never reach the screen, a log or the registry (issue 18.6).

PostgreSQL runs with trust auth and Redis without ``requirepass``, so URLs carrying a password
still work: every CLI command and a pipeline run use them, and their whole output (stdout,
stderr, logs) plus every registry record is searched for the secrets. A Redis URL that cannot
connect checks the error path too.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import fti
from service_checks import create_pg_database, drop_pg_database, require_service

pytestmark = pytest.mark.integration

PG_SECRET = "S3cretPg-" + uuid.uuid4().hex[:8]
REDIS_SECRET = "S3cretRedis-" + uuid.uuid4().hex[:8]

FLOW = textwrap.dedent(
    """
    from datetime import datetime, timedelta
    import pandas as pd
    import fti

    @fti.feature_pipeline
    def hourly(fs: fti.FeatureStore, start: datetime, end: datetime) -> None:
        times = pd.date_range(start, end, freq="1h", inclusive="left")
        frame = pd.DataFrame({"origin": "JFK", "time_hour": times, "temp": 1.0})
        fs.feature_group("weather", primary_key=["origin"], event_time="time_hour",
                         online=True).insert(frame)
    """
)


@pytest.fixture
def urls() -> Iterator[dict[str, str]]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("Redis", "127.0.0.1", 6379)
    pg = create_pg_database()
    prefix = f"mask_{uuid.uuid4().hex[:8]}"
    try:
        yield {
            "FTI_REGISTRY": pg.replace("postgres@", f"postgres:{PG_SECRET}@", 1),
            "FTI_ONLINE": f"redis://:{REDIS_SECRET}@127.0.0.1:6379/0?prefix={prefix}",
        }
    finally:
        import redis

        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        drop_pg_database(pg)


def _fti(root: Path, env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "fti", *args, "--root", str(root)],
        capture_output=True,
        text=True,
        env={**os.environ, "FTI_PROGRESS": "0", **env},
        timeout=180,
    )
    return f"$ fti {' '.join(args)} (exit {out.returncode})\n{out.stdout}\n{out.stderr}"


@pytest.mark.slow
def test_no_command_output_log_or_record_shows_a_password(
    urls: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "store"
    flow = tmp_path / "flow.py"
    flow.write_text(FLOW)
    outputs = [
        _fti(root, urls, "run", f"{flow}:hourly", "--start", "2024-01-01T00:00:00Z",
             "--end", "2024-01-01T03:00:00Z"),
        _fti(root, urls, "doctor"),
        _fti(root, urls, "doctor", "--json"),
        _fti(root, urls, "fg", "list"),
        _fti(root, urls, "fg", "show", "weather"),
        _fti(root, urls, "fg", "show", "weather", "--json"),
        _fti(root, urls, "online", "status", "weather"),
        _fti(root, urls, "online", "status", "weather", "--json"),
        _fti(root, urls, "online", "rebuild", "weather"),
        _fti(root, urls, "runs", "list"),
        _fti(root, urls, "stream", "status"),
        _fti(root, urls, "lineage", "fg", "weather:1"),
        _fti(root, urls, "fg", "show", "nope"),  # an error message
    ]  # fmt: skip
    # unreachable backends: the error messages name the URL, masked
    broken = {
        "FTI_ONLINE": f"redis://:{REDIS_SECRET}@127.0.0.1:1/0",
        "FTI_REGISTRY": urls["FTI_REGISTRY"].replace("127.0.0.1:5432", "127.0.0.1:1"),
    }
    outputs += [
        _fti(root, broken, "doctor"),
        _fti(root, broken, "fg", "list"),
        _fti(root, {**urls, "FTI_ONLINE": broken["FTI_ONLINE"]}, "online", "status", "weather"),
    ]
    text = "\n".join(outputs)
    assert "exit 0" in outputs[0], outputs[0]
    assert "***@" in text  # the URLs are shown, without their passwords
    assert "FAIL" in outputs[-3]

    # in-process: the config's repr, and anything logged while opening and using the store
    with caplog.at_level(logging.DEBUG), fti.connect(root, **_lower(urls)) as fs:
        text += repr(fs.config) + str(
            fs.get_feature_group("weather").read_online([{"origin": "JFK"}])
        )
        records = [json.dumps(r.body) for kind in ("run", "feature_group", "stream_pipeline")
                   for r in fs._ctx.registry.records(kind)]  # fmt: skip
    text += "\n".join(caplog.messages) + "\n".join(records)
    for secret in (PG_SECRET, REDIS_SECRET):
        assert secret not in text, next(o for o in outputs if secret in o)


def _lower(env: dict[str, str]) -> dict[str, str]:
    return {"registry": env["FTI_REGISTRY"], "online": env["FTI_ONLINE"]}
