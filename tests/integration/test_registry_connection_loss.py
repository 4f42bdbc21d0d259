"""The registry survives losing its PostgreSQL connection (``pg_terminate_backend``).

A second connection terminates the registry's backend(s) — found in ``pg_stat_activity`` by the
test database's name — at a chosen point: before the n-th statement a registration sends, or
between two reads. Registrations must end ``ready`` and loadable or leave nothing visible;
reads retry; what cannot be retried reaches the user as an fti error without SQL text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

import fti
from service_checks import PG_ADMIN_DSN, create_pg_database, drop_pg_database, require_service

pytestmark = pytest.mark.integration


@pytest.fixture
def pg_url() -> Iterator[str]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture
def fs(tmp_path: Path, pg_url: str) -> Iterator[fti.FeatureStore]:
    store = fti.connect(tmp_path / "store", registry=pg_url)
    yield store
    store.close()


def terminate_backends(database: str) -> int:
    """Terminate every backend connected to ``database`` and wait until they are gone."""
    import psycopg

    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        pids = [
            r[0]
            for r in admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            )
        ]
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
            ).fetchone()
            if row is not None and row[0] == 0:
                break
            time.sleep(0.01)
    return len(pids)


class Killer:
    """Terminates the registry's connections right before the n-th database call (a statement
    or a COMMIT) counted from when it is armed."""

    def __init__(self, fs: fti.FeatureStore) -> None:
        registry: Any = fs._ctx.registry
        self.engine: sa.Engine = registry.engine
        self.database = str(self.engine.url.database)
        self.countdown: int | None = None
        self.kills = 0
        sa.event.listen(self.engine, "before_cursor_execute", self._on_call)
        sa.event.listen(self.engine, "commit", self._on_call)

    def arm(self, at_call: int) -> None:
        self.countdown = at_call

    def _on_call(self, *args: Any) -> None:
        if self.countdown is None:
            return
        if self.countdown == 0:
            self.countdown = None
            if terminate_backends(self.database):
                self.kills += 1
        else:
            self.countdown -= 1

    def close(self) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._on_call)
        sa.event.remove(self.engine, "commit", self._on_call)


def model(seed: int) -> Any:
    rng = np.random.default_rng(seed)
    x = rng.random((40, 2))
    return LogisticRegression().fit(x, (x[:, 0] > 0.5).astype(int))


def calls_of(fs: fti.FeatureStore, action: Callable[[], object]) -> int:
    """How many statements + commits ``action`` sends to the registry."""
    engine: sa.Engine = fs._ctx.registry.engine  # type: ignore[attr-defined]
    count = 0

    def bump(*args: Any) -> None:
        nonlocal count
        count += 1

    sa.event.listen(engine, "before_cursor_execute", bump)
    sa.event.listen(engine, "commit", bump)
    try:
        action()
    finally:
        sa.event.remove(engine, "before_cursor_execute", bump)
        sa.event.remove(engine, "commit", bump)
    return count


def test_a_read_after_the_backend_was_terminated_succeeds(fs: fti.FeatureStore) -> None:
    fs.models.register("m", model(0))
    killer = Killer(fs)
    try:
        killer.arm(0)  # right before the next read's first statement
        assert fs.models.get("m").version == 1
        assert killer.kills == 1
        killer.arm(0)
        assert [mv.version for mv in fs.models.list("m")] == [1]
        assert killer.kills == 2
    finally:
        killer.close()


def test_registrations_killed_at_every_step_end_ready_or_invisible(
    fs: fti.FeatureStore,
) -> None:
    steps = calls_of(fs, lambda: fs.models.register("m", model(0)))
    assert steps >= 3
    killer = Killer(fs)
    outcomes: list[str] = []
    try:
        for step in range(steps + 2):  # +2: also a kill that lands after the registration
            killer.arm(step)
            try:
                mv = fs.models.register("m", model(step + 1))
                outcomes.append(f"ok v{mv.version}")
            except fti.FtiError as e:  # allowed, but then nothing may be visible
                outcomes.append(f"{type(e).__name__}: {e}")
            killer.arm(0)  # and the reads below lose their connection once too
            versions = fs.models.list("m")
            assert [mv.version for mv in versions] == list(range(1, len(versions) + 1))
            assert {mv.status for mv in versions} == {"ready"}, outcomes
    finally:
        killer.close()
    assert killer.kills >= steps
    versions = fs.models.list("m")
    # every registration that reported success is visible, exactly once (none applied twice)
    assert len(versions) == 1 + sum(o.startswith("ok") for o in outcomes), outcomes
    for mv in versions:
        assert mv.load().predict(np.array([[0.9, 0.1]])).shape == (1,)
    latest = fs.models.get("m")
    assert latest.version == len(versions)
    fs.models.set_alias("m", "production", latest.version)
    assert fs.models.get("m", alias="production").version == latest.version


def test_alias_changes_killed_at_every_step_apply_once(fs: fti.FeatureStore) -> None:
    fs.models.register("m", model(0))
    fs.models.register("m", model(1))
    fs.models.set_alias("m", "production", 2)  # the first change creates the alias record
    # count the statements of a change of an existing alias (the kind every step below makes)
    steps = calls_of(fs, lambda: fs.models.set_alias("m", "production", 1))
    killer = Killer(fs)
    try:
        for step in range(steps):
            killer.arm(step)
            fs.models.set_alias("m", "production", 2 - step % 2)
    finally:
        killer.close()
    assert killer.kills == steps
    history = fs.models.alias_history("m")
    assert len(history) == steps + 2  # one event per change: none lost, none doubled
    assert fs.models.aliases("m") == {"production": 2 - (steps - 1) % 2}


def test_a_database_that_is_gone_is_a_readable_backend_unavailable_error(
    fs: fti.FeatureStore, pg_url: str
) -> None:
    fs.models.register("m", model(0))
    drop_pg_database(pg_url)  # terminates the registry's connections too (WITH FORCE)
    with pytest.raises(fti.BackendUnavailableError) as err:
        fs.models.get("m")
    message = str(err.value)
    assert "does not exist" in message  # the server's own reason
    for sql_word in ("SELECT", "INSERT", "FROM", "[SQL"):
        assert sql_word not in message
    assert isinstance(err.value.__cause__, sa.exc.SQLAlchemyError)
    with pytest.raises(fti.BackendUnavailableError):
        fs.models.register("m", model(1))


def test_a_value_postgresql_rejects_is_a_validation_error_without_sql(pg_url: str) -> None:
    from fti.backends.registry.sql import SqlRegistry

    registry = SqlRegistry(pg_url)
    try:
        with pytest.raises(fti.ValidationError, match="value too long") as err:
            registry.create("model", "x" * 200, 1, {})  # the name column holds 128 characters
        for sql_word in ("SELECT", "INSERT", "[SQL", "x" * 100):  # nor the long input
            assert sql_word not in str(err.value)
        assert isinstance(err.value.__cause__, sa.exc.DataError)
        assert registry.records("model") == []
    finally:
        registry.close()
