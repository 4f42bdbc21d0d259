"""The contract every registry passes: SqlRegistry on SQLite and on PostgreSQL."""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from fti.backends.registry import Registry, migrations, sql
from fti.backends.registry.migrations import VERSION_TABLE, head_revision
from fti.backends.registry.sql import SqlRegistry, metadata
from fti.errors import ConflictError, NameConflictError


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return str(request.getfixturevalue("pg_session_url"))


@pytest.fixture
def registry(registry_url: str) -> Iterator[Registry]:
    reg = SqlRegistry(registry_url)
    yield reg
    reg.close()


@pytest.fixture
def kind() -> str:
    """A record kind no other test uses (tests share the session's PostgreSQL database)."""
    return "k" + uuid.uuid4().hex[:10]


def test_create_get_and_conflict(registry: Registry, kind: str) -> None:
    rec = registry.create(kind, "a", 1, {"x": [1, 2], "s": "é"})
    assert (rec.kind, rec.name, rec.version, rec.body, rec.revision) == (
        kind,
        "a",
        1,
        {"x": [1, 2], "s": "é"},
        1,
    )
    assert rec.created_at.tzinfo is not None
    got = registry.get(kind, "a", 1)
    assert got is not None
    assert (got.body, got.revision) == ({"x": [1, 2], "s": "é"}, 1)
    assert got.created_at.utcoffset() is not None
    assert abs((got.created_at - rec.created_at).total_seconds()) < 1
    with pytest.raises(ConflictError, match="already exists"):
        registry.create(kind, "a", 1, {"other": True})
    assert registry.get(kind, "a", 1) == got  # the loser wrote nothing
    assert registry.get(kind, "a", 2) is None
    assert registry.get(kind, "missing", 1) is None


def test_records_are_ordered_by_name_then_version(registry: Registry, kind: str) -> None:
    for name, version in [("b", 2), ("a", 10), ("b", 1), ("a", 2)]:
        registry.create(kind, name, version, {"n": name, "v": version})
    registry.create(kind + "x", "a", 1, {})
    assert [(r.name, r.version) for r in registry.records(kind)] == [
        ("a", 2),
        ("a", 10),
        ("b", 1),
        ("b", 2),
    ]
    assert [r.version for r in registry.records(kind, "b")] == [1, 2]
    assert registry.records(kind, "zzz") == []


def test_create_next_is_sequential(registry: Registry, kind: str) -> None:
    seen: list[int] = []

    def body(v: int) -> dict[str, int]:
        seen.append(v)
        return {"v": v}

    versions = [registry.create_next(kind, "m", body).version for _ in range(3)]
    assert versions == [1, 2, 3]
    assert seen == [1, 2, 3]
    registry.create(kind, "m", 7, {})
    assert registry.create_next(kind, "m", body).version == 8
    assert registry.create_next(kind, "other", body).version == 1


def test_update_is_compare_and_set(registry: Registry, kind: str) -> None:
    registry.create(kind, "a", 1, {"n": 0})
    first = registry.update(kind, "a", 1, {"n": 1}, revision=1)
    assert (first.body, first.revision) == ({"n": 1}, 2)
    assert first.updated_at >= first.created_at
    with pytest.raises(ConflictError, match="changed concurrently"):
        registry.update(kind, "a", 1, {"n": 99}, revision=1)  # a stale writer loses
    got = registry.get(kind, "a", 1)
    assert got is not None
    assert (got.body, got.revision) == ({"n": 1}, 2)
    with pytest.raises(ConflictError):
        registry.update(kind, "missing", 1, {}, revision=1)


def test_events_and_delete(registry: Registry, kind: str) -> None:
    registry.create(kind, "a", 1, {})
    registry.create(kind, "a", 2, {})
    for i in range(3):
        registry.add_event(kind, "a", 1, {"type": "t", "i": i})
    registry.add_event(kind, "a", 2, {"type": "other"})
    events = registry.events(kind, "a", 1)
    assert [e["i"] for e in events] == [0, 1, 2]
    assert all(e["type"] == "t" and e["at"].endswith("+00:00") for e in events)
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    registry.delete(kind, "a", 1)
    assert registry.get(kind, "a", 1) is None
    assert registry.events(kind, "a", 1) == []
    assert [e["type"] for e in registry.events(kind, "a", 2)] == ["other"]
    assert [r.version for r in registry.records(kind)] == [2]


def test_names_are_unique_ignoring_case_within_a_kind(registry: Registry, kind: str) -> None:
    registry.create(kind, "Prices", 1, {})
    with pytest.raises(NameConflictError, match=r"'prices'.*'Prices'.*ignoring case"):
        registry.create(kind, "prices", 1, {})
    with pytest.raises(NameConflictError):  # another version does not make it another name
        registry.create(kind, "PRICES", 2, {})
    with pytest.raises(NameConflictError):
        registry.create_next(kind, "prices", lambda v: {})
    assert registry.create(kind, "Prices", 2, {}).version == 2  # the same spelling: fine
    assert registry.create_next(kind, "Prices", lambda v: {}).version == 3
    assert registry.create(kind + "x", "prices", 1, {}).name == "prices"  # another kind: fine
    assert [r.name for r in registry.records(kind)] == ["Prices"] * 3
    for v in (1, 2, 3):
        registry.delete(kind, "Prices", v)
    assert registry.create(kind, "prices", 1, {}).name == "prices"  # free again once deleted


def _create_named(url: str, kind: str, name: str, barrier: Any, out: Any) -> None:
    reg = SqlRegistry(url)
    try:
        barrier.wait(timeout=120)
        try:
            reg.create(kind, name, 1, {"by": name})
            out.put(("won", name))
        except NameConflictError:
            out.put(("lost", name))
    finally:
        reg.close()


@pytest.mark.parametrize("round_", range(3))
def test_two_processes_creating_names_that_differ_in_case_exactly_one_wins(
    registry_url: str, kind: str, round_: int
) -> None:
    SqlRegistry(registry_url).close()  # migrated before the race
    mp = multiprocessing.get_context("fork")
    barrier = mp.Barrier(2)
    out = mp.Queue()
    procs = [
        mp.Process(target=_create_named, args=(registry_url, kind, n, barrier, out))
        for n in ("Prices", "prices")
    ]
    for p in procs:
        p.start()
    try:
        results = sorted(out.get(timeout=120) for _ in procs)
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
    assert [r[0] for r in results] == ["lost", "won"]
    winner = next(n for outcome, n in results if outcome == "won")
    reg = SqlRegistry(registry_url)
    try:
        assert [(r.name, r.body) for r in reg.records(kind)] == [(winner, {"by": winner})]
    finally:
        reg.close()


def test_schema_is_at_head(registry: Registry) -> None:
    assert isinstance(registry, SqlRegistry)
    with registry.engine.connect() as conn:
        rev = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    assert rev == [head_revision()]
    # Migration 0002's expression index serves the case-insensitive name check.
    with registry.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            plan = conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT name FROM fti_objects WHERE kind = 'k' "
                "AND lower(name) = lower('X') AND name != 'X'"
            ).all()
            assert "ix_fti_objects_kind_lower_name" in str(plan)
        else:
            indexes = conn.exec_driver_sql(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'fti_objects'"
            ).scalars()
            assert "ix_fti_objects_kind_lower_name" in set(indexes)


def _worker(url: str, n: int, barrier: Any, out: Any) -> None:
    """One process: wait until every worker is up, open the registry (which migrates a fresh
    database), register ``n`` versions, report whether this process ran the migration."""
    ran: list[bool] = []

    def spy(engine: sa.Engine) -> bool:
        ran.append(migrations.upgrade(engine))
        return ran[-1]

    sql.upgrade = spy  # type: ignore[assignment]  # this process only (forked)
    barrier.wait(timeout=120)
    reg = SqlRegistry(url)
    try:
        versions = [reg.create_next("model", "m", lambda v: {"v": v}).version for _ in range(n)]
    finally:
        reg.close()
    out.put({"migrated": ran[0], "versions": versions})


def _run_workers(url: str, processes: int, per_process: int) -> list[dict[str, Any]]:
    # Forked, so the workers skip the imports and really start together at the barrier; each
    # opens its own engine and connections, exactly as separate programs would.
    mp = multiprocessing.get_context("fork")
    barrier = mp.Barrier(processes)
    out = mp.Queue()
    procs = [
        mp.Process(target=_worker, args=(url, per_process, barrier, out)) for _ in range(processes)
    ]
    for p in procs:
        p.start()
    try:
        results = [out.get(timeout=240) for _ in procs]
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
    return results


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    return str(request.getfixturevalue("pg_fresh_url"))


def test_eight_processes_start_on_a_fresh_database_and_number_gap_free(fresh_url: str) -> None:
    """8 processes open an empty database at the same moment (so all of them race to migrate
    it), then each registers 25 versions of one model: 1..200, no gaps, no duplicates."""
    results = _run_workers(fresh_url, processes=8, per_process=25)
    assert sum(bool(r["migrated"]) for r in results) == 1  # exactly one process migrated
    versions = [v for r in results for v in r["versions"]]
    assert sorted(versions) == list(range(1, 201))
    for r in results:  # each process saw its own versions increase
        own = r["versions"]
        assert own == sorted(own)
    reg = SqlRegistry(fresh_url)
    try:
        assert [r.version for r in reg.records("model", "m")] == list(range(1, 201))
        assert all(r.body == {"v": r.version} for r in reg.records("model", "m"))
        with reg.engine.connect() as conn:
            rev = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
            assert rev.all() == [head_revision()]
    finally:
        reg.close()


def test_a_store_created_before_migrations_is_adopted(tmp_path: Path) -> None:
    """Registries made by ``metadata.create_all`` (no version table) keep their records."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO fti_objects (kind, name, version, body, revision, created_at, "
                "updated_at) VALUES ('fg', 'old', 1, '{\"a\": 1}', 1, '2024-01-01 00:00:00', "
                "'2024-01-01 00:00:00')"
            )
        )
    engine.dispose()
    reg = SqlRegistry(url)
    try:
        old = reg.get("fg", "old", 1)
        assert old is not None
        assert old.body == {"a": 1}
        assert reg.create_next("fg", "old", lambda v: {}).version == 2
        with reg.engine.connect() as conn:
            rev = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
            assert rev.all() == [head_revision()]
    finally:
        reg.close()


def test_unreachable_postgresql_is_a_clear_error_without_the_password() -> None:
    from fti.errors import BackendUnavailableError

    with pytest.raises(BackendUnavailableError, match="registry") as info:
        SqlRegistry("postgresql://postgres:secret@127.0.0.1:1/nope")
    assert "secret" not in str(info.value)


def test_head_constant_matches_the_migration_scripts() -> None:
    """``HEAD`` lets an up-to-date registry open without importing Alembic; it must name the
    newest migration in versions/."""
    from fti.backends.registry.migrations import HEAD

    assert head_revision() == HEAD


def test_page_lists_one_page_with_the_total(registry: Registry, kind: str) -> None:
    for i in range(7):
        registry.create(kind, f"Item_{i}", 1, {"n": i, "status": "failed" if i % 3 else "ok"})
    registry.create(kind, "Item_0", 2, {"n": 0, "status": "ok"})
    registry.create(kind, "other%_x", 1, {"n": 9, "status": "ok"})
    recs, total = registry.page(kind, offset=0, limit=3)
    assert total == 9
    assert [(r.name, r.version) for r in recs] == [("Item_0", 1), ("Item_0", 2), ("Item_1", 1)]
    recs, total = registry.page(kind, offset=8, limit=3)
    assert total == 9
    assert [r.name for r in recs] == ["other%_x"]
    recs, total = registry.page(kind, limit=2, newest_first=True)
    assert [(r.name, r.version) for r in recs] == [("other%_x", 1), ("Item_6", 1)]
    # case-insensitive substring; LIKE wildcards in the text match only themselves
    assert registry.page(kind, name_contains="item_", limit=0)[1] == 8
    assert [r.name for r in registry.page(kind, name_contains="%_", limit=10)[0]] == ["other%_x"]
    recs, total = registry.page(kind, body_contains=('"status": "failed"',), limit=10)
    assert total == 4
    assert all(r.body["status"] == "failed" for r in recs)
    assert registry.page(kind + "_none", limit=5) == ([], 0)


def test_recent_events_of_a_kind_newest_first(registry: Registry, kind: str) -> None:
    registry.add_event(kind, "a", 1, {"n": 1})
    registry.add_event(kind, "b", 2, {"n": 2})
    registry.add_event(kind + "_other", "a", 1, {"n": 9})
    registry.add_event(kind, "a", 1, {"n": 3})
    got = registry.recent_events(kind, limit=2)
    assert [(name, version, e["n"]) for name, version, e in got] == [("a", 1, 3), ("b", 2, 2)]
    assert "at" in got[0][2]
    assert len(registry.recent_events(kind, limit=10)) == 3


def test_summary_changes_with_every_write(registry: Registry, kind: str) -> None:
    assert registry.summary(kind) == (0, None)
    rec = registry.create(kind, "a", 1, {"n": 1})
    registry.create(kind, "b", 1, {"n": 1})
    count, first = registry.summary(kind)
    assert count == 2
    assert first is not None
    assert first.tzinfo is not None
    registry.update(kind, "a", 1, {"n": 2}, revision=rec.revision)
    count, second = registry.summary(kind)
    assert count == 2
    assert second is not None
    assert second > first
    registry.delete(kind, "b", 1)
    assert registry.summary(kind)[0] == 1


def test_ping_answers_on_an_open_registry(registry: Registry) -> None:
    registry.ping()
    registry.close()
    registry.ping()  # a closed pool reconnects, like every other call
