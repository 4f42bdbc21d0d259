"""A write whose COMMIT succeeded but whose acknowledgement was lost is not applied twice.

The connection "drops" right after the transaction committed (simulated: the commit goes
through, then the driver error a lost connection raises). The registry cannot know from the
error whether the write landed; it must look before writing again. SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from fti.backends.registry.sql import SqlRegistry


@pytest.fixture
def registry(registry_url: str) -> Iterator[SqlRegistry]:
    reg = SqlRegistry(registry_url)
    yield reg
    reg.close()


class LostAck:
    """Makes the next ``times`` committed write transactions report a lost connection."""

    def __init__(self, registry: SqlRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
        self.times = 0
        real_begin = registry.engine.begin

        @contextlib.contextmanager
        def begin() -> Iterator[Any]:
            with real_begin() as conn:
                yield conn
            if self.times:  # committed above; now pretend the reply never came
                self.times -= 1
                raise sa.exc.OperationalError(
                    "COMMIT",
                    {},
                    Exception("server closed the connection unexpectedly"),
                    connection_invalidated=True,
                )

        monkeypatch.setattr(registry.engine, "begin", begin)


def test_create_next_with_a_lost_ack_takes_one_version(
    registry: SqlRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = LostAck(registry, monkeypatch)
    lost.times = 1
    rec = registry.create_next("model", "m", lambda v: {"v": v, "payload": "a"})
    assert rec.version == 1
    assert lost.times == 0
    assert [r.version for r in registry.records("model", "m")] == [1]
    assert registry.create_next("model", "m", lambda v: {"v": v}).version == 2


def test_create_update_and_event_with_a_lost_ack_apply_once(
    registry: SqlRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = LostAck(registry, monkeypatch)
    lost.times = 1
    rec = registry.create("lock", "job", 1, {"owner": "a"})  # not a ConflictError with itself
    assert (rec.version, rec.body) == (1, {"owner": "a"})
    lost.times = 1
    updated = registry.update("lock", "job", 1, {"owner": "b"}, revision=rec.revision)
    assert (updated.revision, updated.body) == (rec.revision + 1, {"owner": "b"})
    lost.times = 1
    registry.add_event("lock", "job", 1, {"action": "moved"})
    assert [e["action"] for e in registry.events("lock", "job", 1)] == ["moved"]
    assert lost.times == 0
