"""The read-only SQLite registry (stdlib ``sqlite3``) reads exactly what SqlRegistry reads.

Both registries read one database written by SqlRegistry; every read method must return equal
values. And the read-only one opens only what it can read: a file at the schema head.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from fti.backends import resolver
from fti.backends.registry.migrations import VERSION_TABLE
from fti.backends.registry.sql import SqlRegistry, metadata
from fti.backends.registry.sqlite_readonly import SqliteReadonlyRegistry, database_path
from fti.errors import BackendUnavailableError, FtiError


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture
def full(url: str) -> Iterator[SqlRegistry]:
    reg = SqlRegistry(url)
    yield reg
    reg.close()


@pytest.fixture
def fast(full: SqlRegistry, url: str) -> Iterator[SqliteReadonlyRegistry]:
    reg = SqliteReadonlyRegistry.open_at_head(url)
    assert reg is not None
    yield reg
    reg.close()


def _fill(reg: SqlRegistry) -> None:
    for i in range(7):
        reg.create("fg", f"Item_{i}", 1, {"n": i, "status": "failed" if i % 3 else "ok"})
    rec = reg.create("fg", "Item_0", 2, {"n": 0, "s": "é ✓", "nested": {"a": [1, None]}})
    reg.update("fg", "Item_0", 2, {"n": 0, "status": "ok"}, revision=rec.revision)
    reg.create("fg", "other%_x", 1, {"n": 9, "status": "ok"})
    reg.create("fg", "Upper/Slash", 3, {"status": "FAILED"})
    reg.create("fv", "Item_0", 1, {})
    for i in range(9):
        status = ("running", "failed", "succeeded")[i % 3]
        run = reg.create("run", f"r{i}", 1, {"status": status, "pipeline": f"p{i % 2}"})
    reg.update("run", "r8", 1, {"status": "failed", "pipeline": "p0"}, revision=run.revision)
    reg.create_next("model", "m", lambda v: {"v": v})
    for n in range(3):
        reg.add_event("fg", "Item_0", 2, {"type": "t", "n": n})
    reg.add_event("fg", "Item_1", 1, {"type": "u"})
    reg.add_event("fv", "Item_0", 1, {"type": "v"})


def test_every_read_returns_what_the_full_registry_returns(
    full: SqlRegistry, fast: SqliteReadonlyRegistry
) -> None:
    _fill(full)  # written after the read-only registry opened: it reads the current state
    assert fast.url == full.url
    for kind in ("fg", "fv", "model", "none"):
        assert fast.records(kind) == full.records(kind)
        assert fast.summary(kind) == full.summary(kind)
        assert fast.recent_events(kind, limit=2) == full.recent_events(kind, limit=2)
        assert fast.recent_events(kind) == full.recent_events(kind)
    assert len(fast.records("fg")) == 10
    assert fast.records("fg", "Item_0") == full.records("fg", "Item_0")
    assert fast.records("fg", "missing") == []
    for key in [("fg", "Item_0", 2), ("fg", "other%_x", 1), ("fg", "Item_0", 9), ("x", "y", 1)]:
        assert fast.get(*key) == full.get(*key)
    got = fast.get("fg", "Item_0", 2)
    assert got is not None
    assert got.revision == 2
    assert got.created_at.tzinfo is not None
    assert got.updated_at > got.created_at
    for key in [("fg", "Item_0", 2), ("fg", "Item_1", 1), ("fg", "Item_5", 1)]:
        assert fast.events(*key) == full.events(*key)
    assert [e["n"] for e in fast.events("fg", "Item_0", 2)] == [0, 1, 2]
    pages = [
        {"offset": 0, "limit": 3},
        {"offset": 8, "limit": 3},
        {"offset": -1, "limit": -5},
        {"limit": 2, "newest_first": True},
        {"name_contains": "item_", "limit": 0},
        {"name_contains": "ITEM", "limit": 50},
        {"name_contains": "%_", "limit": 10},
        {"name_contains": "r/s", "limit": 10},
        {"body_contains": ('"status": "failed"',), "limit": 10},
        {"body_contains": ('"status"', '"n": 9'), "limit": 10},
        {"body_contains": ("100%",), "limit": 10},
    ]
    for kwargs in pages:
        assert fast.page("fg", **kwargs) == full.page("fg", **kwargs), kwargs  # type: ignore[arg-type]
    runs = [
        {"where": {"status": "failed"}, "limit": 10},
        {"where": {"status": "failed"}, "limit": 2, "offset": 1, "newest_first": True},
        {"where": {"status": "failed", "pipeline": "p0"}, "limit": 10},
        {"where": {"pipeline": "p1"}, "name_contains": "R", "limit": 2, "newest_first": True},
        {"where": {"status": "failed"}, "body_contains": ('"p1"',), "limit": 10},
        {"where": {"status": "nope"}, "limit": 10},
        {"where": {}, "limit": 3},
    ]
    for kwargs in runs:
        assert fast.page("run", **kwargs) == full.page("run", **kwargs), kwargs  # type: ignore[arg-type]
    assert fast.page("run", where={"status": "failed"}, limit=0)[1] == 4
    for reg in (fast, full):
        with pytest.raises(FtiError, match="'colour'"):
            reg.page("run", where={"colour": "red"})


def test_writes_are_refused_and_change_nothing(
    full: SqlRegistry, fast: SqliteReadonlyRegistry
) -> None:
    rec = full.create("fg", "a", 1, {"n": 1})
    refused = [
        lambda: fast.create("fg", "b", 1, {}),
        lambda: fast.create_next("fg", "b", lambda v: {}),
        lambda: fast.update("fg", "a", 1, {"n": 2}, revision=rec.revision),
        lambda: fast.delete("fg", "a", 1),
        lambda: fast.add_event("fg", "a", 1, {"type": "x"}),
    ]
    for write in refused:
        with pytest.raises(FtiError, match="read-only"):
            write()
    assert full.records("fg") == [rec]
    assert full.events("fg", "a", 1) == []


def test_only_a_file_at_the_schema_head_opens_read_only(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'missing.db'}"
    assert SqliteReadonlyRegistry.open_at_head(missing) is None
    assert not (tmp_path / "missing.db").exists()  # not created either

    # A registry made before migrations (no version table): the full registry must adopt it.
    old = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(old)
    metadata.create_all(engine)
    engine.dispose()
    assert SqliteReadonlyRegistry.open_at_head(old) is None

    # An older (or newer) schema revision: the full registry migrates it (or refuses).
    at_head = f"sqlite:///{tmp_path / 'head.db'}"
    SqlRegistry(at_head).close()
    reader = SqliteReadonlyRegistry.open_at_head(at_head)
    assert reader is not None
    reader.close()
    engine = sa.create_engine(at_head)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '0001'"))
    engine.dispose()
    assert SqliteReadonlyRegistry.open_at_head(at_head) is None

    # URLs this module does not parse go to the full registry.
    for url in ("sqlite://", "sqlite:///:memory:", f"{at_head}?timeout=5", "postgresql://h/db"):
        assert SqliteReadonlyRegistry.open_at_head(url) is None


def test_database_paths_are_read_as_sqlalchemy_reads_them(tmp_path: Path) -> None:
    for url in (
        f"sqlite:///{tmp_path / 'a b#c.db'}",
        "sqlite:///relative/registry.db",
        "sqlite:////abs/registry.db",
    ):
        assert str(database_path(url)) == sa.engine.make_url(url).database
    for url in ("sqlite:////tmp/a%20b.db", "sqlite:////tmp/a?b.db", "sqlite://", "redis://x"):
        assert database_path(url) is None


def test_read_only_resolution_falls_back_to_the_full_registry(
    tmp_path: Path, pg_session_url: str
) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    first = resolver.open_registry(url, read_only=True)  # no file yet: created and migrated
    assert isinstance(first, SqlRegistry)
    first.close()
    again = resolver.open_registry(url, read_only=True)
    assert isinstance(again, SqliteReadonlyRegistry)
    again.close()
    writer = resolver.open_registry(url)
    assert isinstance(writer, SqlRegistry)
    writer.close()
    pg = resolver.open_registry(pg_session_url, read_only=True)
    assert isinstance(pg, SqlRegistry)
    pg.close()


def test_ping_answers_and_fails_once_closed(fast: SqliteReadonlyRegistry) -> None:
    fast.ping()
    fast.close()
    with pytest.raises(BackendUnavailableError, match="checking the connection"):
        fast.ping()
