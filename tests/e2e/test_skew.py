"""The training-serving skew check over requests served by the model server (TestClient):
a clean store has no findings over 1,000 logged rows; values written straight into the online
store (bypassing the offline table) are reported for exactly the affected rows, by feature."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from fastapi.testclient import TestClient

import fti
import serving_world
from fti.services import feature_groups, materialization
from fti.services.ingestion import next_sequence
from fti.services.skew import MATCH, MISMATCH, MISSING_OFFLINE, MISSING_ONLINE, compare
from fti.serving import create_app
from service_checks import create_pg_database, drop_pg_database, require_service

BAD_KEYS = 37


@pytest.fixture(
    scope="module", params=["embedded", pytest.param("servers", marks=pytest.mark.integration)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[serving_world.World]:
    """The serving world on the embedded store, then on Redis (online) + PostgreSQL (registry)."""
    root = tmp_path_factory.mktemp("skew") / "store"
    if request.param == "embedded":
        fs = fti.connect(root)
        yield serving_world.build(fs, trips=300)
        fs.close()
        return
    require_service("Redis", "127.0.0.1", 6379)
    import redis

    prefix = "fti_test_skew_" + uuid.uuid4().hex[:12]
    online = f"redis://127.0.0.1:6379/0?prefix={prefix}"
    registry = create_pg_database()
    fs = fti.connect(root, online=online, registry=registry)
    world = serving_world.build(fs, trips=300)
    world.cli_env = {"FTI_ONLINE": online, "FTI_REGISTRY": registry}  # type: ignore[attr-defined]
    try:
        yield world
    finally:
        fs.close()
        drop_pg_database(registry)
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.unlink(*keys)
        client.close()


def _serve(world: serving_world.World, trip_ids: list[int], per_request: int = 10) -> list[str]:
    """Predict for ``trip_ids`` (``per_request`` entities per request); returns request ids.
    Leaving the client flushes the prediction log."""
    app = create_app(world.fs, world.model_name)
    ids = []
    with TestClient(app) as c:
        for n in range(0, len(trip_ids), per_request):
            batch = trip_ids[n : n + per_request]
            r = c.post(
                f"/v1/models/{world.model_name}/predict",
                json={
                    "entities": [{"trip_id": t} for t in batch],
                    "request": {"dep_hour": n % 24},
                },
            )
            assert r.status_code == 200, r.text
            ids.append(r.json()["request_id"])
    return ids


def _corrupt_online(world: serving_world.World, trip_ids: list[int]) -> None:
    """Write wrong distances for ``trip_ids`` into the online store only, with a newer seq."""
    fs = world.fs
    fg = fs.get_feature_group("trips", version=1)
    rows = fg.read(latest=True, format="arrow")
    rows = rows.filter(pc.is_in(rows["trip_id"], pa.array(trip_ids, pa.int64())))
    rows = rows.set_column(
        rows.schema.get_field_index("distance"),
        "distance",
        pc.add(pc.multiply(rows["distance"], 2.0), 1.0),
    )
    seq = next_sequence(rows.num_rows)
    rows = rows.append_column("_fti_seq", pa.array(range(seq, seq + rows.num_rows), pa.int64()))
    ctx = fs._ctx
    spec = fg._spec
    ctx.online.upsert(
        feature_groups.online_table(spec),
        materialization.canonical_batch(spec, rows),
        version=None,
    )


@pytest.mark.slow
def test_clean_store_then_corrupted_online_values(
    world: serving_world.World, tmp_path: Any
) -> None:
    trips = world.trip_ids
    _serve(world, [trips[i % len(trips)] for i in range(1000)])
    report = world.fs.models.skew_check(world.model_name, sample=1_000)
    assert report.checked == 1000
    assert report.counts[MISMATCH] == 0, report.frame()
    assert report.ok, report.frame()
    assert report.counts[MATCH] == 1000 * len(report.by_feature)
    assert report.requests == []

    # Late-arriving rows (event times before those requests, ingested after them) change the
    # point-in-time answer but not what the requests saw: known_at keeps the check clean.
    served_until = datetime.now(UTC)
    trips_fg = world.fs.get_feature_group("trips", version=1)
    late = trips_fg.read(latest=True, format="arrow").slice(0, 5)
    late = late.set_column(
        late.schema.get_field_index("ts"),
        "ts",
        pc.add(late["ts"], pa.scalar(60_000_000, pa.duration("us"))),
    )
    late = late.set_column(
        late.schema.get_field_index("distance"), "distance", pa.array([7.5] * 5, pa.float64())
    )
    trips_fg.insert(late)
    again = world.fs.models.skew_check(world.model_name, sample=1_000, end=served_until)
    assert again.ok, again.frame()
    assert again.checked == 1000

    # 37 keys with a distance get wrong values online only; every key is then served again.
    with_distance = world.fs.get_feature_group("trips", version=1).read(latest=True)
    bad = sorted(with_distance.dropna(subset=["distance"])["trip_id"].tolist()[:BAD_KEYS])
    assert len(bad) == BAD_KEYS
    _corrupt_online(world, bad)
    since = datetime.now(UTC)
    ids = _serve(world, trips)
    report = world.fs.models.skew_check(world.model_name, sample=None, start=since)
    assert report.checked == len(trips)
    log = world.fv.read_log(model=world.model_name, start=since)
    expected = sorted((r.request_id, r.position) for r in log.itertuples() if r.trip_id in set(bad))
    assert len(expected) == BAD_KEYS
    assert report.requests == expected
    assert {r for r, _ in report.requests} <= set(ids)
    found = report.frame()
    assert set(found["status"]) == {MISMATCH}
    # The distance of every bad row, and what is computed from it (the on-demand per_hour).
    assert set(found["feature"]) <= {"distance", "per_hour"}
    assert (found["feature"] == "distance").sum() == BAD_KEYS
    assert report.by_feature["distance"][MISMATCH] == BAD_KEYS
    assert report.by_feature["carrier"][MISMATCH] == 0
    row = found[found["feature"] == "distance"].iloc[0]
    assert float(json.loads(row["online"])) == 2 * float(json.loads(row["offline"])) + 1
    assert "mismatch" in str(report)

    # The CLI prints the same and exits 1 on findings; --json carries the counts.
    out = subprocess.run(
        [sys.executable, "-m", "fti", "models", "skew", world.model_name, "--json",
         "--root", str(world.fs._ctx.config.root), "--start", since.isoformat(), "--sample", "0"],
        capture_output=True, text=True, check=False, env=_env(world),
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    body = json.loads(out.stdout)
    assert body["checked"] == len(trips)
    assert body["counts"]["mismatch"] == report.counts[MISMATCH]
    bad_time = subprocess.run(
        [sys.executable, "-m", "fti", "models", "skew", world.model_name,
         "--root", str(world.fs._ctx.config.root), "--start", "yesterday"],
        capture_output=True, text=True, check=False, env=_env(world),
    )  # fmt: skip
    assert bad_time.returncode != 0
    assert "is not an ISO date or time" in bad_time.stdout + bad_time.stderr
    assert "Traceback" not in bad_time.stdout + bad_time.stderr


def _env(world: serving_world.World) -> dict[str, str]:
    """This process's environment with serving_world (the on-demand feature) importable and
    the world's online store and registry (when they are servers)."""
    tests = str(Path(serving_world.__file__).parent)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    extra = getattr(world, "cli_env", {})
    return {**os.environ, **extra, "PYTHONPATH": os.pathsep.join([*paths, tests])}


@pytest.mark.parametrize(
    ("online", "offline", "status"),
    [
        (None, None, MATCH),
        (1.0, 1.0 + 1e-12, MATCH),
        (1.0, 1.0 + 1e-8, MISMATCH),
        (0.0, 1e-300, MISMATCH),
        (float("nan"), float("nan"), MATCH),
        (float("nan"), 1.0, MISMATCH),
        (None, 2, MISSING_ONLINE),
        (2, None, MISSING_OFFLINE),
        ("AA", "AA", MATCH),
        ("AA", "B6", MISMATCH),
        (True, 1, MATCH),
        ("2026-01-01 00:00:00+00:00", datetime(2026, 1, 1, tzinfo=UTC), MATCH),
    ],
)
def test_compare_statuses(online: Any, offline: Any, status: str) -> None:
    assert compare(online, offline) == status
