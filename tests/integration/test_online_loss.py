"""The online store losing data under running readers: detected, reported, healed.

Full loss is a FLUSHDB on a Redis logical database of its own (13: never the shared DB 0), or
every key under the test's prefix deleted; partial loss is a DEL of some keys. Expected values
come from a plain-Python oracle over the inserted rows, not from the engine.
"""

from __future__ import annotations

import json
import os
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
from typer.testing import CliRunner

import fti
import online_loss_world as world
from fti.cli.app import app
from fti.errors import BackendUnavailableError
from fti.services.feature_groups import online_table
from fti.services.online_lookup import OnlineReader
from service_checks import require_service

pytestmark = pytest.mark.integration

FLUSH_DB = 13  # a logical database only this file flushes
TESTS = Path(__file__).resolve().parents[1]


def _redis(db: int) -> Any:
    import redis

    return redis.Redis.from_url(f"redis://127.0.0.1:6379/{db}")


def _delete_prefix(db: int, prefix: str, *, only: str = "") -> int:
    client = _redis(db)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:{only}*", count=1000))
        if keys:
            client.unlink(*keys)
        return len(keys)
    finally:
        client.close()


@pytest.fixture
def prefix() -> Iterator[str]:
    require_service("Redis", "127.0.0.1", 6379)
    p = "fti_loss_" + uuid.uuid4().hex[:12]
    yield p
    for db in (0, FLUSH_DB):
        _delete_prefix(db, p)
        _delete_prefix(db, f"{p}:_lock")


def _status(root: Path, url: str, *args: str) -> dict[str, Any]:
    env = {"FTI_ONLINE": url, "FTI_PROGRESS": "0"}
    result = CliRunner().invoke(
        app, ["online", "status", "weather:1", "--json", "--root", str(root), *args], env=env
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_flushdb_under_a_running_reader_is_detected_and_healed(prefix: str, tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:6379/{FLUSH_DB}?prefix={prefix}"
    batches = world.batches(120, 4)
    want = world.oracle(batches)
    fs = world.store_with(tmp_path / "s", url, batches)
    spec = fs.get_feature_group("weather").spec
    reader = OnlineReader(fs._ctx, spec)  # as a server holds it: never waits for a restore
    entities = [{"station": k} for k in sorted(want)]
    world.check(reader.rows(entities), want)

    client = _redis(FLUSH_DB)
    client.flushdb()  # the store lost everything (only this test's database)
    client.close()
    assert not fs._ctx.online.holds(online_table(spec))
    outcomes = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            rows = reader.rows(entities)
        except BackendUnavailableError as e:  # loud, never a wrong answer
            outcomes.append(str(e))
            time.sleep(0.05)
            continue
        world.check(rows, want)
        outcomes.append("ok")
        break
    assert outcomes[-1] == "ok", outcomes
    for message in outcomes[:-1]:
        assert "lost the data of feature group 'weather' version 1" in message
        assert "fti online rebuild weather:1" in message
    assert fs._ctx.online.holds(online_table(spec))
    assert fs._ctx.online.count(online_table(spec)) == len(want)
    fs.close()


def test_partial_and_full_loss_are_reported_and_rebuilt(prefix: str, tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:6379/0?prefix={prefix}"
    root = tmp_path / "s"
    batches = world.batches(300, 3)
    want = world.oracle(batches)
    world.store_with(root, url, batches).close()
    healthy = _status(root, url, "--exact")
    assert healthy["check"]["missing"] == 0
    assert healthy["check"]["offline_keys"] == 300

    # Partial loss: 37 keys deleted behind fti's back (as an eviction would).
    gone = sorted(want)[::8][:37]
    client = _redis(0)
    assert client.delete(*[f"{prefix}:weather_v1:r:{k}" for k in gone]) == 37
    client.close()
    exact = _status(root, url, "--exact")["check"]
    assert (exact["exact"], exact["checked"], exact["missing"]) == (True, 300, 37)
    assert exact["marker"] is True  # the marker cannot see a partial loss; the check does
    assert all(e["station"] in gone for e in exact["missing_examples"])
    sampled = _status(root, url, "--sample", "100")["check"]
    assert (sampled["exact"], sampled["checked"]) == (False, 100)
    assert 0 < sampled["missing"] < 100
    text = (
        CliRunner()
        .invoke(
            app,
            ["online", "status", "weather:1", "--sample", "100", "--root", str(root)],
            env={"FTI_ONLINE": url, "FTI_PROGRESS": "0"},
        )
        .output
    )
    assert "sampled 100 of 300 offline keys" in text
    assert "fti online rebuild weather:1" in text

    result = CliRunner().invoke(
        app,
        ["online", "rebuild", "weather:1", "--root", str(root)],
        env={"FTI_ONLINE": url, "FTI_PROGRESS": "0"},
    )
    assert result.exit_code == 0, result.output
    assert _status(root, url, "--exact")["check"]["missing"] == 0
    fs = fti.connect(root, online=url)
    fg = fs.get_feature_group("weather")
    world.check(fg.read_online([{"station": k} for k in sorted(want)]), want)

    # Full loss: every key under the prefix gone; a reader heals, status first reports it.
    assert _delete_prefix(0, prefix) > 300
    lost = _status(root, url, "--exact")
    assert lost["check"]["marker"] is False
    assert lost["check"]["missing"] == 300
    assert lost["online_keys"] == 0
    world.check(fg.read_online([{"station": k} for k in sorted(want)]), want)  # waits for the heal
    assert _status(root, url, "--exact")["check"]["missing"] == 0
    fs.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_server_answers_503_with_the_reason_while_healing_never_wrong_data(
    prefix: str, tmp_path: Path
) -> None:
    import serving_world

    url = f"redis://127.0.0.1:6379/{FLUSH_DB}?prefix={prefix}"
    root = tmp_path / "store"
    fs = fti.connect(root, online=url)
    world = serving_world.build(fs, trips=60)
    fs.close()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    env["FTI_ONLINE"] = url
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fti",
            "serve",
            "--model",
            world.model_name,
            "--port",
            str(port),
            "--root",
            str(root),
            "--log-level",
            "warning",
            "--allow-missing",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "fti serve did not become ready"
            time.sleep(0.2)
        body = {
            "entities": [{"trip_id": i} for i in world.trip_ids[:20]],
            "request": {"dep_hour": 3},
        }
        before = httpx.post(base + "/v1/models/trip_model/predict", json=body, timeout=10)
        assert before.status_code == 200, before.text
        vectors_path = "/v1/feature-views/trips_view/1/vectors"
        vectors_before = httpx.post(base + vectors_path, json=body, timeout=10).json()

        client = _redis(FLUSH_DB)
        client.flushdb()
        client.close()
        # With --allow-missing a lost store would otherwise predict on nulls: it must not.
        during = httpx.post(base + "/v1/models/trip_model/predict", json=body, timeout=10)
        if during.status_code == 200:  # the restore finished in between: then it is right
            assert during.json()["predictions"] == before.json()["predictions"]
        else:
            assert during.status_code == 503, during.text
            assert "lost the data of feature group" in during.text
        saw_not_ready = False
        deadline = time.monotonic() + 60
        while True:
            ready = httpx.get(base + "/readyz", timeout=5)
            if ready.status_code == 200:
                break
            assert ready.status_code == 503
            assert "lost the data of feature group" in " ".join(
                r["reason"] for r in ready.json()["reasons"]
            )
            saw_not_ready = True
            r = httpx.post(base + vectors_path, json=body, timeout=10)
            assert r.status_code in (200, 503), r.text
            if r.status_code == 200:
                assert r.json()["vectors"] == vectors_before["vectors"]
            assert time.monotonic() < deadline, "the server did not heal"
            time.sleep(0.1)
        assert saw_not_ready or during.status_code == 503
        after = httpx.post(base + "/v1/models/trip_model/predict", json=body, timeout=10)
        assert after.status_code == 200, after.text
        assert after.json()["predictions"] == before.json()["predictions"]
        assert (
            httpx.post(base + vectors_path, json=body, timeout=10).json()["vectors"]
            == (vectors_before["vectors"])
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
