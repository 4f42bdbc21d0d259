"""Compaction and vacuum: rows and retained versions unchanged, vacuumed versions refused with
a clear error, training datasets reproducible, online catch-up unaffected, automatic past a
file threshold."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

import fti
from fti.cli.app import app
from fti.errors import ConfigError, NotFoundError, ValidationError
from fti.services.feature_groups import online_table

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTI_COMPACT_FILES", "0")
    monkeypatch.setenv("FTI_PROGRESS", "0")


def _batch(i: int, rows: int = 5) -> pa.Table:
    return pa.table(
        {
            "k": pa.array([(i * rows + j) % 17 for j in range(rows)], pa.int64()),
            "t": pa.array(
                [T0 + timedelta(minutes=i * rows + j) for j in range(rows)],
                pa.timestamp("us", "UTC"),
            ),
            "x": pa.array([float(i * rows + j) for j in range(rows)]),
            "label": pa.array([(i + j) % 2 for j in range(rows)], pa.int64()),
        }
    )


def _many(fs: fti.FeatureStore, n: int, *, online: bool = False) -> fti.FeatureGroup:
    fg = fs.feature_group("small", primary_key=["k"], event_time="t", online=online)
    for i in range(n):
        fg.insert(_batch(i))
    return fg


def _frame(fg: fti.FeatureGroup, **kw: object) -> list[tuple[object, ...]]:
    df = fg.read(format="arrow", **kw).to_pydict()
    return sorted(zip(df["k"], df["t"], df["x"], strict=True))


@pytest.mark.slow
def test_compaction_changes_no_rows_and_keeps_every_version(fs: fti.FeatureStore) -> None:
    fg = _many(fs, 30)
    versions = {v: _frame(fg, version=v) for v in range(0, 31, 5)}
    rows = _frame(fg)
    assert len(rows) == 150
    files = fg.stats()["files"]
    assert files == 30

    report = fg.compact()
    assert (report.files_before, report.files_after) == (30, 1)
    assert report.vacuumed_files is None
    assert "30 -> 1 files" in str(report)
    assert fg.stats()["files"] == 1
    assert _frame(fg) == rows
    for v, before in versions.items():  # time travel untouched without a vacuum
        assert _frame(fg, version=v) == before
    fg.insert(_batch(99))  # the table keeps working after
    assert len(_frame(fg)) == 155


def test_vacuum_keeps_retained_and_training_dataset_versions(fs: fti.FeatureStore) -> None:
    fg = _many(fs, 12)
    fv = fs.feature_view("small_fv", query=fg.select(["x"]), labels=["label"])
    td = fv.create_training_dataset(split={"train": 0.7, "test": 0.3}, seed=3)
    pinned = td.table_versions[fg.spec.key]
    assert pinned == 12
    train_before = td.read("train")
    pinned_rows = _frame(fg, version=pinned)
    for i in range(12, 40):
        fg.insert(_batch(i))
    fg.compact()  # version 41: the files of versions 13-40 are now needed by old versions only
    for i in range(40, 43):
        fg.insert(_batch(i))
    latest = fg.stats()["offline_version"]
    assert latest == 44
    retained = {v: _frame(fg, version=v) for v in range(latest - 2, latest + 1)}
    everything = _frame(fg)

    # Retain the latest 4 versions (42-45 once the compaction commits 45): they need the big
    # file of version 41 and the 3 new small ones, the training dataset's version 12 the
    # first 12 small files; the 28 small files of versions 13-40 go.
    report = fg.compact(vacuum=True, retain_versions=4)
    assert report.kept_versions == [12, 42, 43, 44, 45]
    assert report.vacuumed_files == 28
    assert _frame(fg) == everything
    for v, before in retained.items():
        assert _frame(fg, version=v) == before
    assert _frame(fg, version=pinned) == pinned_rows  # a training dataset's version stays
    with pytest.raises(
        NotFoundError, match="Version 5 of table 'small_v1' was removed by a vacuum"
    ):
        fg.read(version=5)
    with pytest.raises(NotFoundError, match="readable versions"):
        fg.read(version=pinned + 1)
    # The training dataset re-reads identically, from another connection too.
    pd.testing.assert_frame_equal(td.read("train")[0], train_before[0])
    pd.testing.assert_series_equal(td.read("train")[1], train_before[1])
    fs2 = fti.connect(fs.config.root)
    td2 = fs2.get_feature_view("small_fv", version=1).get_training_dataset(td.version)
    pd.testing.assert_frame_equal(td2.read("train")[0], train_before[0])
    pd.testing.assert_series_equal(td2.read("train")[1], train_before[1])
    fs2.close()


def test_compaction_commit_is_skipped_by_online_catch_up(fs: fti.FeatureStore) -> None:
    fg = _many(fs, 10, online=True)
    table = online_table(fg.spec)
    keys = [{"k": k} for k in range(17)]
    before = fg.read_online(keys)
    report = fg.compact(vacuum=True, retain_versions=1)
    online = fs._ctx.online
    # The compaction and vacuum commits are applied (they add no rows), nothing is rewritten.
    assert online.applied_versions(table) == set(range(fg.stats()["offline_version"] + 1))
    assert report.table_version in online.applied_versions(table)
    assert fg.read_online(keys) == before
    # A store that must replay an old version whose files the vacuum removed (its mark lost
    # in a crash, say) rebuilds from the latest snapshot instead of failing.
    with sqlite3.connect(fs.config.root / "online.db") as conn:
        conn.execute("DELETE FROM _fti_applied WHERE version = 3")
        conn.execute('DELETE FROM "small_v1" WHERE k < 5')
    assert 3 not in online.applied_versions(table)
    assert fs._ctx.offline.added_rows(fg.spec.key, 3) is None
    assert fs.get_feature_group("small").read_online(keys) == before
    assert 3 in online.applied_versions(table)
    fg.insert(_batch(50))
    assert fg.read_online(keys) != before


def test_inserts_compact_past_the_file_threshold(
    fs: fti.FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FTI_COMPACT_FILES", "8")
    fg = fs.feature_group("small", primary_key=["k"], event_time="t", online=True)
    reports = [fg.insert(_batch(i)) for i in range(20)]
    compacted = [i for i, r in enumerate(reports) if r.compaction is not None]
    assert compacted == [8, 16]  # 9 files > 8; then the big one + 8 small ones again
    assert "Compacted small v1: 9 -> 1 files" in str(reports[8])
    assert fg.stats()["files"] <= 9
    assert len(_frame(fg)) == 100
    monkeypatch.setenv("FTI_COMPACT_FILES", "lots")
    with pytest.raises(ConfigError, match="FTI_COMPACT_FILES"):
        fg.insert(_batch(21))


def test_fg_compact_cli(fs: fti.FeatureStore) -> None:
    _many(fs, 6)
    root = str(fs.config.root)
    result = CliRunner().invoke(app, ["fg", "compact", "small:1", "--root", root])
    assert result.exit_code == 0, result.output
    assert "6 -> 1 files" in result.output
    result = CliRunner().invoke(
        app, ["fg", "compact", "small", "--vacuum", "--retain-versions", "1", "--root", root]
    )
    assert result.exit_code == 0, result.output
    assert "vacuum deleted 6 files" in result.output
    result = CliRunner().invoke(
        app, ["fg", "compact", "small", "--vacuum", "--retain-versions", "0", "--root", root]
    )
    assert result.exit_code != 0  # the entry point prints this error without a traceback
    assert isinstance(result.exception, ValidationError)
    assert "retain_versions must be >= 1; got 0" in str(result.exception)


def test_compaction_is_fast_to_read_after(tmp_path: Path) -> None:
    """Not a timing test: the number of files a read opens drops to one."""
    fs = fti.connect(tmp_path / "s")
    fg = _many(fs, 40)
    assert fs._ctx.offline.file_count(fg.spec.key) == 40
    fg.compact()
    assert fs._ctx.offline.file_count(fg.spec.key) == 1
    fs.close()
