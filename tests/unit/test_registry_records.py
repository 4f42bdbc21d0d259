"""Run records, schedules, stream checkpoints and tokens through their services: records written
in the format fti has always stored read back, and new records keep that format (no migration)."""

from __future__ import annotations

import hashlib
import os
import socket
from datetime import UTC, datetime, timedelta

import pytest

import fti
from fti.definitions.schedule import Schedule
from fti.definitions.stream_checkpoint import StreamCheckpoint
from fti.errors import AuthError, ConflictError, ForbiddenError, NotFoundError
from fti.services import runs, schedules, stream_checkpoints, tokens
from fti.serving.auth import TokenStore
from fti.store import context_of

T0 = datetime(2013, 1, 1, 6, tzinfo=UTC)

# Bodies exactly as the registry held them before the typed services existed.
OLD_RUN = {
    "id": "20130101T060000.000000Z-1a2b3c",
    "kind": "feature",
    "pipeline": "weather",
    "function": "/src/flows.py:weather",
    "parameters": {"start": "2013-01-01T00:00:00+00:00", "n": 3},
    "code_version": {"git_commit": "abc", "git_dirty": False, "source_sha256": "00"},
    "started_at": "2013-01-01T06:00:00+00:00",
    "ended_at": "2013-01-01T06:00:05+00:00",
    "status": "succeeded",
    "error": None,
    "inputs": [{"kind": "file", "name": "/data/w.csv"}],
    "outputs": [{"kind": "feature_group", "name": "weather", "version": 1, "table_version": 4}],
    "host": "elsewhere",
    "pid": 4242,
    "schedule": "hourly",
    "tick": "2013-01-01T06:00:00+00:00",
}
OLD_SCHEDULE = {
    "name": "hourly",
    "function": "/src/flows.py:weather",
    "pipeline": "weather",
    "kind": "feature",
    "cron": "0 * * * *",
    "parameters": {"n": 3},
    "catch_up": True,
    "enabled": True,
    "created_at": "2013-01-01T06:00:00+00:00",
    "last_tick": "2013-01-01T06:00:00+00:00",
}
OLD_MONITOR_SCHEDULE = {
    "name": "monitor_tx_drift",
    "function": "monitor:tx_drift",
    "pipeline": "tx_drift",
    "kind": "monitor",
    "monitor": "tx_drift",
    "cron": "*/5 * * * *",
    "parameters": {},
    "catch_up": False,
    "enabled": True,
    "created_at": "2013-01-01T06:00:00+00:00",
    "last_tick": "2013-01-01T06:00:00+00:00",
}
OLD_CHECKPOINT = {
    "positions": {"cards:0": "1700000000000-3"},
    "counters": {"records": 10, "accepted": 9, "duplicates": 1},
    "events_version": 7,
    "watermark": 1_356_998_400_000_000,
    "status": "stopped",
    "host": "elsewhere",
    "pid": 4242,
    "source": "redis://127.0.0.1:6379/0?stream=cards",
    "started_at": "2013-01-01T06:00:00+00:00",
    "restored_events": 0,
    "last_error": None,
    "last_checkpoint_at": "2013-01-01T06:01:00+00:00",
    "throughput": 1234.5,
    "lag": 0,
}


def test_an_old_run_record_reads_with_every_field(fs: fti.FeatureStore) -> None:
    ctx = context_of(fs)
    ctx.registry.create(runs.KIND, OLD_RUN["id"], 1, OLD_RUN)
    run = runs.get(ctx, "20130101T0600")  # a unique prefix
    assert run.id == OLD_RUN["id"]
    assert (run.kind, run.pipeline, run.status) == ("feature", "weather", "succeeded")
    assert run.parameters == {"start": "2013-01-01T00:00:00+00:00", "n": 3}
    assert run.seconds == 5.0
    assert run.outputs[0]["table_version"] == 4
    assert run.extra == {"schedule": "hourly", "tick": "2013-01-01T06:00:00+00:00"}
    assert [r.id for r in runs.list_runs(ctx, pipeline="weather")] == [OLD_RUN["id"]]
    assert runs.list_runs(ctx, status="failed") == []


def test_a_new_run_record_keeps_the_stored_format(fs: fti.FeatureStore) -> None:
    ctx = context_of(fs)
    started = runs.start(
        ctx,
        kind="feature",
        pipeline="weather",
        function="/src/flows.py:weather",
        parameters={"n": 3},
        code_version={"git_commit": None, "git_dirty": None, "source_sha256": None},
        extra={"schedule": "hourly"},
    )
    stored = ctx.registry.get(runs.KIND, started.name, 1)
    assert stored is not None
    assert list(stored.body) == [
        *[k for k in OLD_RUN if k not in ("schedule", "tick")],
        "schedule",
    ]
    assert stored.body["status"] == "running"
    assert (stored.body["host"], stored.body["pid"]) == (socket.gethostname(), os.getpid())
    runs.finish(ctx, started, status="failed", error="boom", inputs=[], outputs=[])
    assert runs.get(ctx, started.name).error == "boom"
    with pytest.raises(ConflictError):  # finishing twice from the same start: compare-and-set
        runs.finish(ctx, started, status="succeeded", error=None, inputs=[], outputs=[])
    with pytest.raises(NotFoundError, match="fti runs list"):
        runs.get(ctx, "nope")


def test_old_schedule_records_read_and_round_trip(fs: fti.FeatureStore) -> None:
    ctx = context_of(fs)
    for body in (OLD_SCHEDULE, OLD_MONITOR_SCHEDULE):
        ctx.registry.create(schedules.KIND, body["name"], 1, body)
    plain = schedules.get(ctx, "hourly")
    assert plain.monitor is None
    assert (plain.pipeline, plain.kind, plain.parameters) == ("weather", "feature", {"n": 3})
    hours = [T0 + timedelta(hours=h) for h in (1, 2)]
    assert plain.ticks(T0 + timedelta(hours=2)) == hours
    monitor = schedules.get(ctx, "monitor_tx_drift")
    assert (monitor.monitor, monitor.catch_up) == ("tx_drift", False)
    # The typed form writes back exactly the stored body, key order included.
    for body, schedule in ((OLD_SCHEDULE, plain), (OLD_MONITOR_SCHEDULE, monitor)):
        assert list(schedule.to_body().items()) == list(body.items())
    assert [s.name for s in schedules.list_schedules(ctx)] == ["hourly", "monitor_tx_drift"]


def test_schedule_cursor_moves_keep_unknown_keys_and_a_removed_one_is_none(
    fs: fti.FeatureStore,
) -> None:
    ctx = context_of(fs)
    ctx.registry.create(schedules.KIND, "hourly", 1, {**OLD_SCHEDULE, "note": "kept"})
    moved = schedules.advance(ctx, "hourly", T0 + timedelta(hours=1))
    assert moved is not None
    assert moved.last_tick == T0 + timedelta(hours=1)
    stored = ctx.registry.get(schedules.KIND, "hourly", 1)
    assert stored is not None
    assert stored.body["note"] == "kept"
    with pytest.raises(ConflictError, match="already exists"):
        schedules.create(ctx, Schedule.from_body(OLD_SCHEDULE))
    schedules.delete(ctx, "hourly")
    assert schedules.advance(ctx, "hourly", T0 + timedelta(hours=2)) is None
    with pytest.raises(NotFoundError, match="Existing: \\[\\]"):
        schedules.delete(ctx, "hourly")


def test_a_lease_is_held_by_one_scheduler_until_released_or_expired(fs: fti.FeatureStore) -> None:
    ctx = context_of(fs)
    later = T0 + timedelta(minutes=10)
    lease = schedules.acquire_lease(
        ctx, "/src/flows.py:weather", holder="a", schedule="hourly", now=T0, expires_at=later
    )
    with pytest.raises(ConflictError, match=r"pipeline busy \(held by a\)"):
        schedules.acquire_lease(
            ctx, "/src/flows.py:weather", holder="b", schedule="hourly", now=T0, expires_at=later
        )
    lease = schedules.renew_lease(ctx, lease, later + timedelta(minutes=10))
    # Once expired, another holder takes it over, and the old holder's release changes nothing.
    taken = schedules.acquire_lease(
        ctx,
        "/src/flows.py:weather",
        holder="b",
        schedule="hourly",
        now=later + timedelta(minutes=11),
        expires_at=later + timedelta(minutes=20),
    )
    schedules.release_lease(ctx, lease)
    stored = ctx.registry.get(schedules.LOCK_KIND, taken.name, 1)
    assert stored is not None
    assert stored.body["holder"] == "b"
    schedules.release_lease(ctx, taken)
    stored = ctx.registry.get(schedules.LOCK_KIND, taken.name, 1)
    assert stored is not None
    assert stored.body["holder"] is None


def test_an_old_stream_checkpoint_reads_and_saves_by_compare_and_set(
    fs: fti.FeatureStore,
) -> None:
    ctx = context_of(fs)
    ctx.registry.create(stream_checkpoints.KIND, "cards_v1", 1, OLD_CHECKPOINT)
    ck = stream_checkpoints.open_checkpoint(ctx, "cards_v1")
    assert ck.positions == {"cards:0": "1700000000000-3"}
    assert (ck.events_version, ck.watermark) == (7, 1_356_998_400_000_000)
    assert ck.counters["accepted"] == 9
    assert ck.status == "stopped"
    assert ck.details["throughput"] == 1234.5
    assert ck.to_body() == OLD_CHECKPOINT  # written back unchanged
    saved = stream_checkpoints.save(ctx, ck, status="running", positions={"cards:0": "5-0"})
    assert saved.positions == {"cards:0": "5-0"}
    assert saved.events_version == 7
    with pytest.raises(ConflictError, match="second `fti stream run`"):
        stream_checkpoints.save(ctx, ck, status="stopped")  # stale revision
    (row,) = stream_checkpoints.statuses(ctx)
    assert row["pipeline"] == "cards_v1"
    assert row["positions"] == {"cards:0": "5-0"}
    assert row["status"] == "running"  # written by another host: shown as stored
    stream_checkpoints.delete(ctx, "cards_v1")
    assert stream_checkpoints.find(ctx, "cards_v1") is None


def test_a_new_stream_checkpoint_is_stored_as_before(fs: fti.FeatureStore) -> None:
    ctx = context_of(fs)
    ck = stream_checkpoints.open_checkpoint(ctx, "fresh_v1")
    assert ck == StreamCheckpoint("fresh_v1")
    stored = ctx.registry.get(stream_checkpoints.KIND, "fresh_v1", 1)
    assert stored is not None
    assert stored.body == {"positions": {}, "counters": {}}


def test_an_old_token_record_still_authenticates(fs: fti.FeatureStore) -> None:
    ctx = context_of(fs)
    token = "fti_0123456789ab_" + "s" * 43
    old = {
        "scope": "predict read",
        "sha256": hashlib.sha256(token.encode()).hexdigest(),
        "created_at": "2013-01-01T06:00:00+00:00",
        "description": "checkout",
        "revoked": False,
    }
    ctx.registry.create(tokens.KIND, "0123456789ab", 1, old)
    (info,) = tokens.list_tokens(ctx)
    assert (info.id, info.scope, info.description) == ("0123456789ab", "predict read", "checkout")
    assert info.to_body() == old
    store = TokenStore(ctx)
    assert store.check(f"Bearer {token}", "read").id == "0123456789ab"
    with pytest.raises(ForbiddenError, match="--scope admin"):
        store.check(f"Bearer {token}", "admin")
    with pytest.raises(AuthError, match="Invalid or revoked"):
        store.check(f"Bearer {token[:-1]}t", "read")


def test_a_new_token_is_stored_hashed_in_the_old_format(fs: fti.FeatureStore) -> None:
    ctx = context_of(fs)
    token, info = tokens.create_token(ctx, ["read", "predict"], description="x")
    assert info.scope == "predict read"  # SCOPES order
    stored = ctx.registry.get(tokens.KIND, info.id, 1)
    assert stored is not None
    assert list(stored.body) == ["scope", "sha256", "created_at", "description", "revoked"]
    assert token not in str(stored.body)
    tokens.revoke_token(ctx, info.id)
    with pytest.raises(AuthError, match="Invalid or revoked"):
        TokenStore(ctx).check(f"Bearer {token}", "read")
    with pytest.raises(fti.ValidationError, match="Unknown token scope 'root'"):
        tokens.create_token(ctx, "root")
    with pytest.raises(NotFoundError, match="fti token list"):
        tokens.revoke_token(ctx, "nope")


def test_auth_errors_live_in_fti_errors() -> None:
    assert issubclass(AuthError, fti.FtiError)
    assert issubclass(ForbiddenError, PermissionError)
    assert (AuthError.http_status, ForbiddenError.http_status) == (401, 403)
