"""Indexed record facts (migration 0004) on SQLite and PostgreSQL: a run's status and pipeline
are written, replaced and dropped with its record; ``page(where=...)`` lists what the substring
filter it replaces listed; a store built at 0003 gives the same filtered pages once upgraded;
the web UI's run listings (with ``died`` decided at read time) are unchanged."""

from __future__ import annotations

import itertools
import os
import socket
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import fti
from fti._internal.liveness import effective_status
from fti.backends.registry import migrations
from fti.backends.registry.migrations import VERSION_TABLE, head_revision
from fti.backends.registry.sql import SqlRegistry
from fti.backends.registry.sql_facts import facts
from fti.errors import ValidationError
from fti.store import context_of
from fti.ui.pages import RUN_STATUSES, run_rows

STATUSES = ("running", "died", "failed", "succeeded")
PIPELINES = ("p1", "p2", 'odd "p%_')


def _body(i: int) -> dict[str, Any]:
    status = STATUSES[i % 4]
    body: dict[str, Any] = {
        "id": f"20240101T{i:06d}-r{i}",
        "kind": "feature",
        "pipeline": PIPELINES[i % 3],
        "status": "running" if status == "died" else status,
        "started_at": "2024-01-01T00:00:00+00:00",
        "host": socket.gethostname(),
        # a live writer (this process) for running, a gone one (never a real pid) for died
        "pid": 2**22 + 7 if status == "died" else os.getpid(),
        "parameters": {"n": i},
    }
    return body


def _fill(reg: SqlRegistry, n: int = 24) -> None:
    for i in range(n):
        body = _body(i)
        reg.create("run", body["id"], 1, body)


def _filters() -> list[dict[str, str]]:
    out: list[dict[str, str]] = [{}]
    for status, pipeline in itertools.product(("", *STATUSES), ("", *PIPELINES)):
        where = {"status": status} if status else {}
        if pipeline:
            where["pipeline"] = pipeline
        out.append(where)
    return out


def _pages(reg: SqlRegistry) -> list[Any]:
    pages = []
    for where in _filters():
        for offset, limit, newest in [(0, 3, True), (2, 4, False), (0, 100, True), (0, 0, True)]:
            pages.append(
                reg.page("run", where=where, offset=offset, limit=limit, newest_first=newest)
            )
    return pages


def _fact_rows(reg: SqlRegistry) -> list[tuple[Any, ...]]:
    with reg.engine.connect() as conn:
        rows = conn.execute(sa.select(facts).order_by(facts.c.name, facts.c.key)).all()
    return [tuple(r) for r in rows]


def test_where_lists_what_the_substring_filter_listed(registry_url: str) -> None:
    reg = SqlRegistry(registry_url)
    try:
        _fill(reg)
        for where in _filters():
            old = tuple(f'"{k}": "{v}"' for k, v in where.items() if '"' not in v)
            if len(old) < len(where):
                continue  # the substring filter could not express a quote in the value
            for newest in (True, False):
                assert reg.page("run", where=where, limit=7, offset=1, newest_first=newest) == (
                    reg.page("run", body_contains=old, limit=7, offset=1, newest_first=newest)
                ), where
        assert reg.page("run", where={"pipeline": 'odd "p%_'}, limit=0)[1] == 8
        # only the top-level field counts: a parameter that looks like a status does not
        decoy = {**_body(99), "status": "succeeded", "parameters": {"status": "failed"}}
        reg.create("run", decoy["id"], 1, decoy)
        failed, total = reg.page("run", where={"status": "failed"}, limit=100)
        assert total == 6
        assert {r.body["status"] for r in failed} == {"failed"}
        # filters combine with the other conditions
        recs, total = reg.page("run", where={"status": "failed"}, name_contains="r1", limit=9)
        assert [r.name[-3:] for r in recs] == ["r10", "r14", "r18"]
        assert total == 3
        with pytest.raises(ValidationError, match="'colour'"):
            reg.page("run", where={"colour": "red"})
        with pytest.raises(ValidationError, match="'status'"):
            reg.page("model", where={"status": "failed"})
    finally:
        reg.close()


def test_facts_follow_their_record(registry_url: str) -> None:
    reg = SqlRegistry(registry_url)
    try:
        first = reg.create("run", "r1", 1, {"status": "running", "pipeline": "p"})
        reg.create_next("run", "r2", lambda v: {"status": "failed", "pipeline": "q", "n": v})
        reg.create("model", "m", 1, {"status": "failed"})  # not a kind with facts
        assert _fact_rows(reg) == [
            ("run", "r1", 1, "pipeline", "p"),
            ("run", "r1", 1, "status", "running"),
            ("run", "r2", 1, "pipeline", "q"),
            ("run", "r2", 1, "status", "failed"),
        ]
        reg.update("run", "r1", 1, {"status": "succeeded", "pipeline": 7}, revision=first.revision)
        assert _fact_rows(reg)[:2] == [
            ("run", "r1", 1, "status", "succeeded"),
            ("run", "r2", 1, "pipeline", "q"),
        ]
        assert reg.page("run", where={"status": "running"}) == ([], 0)
        assert [r.name for r in reg.page("run", where={"status": "succeeded"})[0]] == ["r1"]
        reg.delete("run", "r2", 1)
        assert _fact_rows(reg) == [("run", "r1", 1, "status", "succeeded")]
        assert reg.page("run", where={"pipeline": "q"}) == ([], 0)
    finally:
        reg.close()


def test_an_upgraded_store_gives_the_same_filtered_pages(registry_url: str) -> None:
    reg = SqlRegistry(registry_url)
    _fill(reg)
    before = _pages(reg)
    assert any(total == 6 for _, total in before)
    with reg.engine.begin() as conn:
        from alembic import command

        command.downgrade(migrations._config(conn), "0003")
        assert "fti_facts" not in sa.inspect(conn).get_table_names()
    reg.close()

    reg = SqlRegistry(registry_url)  # opening migrates to head and backfills the facts
    try:
        with reg.engine.connect() as conn:
            rev = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
            assert rev.all() == [head_revision()]
        assert len(_fact_rows(reg)) == 48
        assert _pages(reg) == before
    finally:
        reg.close()


def test_the_ui_run_listings_keep_their_runs(registry_url: str, tmp_path: Path) -> None:
    """Running, died, failed and succeeded runs of three pipelines: every filter of the runs
    page lists what the stored records say, with died decided from the writer's liveness."""
    fs = fti.connect(tmp_path / "store", registry=registry_url)
    try:
        ctx = context_of(fs)
        for i in range(24):
            body = _body(i)
            ctx.registry.create("run", body["id"], 1, body)
        every = sorted(ctx.registry.records("run"), key=lambda r: r.name, reverse=True)
        assert RUN_STATUSES == ("running", "succeeded", "failed", "died")
        for status, pipeline in itertools.product(("", *RUN_STATUSES), ("", *PIPELINES)):
            page = run_rows(ctx, status=status, pipeline=pipeline, limit=100)
            expected = [
                r.name
                for r in every
                if (not pipeline or r.body["pipeline"] == pipeline)
                and (not status or effective_status(r.body) == status)
            ]
            assert [row["id"] for row in page.rows] == expected, (status, pipeline)
            assert len(expected) == (
                24 if not status and not pipeline else 8 if not status else 6 if not pipeline else 2
            )
        # the total of died/running counts every stored "running" record, as before
        assert run_rows(ctx, status="died", limit=100).total == 12
    finally:
        fs.close()
