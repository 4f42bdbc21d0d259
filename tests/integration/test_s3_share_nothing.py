"""Nothing local by accident: a feature pipeline, a training pipeline, batch inference and
``fti serve`` run as separate processes, each in its own empty working directory, sharing only
URLs (S3 + Redis + PostgreSQL). They produce the same results as the same processes on one
embedded store, and none of them writes outside its own folder.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from s3_server import S3Server
from service_checks import create_pg_database, drop_pg_database, require_service

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TESTS = Path(__file__).resolve().parents[1]
STEPS = ("feature", "training", "batch")
ENTITIES = [{"ride_id": i} for i in (0, 5, 17, 120, 239)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(work: Path, code: Path, store: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTI_")}
    src = os.environ.get("PYTHONPATH", "")
    env.update(
        PYTHONPATH=os.pathsep.join([str(code), src]),
        PYTHONDONTWRITEBYTECODE="1",
        HOME=str(work),
        TMPDIR=str(work / "tmp"),
        **store,
    )
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    return env


def _snapshot(root: Path, skip: set[Path]) -> dict[str, float]:
    out = {}
    for path in root.rglob("*"):
        if any(path == s or s in path.parents for s in skip):
            continue
        out[str(path)] = path.stat().st_mtime if path.is_file() else 0.0
    return out


def _serve(work: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fti", "serve", "--model", "rides_model", "--port", str(port)],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"fti serve exited with {proc.returncode}: {proc.stderr}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("fti serve did not become ready")
            time.sleep(0.2)
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/models/rides_model/predict",
            json={"entities": ENTITIES},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        return [{"predictions": r.json()["predictions"]}]
    finally:
        proc.terminate()  # SIGTERM: the server flushes its prediction log and exits
        proc.wait(timeout=60)


def _run_system(base: Path, code: Path, store: dict[str, str]) -> dict[str, Any]:
    """Each step in a fresh, empty working directory of its own; returns their outputs."""
    results: dict[str, Any] = {}
    for step in STEPS:
        work = base / step
        work.mkdir(parents=True)
        out = subprocess.run(
            [sys.executable, "-m", "share_nothing_steps", step],
            cwd=work,
            env=_env(work, code, store),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        results[step] = json.loads(out.stdout.strip().splitlines()[-1])
    work = base / "serve"
    work.mkdir(parents=True)
    results["serve"] = _serve(work, _env(work, code, store))
    return results


@pytest.fixture
def shared_urls(s3_server: S3Server, s3_bucket: str) -> Iterator[dict[str, str]]:
    require_service("Redis", "127.0.0.1", 6379)
    require_service("PostgreSQL", "127.0.0.1", 5432)
    pg = create_pg_database()
    prefix = f"fti_share_{uuid.uuid4().hex[:10]}"
    try:
        yield {
            "FTI_OFFLINE": s3_server.url(s3_bucket, "shared/offline"),
            "FTI_ARTIFACTS": s3_server.url(s3_bucket, "shared/artifacts"),
            "FTI_ONLINE": f"redis://127.0.0.1:6379/0?prefix={prefix}",
            "FTI_REGISTRY": pg,
        }
    finally:
        drop_pg_database(pg)
        import redis

        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.unlink(*keys)
        client.close()


def test_processes_sharing_only_urls_match_the_embedded_store(
    tmp_path: Path, shared_urls: dict[str, str]
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    shutil.copy(TESTS / "share_nothing_steps.py", code / "share_nothing_steps.py")

    embedded = _run_system(tmp_path / "embedded", code, {"FTI_HOME": str(tmp_path / "local")})

    shared_base = tmp_path / "shared"
    before = _snapshot(tmp_path, {shared_base})
    shared = _run_system(shared_base, code, shared_urls)
    after = _snapshot(tmp_path, {shared_base})

    assert (
        shared["feature"]
        == embedded["feature"]
        # 241 rows written, one a correction: fg.read() is the corrected history
        == {"status": "succeeded", "rows": 240, "version": 3}
    )
    assert shared["training"] == embedded["training"]
    assert shared["batch"] == embedded["batch"]
    assert shared["batch"]["rows"] > 0
    assert shared["serve"] == embedded["serve"]
    assert len(shared["serve"][0]["predictions"]) == len(ENTITIES)

    # Nobody wrote outside its own folder (code, the embedded run and the test's files alike).
    assert after == before
    # And inside its own folder nothing of the store: no tables, files, databases. The one
    # exception is by design: the model server's prediction-log spool (<root>/spool), a local
    # buffer its committer empties into the shared log group (and that a restart drains).
    for step in (*STEPS, "serve"):
        work = shared_base / step
        stray = [
            str(p.relative_to(work))
            for p in work.rglob("*")
            if p.is_file()
            and p.relative_to(work).parts[0] != "tmp"
            and not (step == "serve" and p.relative_to(work).parts[:2] == (".fti", "spool"))
        ]
        assert stray == [], f"{step} wrote local files: {stray}"

    # The server's prediction log went to the shared store too.
    import fti

    urls = {k.removeprefix("FTI_").lower(): v for k, v in shared_urls.items()}
    with fti.connect(tmp_path / "checker", **urls) as fs:
        log = fs.get_feature_view("rides_fv", version=1).read_log()
        assert sorted(log["ride_id"].tolist()) == sorted(e["ride_id"] for e in ENTITIES)
