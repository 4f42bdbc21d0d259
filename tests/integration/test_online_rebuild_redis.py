"""A Redis online store that lost its data is rebuilt from the offline tables, exactly.

Flushing the store's keys simulates a Redis that restarted empty (no persistence).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

import fti
from fti.cli.app import app
from fti.definitions.feature_group import FeatureGroupSpec
from fti.handles.feature_group import FeatureGroup
from fti.services.feature_groups import online_table
from service_checks import require_service

pytestmark = pytest.mark.integration

T0 = datetime(2024, 3, 1, tzinfo=UTC)


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    require_service("Redis", "127.0.0.1", 6379)
    prefix = "fti_test_" + uuid.uuid4().hex[:12]
    yield f"redis://127.0.0.1:6379/0?prefix={prefix}"
    flush(prefix)


def flush(prefix: str) -> int:
    import redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.unlink(*keys)
        return len(keys)
    finally:
        client.close()


def prefix_of(url: str) -> str:
    return url.split("prefix=", 1)[1]


def weather(origins: list[str], hours: list[int], temps: list[float | None]) -> pa.Table:
    return pa.table(
        {
            "origin": origins,
            "time_hour": pa.array(
                [T0 + timedelta(hours=h) for h in hours], pa.timestamp("us", "UTC")
            ),
            "temp": pa.array(temps, pa.float64()),
            "note": [f"{o}@{h}" for o, h in zip(origins, hours, strict=True)],
        }
    )


def online_state(fs: fti.FeatureStore, spec: FeatureGroupSpec, keys: list[dict[str, Any]]) -> Any:
    """What the online store holds for ``keys``: raw rows (incl. sequence), key count, applied
    versions, and what users read. Goes around ``fs.get_feature_group``, which would catch up."""
    table = online_table(spec)
    ordered = [tuple(k[c] for c in spec.primary_key) for k in keys]
    online = fs._ctx.online
    rows = FeatureGroup(fs._ctx, spec).read_online(keys)
    return online.read(table, ordered), online.count(table), online.applied_versions(table), rows


def same_state(a: Any, b: Any) -> bool:
    def norm(x: Any) -> Any:
        if isinstance(x, float) and math.isnan(x):
            return "NaN"
        if isinstance(x, (list, tuple)):
            return [norm(v) for v in x]
        if isinstance(x, dict):
            return {k: norm(v) for k, v in x.items()}
        return x

    return bool(norm(a) == norm(b))


def test_rebuild_after_redis_lost_everything(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "store"
    fs = fti.connect(root, online=redis_url)
    w = fs.feature_group("weather", primary_key=["origin"], event_time="time_hour", online=True)
    w.insert(weather(["JFK", "LGA", "EWR"], [1, 1, 1], [1.0, 2.0, None]))
    w.insert(weather(["JFK", "LGA"], [3, 0], [float("nan"), 9.0]))  # LGA@0 is older: no effect
    w.insert(weather(["JFK", "SFO"], [3, 2], [4.0, 5.0]))  # same key and time: a correction
    w.delete_rows([{"origin": "SFO"}])
    e = fs.feature_group("accounts", primary_key=["bank", "account"], online=True)  # snapshot
    e.insert(pa.table({"bank": [1, 12, 1], "account": ["23", "3", "2"], "balance": [1, 2, 3]}))
    e.insert(pa.table({"bank": [1], "account": ["23"], "balance": [10]}))

    w_keys = [{"origin": o} for o in ["JFK", "LGA", "EWR", "SFO", "XXX"]]
    e_keys = [{"bank": b, "account": a} for b, a in [(1, "23"), (12, "3"), (1, "2"), (12, "23")]]
    before_w = online_state(fs, w.spec, w_keys)
    before_e = online_state(fs, e.spec, e_keys)
    assert before_w[2] == set(range(w.stats()["offline_version"] + 1))
    # Independent expectations for a few values, so "equal to before" is not vacuous.
    rows_w = before_w[3]
    assert rows_w[0]["time_hour"] == T0 + timedelta(hours=3)
    assert rows_w[0]["temp"] == 4.0
    assert rows_w[0]["note"] == "JFK@3"
    assert rows_w[1]["temp"] == 2.0
    assert rows_w[2]["temp"] is None
    assert rows_w[3:] == [None, None]
    assert [r and r["balance"] for r in before_e[3]] == [10, 2, 3, None]
    assert (before_w[1], before_e[1]) == (3, 3)
    fs.close()

    assert flush(prefix_of(redis_url)) > 0  # Redis restarted empty
    lost = fti.connect(root, online=redis_url)
    table = online_table(w.spec)
    assert lost._ctx.online.read(table, [("JFK",)]) == [None]
    assert not lost._ctx.online.holds(table)  # the marker went with the data
    # A reader that misses sees the marker gone and restores the table before answering.
    assert same_state(online_state(lost, w.spec, w_keys), before_w)
    lost.close()
    assert flush(prefix_of(redis_url)) > 0

    monkeypatch.setenv("FTI_ONLINE", redis_url)
    monkeypatch.setenv("FTI_PROGRESS", "0")
    result = CliRunner().invoke(
        app, ["online", "rebuild", "weather:1", "accounts", "--root", str(root)]
    )
    assert result.exit_code == 0, result.output
    assert "weather" in result.output
    assert "accounts" in result.output

    fs = fti.connect(root, online=redis_url)
    assert same_state(online_state(fs, w.spec, w_keys), before_w)
    assert same_state(online_state(fs, e.spec, e_keys), before_e)
    status = CliRunner().invoke(app, ["online", "status", "weather", "--root", str(root)])
    assert status.exit_code == 0, status.output
    assert "missing versions     none" in status.output
    fs.close()

    # Without the command, opening a feature group catches up by itself.
    flush(prefix_of(redis_url))
    fs = fti.connect(root, online=redis_url)
    fs.get_feature_group("weather")
    fs.get_feature_group("accounts")
    assert same_state(online_state(fs, w.spec, w_keys), before_w)
    assert same_state(online_state(fs, e.spec, e_keys), before_e)
    fs.close()


def test_a_store_in_the_older_layout_is_restored_in_this_one_and_a_rebuild_frees_it(
    redis_url: str, tmp_path: Path
) -> None:
    """A Redis store written before the string layout (a hash per key under ``P:T:k:``, marks
    under ``P:T:m:``) has no marker in this layout: opening the group restores every row from
    the offline table (the old hashes are never read as rows), and ``fti online rebuild``
    removes the old keys."""
    import redis

    prefix = prefix_of(redis_url)
    with fti.connect(tmp_path / "s", online=redis_url) as fs:
        fg = fs.feature_group(
            "weather", primary_key=["origin"], event_time="time_hour", online=True
        )
        fg.insert(weather(["JFK", "LGA"], [1, 2], [10.5, None]))
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        # Replace the store's keys by what the older layout wrote: stale values, old names.
        flush(prefix)
        for origin, temp in (("JFK", b"99.0"), ("LGA", b"98.0"), ("EWR", b"97.0")):
            client.hset(
                f"{prefix}:weather_v1:k:{origin}",
                mapping={"_fti_et": b"1", "_fti_seq": b"1", "temp": temp},
            )
        client.set(f"{prefix}:weather_v1:m:count", 3)
        client.sadd(f"{prefix}:weather_v1:m:applied", 0, 1)
        client.set(f"{prefix}:weather_v1:m:synced", b"1")
        with fti.connect(tmp_path / "s", online=redis_url) as fs:
            fg = fs.get_feature_group("weather", version=1)
            got = fg.read_online([{"origin": "JFK"}, {"origin": "LGA"}, {"origin": "EWR"}])
            assert [r and (r["origin"], r["temp"]) for r in got] == [
                ("JFK", 10.5),
                ("LGA", None),
                None,
            ]
        assert client.exists(f"{prefix}:weather_v1:k:EWR")  # left until a rebuild
        result = CliRunner().invoke(
            app,
            ["online", "rebuild", "weather:1", "--root", str(tmp_path / "s")],
            env={"FTI_ONLINE": redis_url},
        )
        assert result.exit_code == 0, result.output
        left = sorted(k.decode() for k in client.scan_iter(match=f"{prefix}:*", count=1000))
        assert not [k for k in left if ":k:" in k or ":m:" in k], left
        with fti.connect(tmp_path / "s", online=redis_url) as fs:
            got = fs.get_feature_group("weather", version=1).read_online([{"origin": "JFK"}])
            assert got[0] is not None
            assert got[0]["temp"] == 10.5
    finally:
        client.close()
