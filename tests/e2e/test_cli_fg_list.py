"""``fti fg list`` reads the registry read-only: through ``sqlite3`` on an embedded store (no
SQLAlchemy, no data libraries), through the full registry elsewhere. Either way its ``--json``
is byte for byte the listing the full registry gives, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import fti
from fti.backends.registry.sql import SqlRegistry
from fti.backends.registry.sqlite_readonly import SqliteReadonlyRegistry
from fti.cli.fg import list_rows
from fti.cli.options import emit_json
from fti.config import resolve_config
from fti.services.context import StoreContext

T0 = datetime(2024, 1, 1, tzinfo=UTC)

# What a metadata listing must never load: the registry's SQL toolkit and migrations, and the
# data libraries (each costs 0.1-0.5 s of start-up). A structural check, not a timing.
NOT_IMPORTED = ("sqlalchemy", "alembic", "pandas", "pyarrow", "duckdb", "deltalake", "numpy")


def _fti(*args: str, registry: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FTI_PROGRESS": "0", "FTI_REGISTRY": registry}
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "fti", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )


def _imported(stderr: str) -> set[str]:
    """Top-level packages imported, from ``-X importtime`` lines (``...| cumulative | name``)."""
    return {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in stderr.splitlines()
        if line.startswith("import time:")
    }


def _build(root: Path, registry: str) -> None:
    rows = [
        {"origin": o, "t": T0 + timedelta(hours=i), "temp": 1.0 * i} for i, o in enumerate("AB")
    ]
    with fti.connect(root, registry=registry) as fs:
        weather = fs.feature_group(
            "weather",
            primary_key=["origin"],
            event_time="t",
            online=True,
            ttl=timedelta(hours=6),
            description="Wetter «ÆØÅ» ✓ " + "hourly weather at the airports, " * 5,
        )
        weather.insert(rows)
        weather.insert(rows[:1])  # a correction: rows written count it
        fs.feature_group("weather", version=2, primary_key=["origin"], event_time="t").insert(rows)
        fs.feature_group("snapshot", primary_key=["id"], description="never inserted")
        gone = fs.feature_group("old", primary_key=["k"])
        gone.insert([{"k": 1, "x": 2.0}])
        gone.deprecate(reason="replaced by weather")  # hidden from the listing


def test_fg_list_json_is_the_full_registrys_listing_byte_for_byte(
    registry_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "store"
    _build(root, registry_url)
    out = _fti("fg", "list", "--json", "--root", str(root), registry=registry_url)

    config = resolve_config(root, registry=registry_url)
    full = StoreContext(config)
    read_only = StoreContext(config, read_only=True)
    try:
        assert isinstance(full.registry, SqlRegistry)
        expected_type = (
            SqlRegistry if registry_url.startswith("postgresql") else SqliteReadonlyRegistry
        )
        assert isinstance(read_only.registry, expected_type)
        listing = list_rows(full)
        assert list_rows(read_only) == listing
    finally:
        full.close()
        read_only.close()
    capsys.readouterr()
    emit_json(listing)  # what the command printed before it read the registry read-only
    assert out.stdout == capsys.readouterr().out

    got = json.loads(out.stdout)
    assert [(g["name"], g["version"], g["rows"]) for g in got] == [
        ("snapshot", 1, 0),
        ("weather", 1, 3),
        ("weather", 2, 2),
    ]
    assert got[1]["ttl_seconds"] == 6 * 3600
    assert got[1]["description"].startswith("Wetter «ÆØÅ» ✓ ")
    if registry_url.startswith("sqlite"):
        assert not set(NOT_IMPORTED) & _imported(out.stderr)
