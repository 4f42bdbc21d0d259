"""The streaming example as the README runs it: produce -> stream run -> features.py ->
stream backfill --events, configured only by its documented environment variables, writing only
under the store (never into the checkout or the current folder)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from service_checks import require_service

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "streaming"


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if "__pycache__" not in p.parts}


@pytest.mark.slow
def test_streaming_example_writes_only_under_the_store(tmp_path: Path) -> None:
    require_service("Redis", "127.0.0.1", 6379)
    import redis

    stream = f"fti-test-demo-{uuid.uuid4().hex[:8]}"
    store, cwd = tmp_path / "store", tmp_path / "cwd"
    cwd.mkdir()
    env = {
        **os.environ,
        "FTI_HOME": str(store),
        "FTI_DEMO_STREAM": stream,
        "FTI_DEMO_REDIS": "redis://127.0.0.1:6379/0",
        "FTI_PROGRESS": "0",
    }
    before = _files(EXAMPLE)

    def run(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, (args, out.stdout, out.stderr)
        return out.stdout

    try:
        run(str(EXAMPLE / "produce.py"), "--events", "1500", "--cards", "20")
        run("-m", "fti", "stream", "run", f"{EXAMPLE / 'card_activity.py'}:card_activity",
            "--idle-timeout", "3")  # fmt: skip
        assert "0 mismatches with the stream" in run(str(EXAMPLE / "features.py"))
        export = store / "exports" / "card_history.parquet"
        assert export.is_file()
        run("-m", "fti", "stream", "backfill", f"{EXAMPLE / 'card_activity.py'}:card_activity",
            "--events", str(export))  # fmt: skip
    finally:
        redis.Redis.from_url("redis://127.0.0.1:6379/0").delete(stream)
    assert _files(EXAMPLE) == before  # nothing written into the checkout
    assert list(cwd.iterdir()) == []  # nor into the current folder (no ./.fti, no exports)
