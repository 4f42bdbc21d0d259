"""The skew check as a monitor (``metric="skew"``): runs are stored, a clean store is no alert,
values corrupted online for N keys are exactly N findings, the webhook gets the alert and
``fti monitor run`` exits 1; bad definitions are refused and store nothing."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import fti
import serving_world
from fti.cli.app import app
from fti.services import feature_groups, materialization
from fti.services.ingestion import next_sequence
from fti.serving import create_app
from fti.store import context_of
from service_checks import create_pg_database, drop_pg_database, require_service

BAD_KEYS = 23


@pytest.fixture(params=["embedded", pytest.param("servers", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """The store's root and its backends (env for the CLI): embedded, then Redis (online) +
    PostgreSQL (registry)."""
    if request.param == "embedded":
        yield tmp_path / "store", {}
        return
    require_service("Redis", "127.0.0.1", 6379)
    import redis

    prefix = "fti_test_skewmon_" + uuid.uuid4().hex[:12]
    registry = create_pg_database()
    env = {"FTI_ONLINE": f"redis://127.0.0.1:6379/0?prefix={prefix}", "FTI_REGISTRY": registry}
    try:
        yield tmp_path / "store", env
    finally:
        drop_pg_database(registry)
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.unlink(*keys)
        client.close()


@pytest.fixture
def hook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts", received
    server.shutdown()
    server.server_close()


def _serve(world: serving_world.World, trip_ids: list[int]) -> None:
    with TestClient(create_app(world.fs, world.model_name)) as c:
        for n in range(0, len(trip_ids), 10):
            r = c.post(
                f"/v1/models/{world.model_name}/predict",
                json={
                    "entities": [{"trip_id": t} for t in trip_ids[n : n + 10]],
                    "request": {"dep_hour": n % 24},
                },
            )
            assert r.status_code == 200, r.text


def _corrupt_online(world: serving_world.World, trip_ids: list[int]) -> None:
    """Wrong distances for ``trip_ids`` in the online store only (a newer ingestion order)."""
    fg = world.fs.get_feature_group("trips", version=1)
    rows = fg.read(latest=True, format="arrow")
    rows = rows.filter(pc.is_in(rows["trip_id"], pa.array(trip_ids, pa.int64())))
    i = rows.schema.get_field_index("distance")
    rows = rows.set_column(i, "distance", pc.add(rows["distance"], 1.0))
    seq = next_sequence(rows.num_rows)
    rows = rows.append_column("_fti_seq", pa.array(range(seq, seq + rows.num_rows), pa.int64()))
    ctx = context_of(world.fs)
    ctx.online.upsert(
        feature_groups.online_table(fg.spec),
        materialization.canonical_batch(fg.spec, rows),
        version=None,
    )


def test_skew_monitor_finds_exactly_the_corrupted_keys(
    store: tuple[Path, dict[str, str]],
    hook: tuple[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, received = hook
    root, env = store
    for k, v in env.items():  # the CLI below opens the same backends
        monkeypatch.setenv(k, v)
    fs = fti.connect(root)
    world = serving_world.build(fs, trips=200)
    _serve(world, world.trip_ids)
    mon = fs.monitor(
        "trips_skew",
        model=world.model_name,
        metric="skew",
        features=["distance", "carrier"],
        detection=fti.window(last=timedelta(hours=1)),
        webhook=url,
    )
    clean = mon.run()
    assert not clean["alert"]
    assert clean["skew"]["checked"] == len(world.trip_ids)
    assert clean["skew"]["findings_total"] == 0
    assert {f["feature"]: f["value"] for f in clean["features"]} == {
        "distance": 0.0,
        "carrier": 0.0,
    }
    assert received == []

    with_distance = fs.get_feature_group("trips", version=1).read(latest=True)
    bad = sorted(with_distance.dropna(subset=["distance"])["trip_id"].tolist()[:BAD_KEYS])
    _corrupt_online(world, bad)
    _serve(world, world.trip_ids)
    run = mon.run()
    assert run["alert"]
    assert run["drifted"] == ["distance"]
    assert run["skew"]["checked"] == 2 * len(world.trip_ids)
    assert run["skew"]["findings_total"] == BAD_KEYS
    assert run["skew"]["requests"] == BAD_KEYS
    found = run["skew"]["findings"]
    assert {f["status"] for f in found} == {"mismatch"}
    by_feature = {f["feature"]: f for f in run["features"]}
    assert by_feature["distance"]["mismatch"] == BAD_KEYS
    assert by_feature["distance"]["value"] == pytest.approx(BAD_KEYS / (2 * len(world.trip_ids)))
    assert by_feature["carrier"]["mismatch"] == 0
    assert not by_feature["carrier"]["drifted"]
    # the webhook got the alert, typed as skew, with the findings
    assert run["webhook"]["delivered"] is True
    assert received[0]["type"] == "fti.skew_alert"
    assert received[0]["drifted"] == ["distance"]
    assert received[0]["skew"]["findings_total"] == BAD_KEYS
    # every run is stored; history has one row per run and feature
    assert [r["run"] for r in mon.runs()] == [1, 2]
    history = mon.history()
    assert list(history["drifted"]) == [False, False, True, False]
    # a window of the first serving only: clean again
    before = datetime.fromisoformat(run["at"]) - timedelta(days=1)
    assert fs.monitor("old", model=world.model_name, metric="skew",
                      detection=fti.window(end=before)).run()["skew"]["checked"] == 0  # fmt: skip

    # the CLI: exit 1 on findings, the state in list
    cli = CliRunner().invoke(app, ["monitor", "run", "trips_skew", "--root", str(root)])
    assert cli.exit_code == 1, cli.stdout
    assert "mismatch" in cli.stdout
    listed = CliRunner().invoke(app, ["monitor", "list", "--json", "--root", str(root)])
    state = {m["name"]: m for m in json.loads(listed.stdout)}["trips_skew"]
    assert state["state"] == "ALERT: distance"
    assert state["source"] == f"model:{world.model_name}:*"
    shown = CliRunner().invoke(app, ["monitor", "show", "trips_skew", "--root", str(root)])
    assert shown.exit_code == 0, shown.stdout
    fs.close()


def test_skew_monitor_defaults_and_bad_definitions(tmp_path: Path) -> None:
    fs = fti.connect(tmp_path / "store")
    world = serving_world.build(fs, trips=50)
    day = fti.window(last=timedelta(days=1))
    mon = fs.monitor("s", model=world.model_name, metric="skew", detection=day)
    assert list(mon.spec.features) == world.fv.features  # every logged feature by default
    assert mon.spec.source_version is None
    assert mon.spec.sample == 1_000
    assert fs.monitor("s").spec == mon.spec  # stored and read back
    pinned = fs.monitor(
        "p", model=fs.models.get(world.model_name), metric="skew", detection=day, sample=5
    )
    assert pinned.spec.source_version == 1
    assert pinned.run()["skew"]["checked"] == 0  # nothing logged yet: a run, not an error
    bad: list[tuple[dict[str, Any], str]] = [
        ({"metric": "psi"}, "pass metric='skew'"),
        ({"metric": "skew", "reference": day}, "takes no reference="),
        ({"metric": "skew", "features": ["nope"]}, r"\['nope'\] are not features"),
        ({"metric": "skew", "sample": 0}, "'sample' parameter must be a positive"),
        ({"metric": "skew", "detection": None}, "must be fti.window"),
    ]
    for kw, message in bad:
        args = {"model": world.model_name, "detection": day, **kw}
        with pytest.raises(fti.ValidationError, match=message):
            fs.monitor("bad", **args)
    with pytest.raises(fti.ValidationError, match="metric='skew' checks a model"):
        fs.monitor("bad", feature_view=world.fv, metric="skew", detection=day, reference=day)
    with pytest.raises(fti.NotFoundError):
        fs.monitor("bad", model="no_such_model", metric="skew", detection=day)
    assert [m.name for m in fs.monitors()] == ["p", "s"]
    fs.close()
