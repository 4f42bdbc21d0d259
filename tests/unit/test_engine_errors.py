"""Errors of the engines fti drives reach users as fti errors: readable, naming the column or
table, without the SQL fti generated, the original kept as ``__cause__``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

import fti
from fti._internal.error_translation import engine_errors

SQL_WORDS = ("SELECT", "INSERT", "CAST(", "range(3)", "LINE 1")


def no_sql(error: BaseException) -> None:
    for word in SQL_WORDS:
        assert word not in str(error), str(error)


@pytest.fixture
def fg(fs: fti.FeatureStore) -> fti.FeatureGroup:
    group = fs.feature_group("g", version=1, primary_key=["k"], event_time="t", online=True)
    group.insert(
        pa.table(
            {
                "k": pa.array([1], pa.int32()),
                "x": pa.array([1], pa.int32()),
                "t": pa.array([datetime(2024, 1, 1, tzinfo=UTC)]),
            }
        )
    )
    return group


def test_an_out_of_range_key_for_an_int32_column_names_the_column(
    fs: fti.FeatureStore, fg: fti.FeatureGroup
) -> None:
    for value in (2**40, 2**70, -(2**31) - 1):
        with pytest.raises(fti.ValidationError, match=r"Key 'k' .* int32 range") as err:
            fg.read_online([{"k": value}])
        assert str(value) in str(err.value)
    fv = fs.feature_view("v", version=1, query=fg.select_all())
    with pytest.raises(fti.ValidationError, match="Key 'k'"):
        fv.feature_vector({"k": 2**70})
    assert fg.read_online([{"k": 2**31 - 1}]) == [None]  # the edge of the range is a key


def test_an_int_too_large_for_arrow_names_the_column(
    fs: fti.FeatureStore, fg: fti.FeatureGroup
) -> None:
    now = datetime.now(UTC)
    with pytest.raises(fti.ValidationError, match=r"Column 'x' of the insert into 'g'") as err:
        fg.insert([{"k": 2, "x": 2**70, "t": now}])
    assert isinstance(err.value.__cause__, OverflowError)
    with pytest.raises(fti.ValidationError, match="Column 'x'"):
        fg.insert(pd.DataFrame({"k": [2], "x": [2**70], "t": [now]}))
    fv = fs.feature_view("v", version=1, query=fg.select_all())
    with pytest.raises(fti.ValidationError, match=r"Column 'k' of the spine"):
        fv.training_data(spine=pd.DataFrame({"k": [2**70], "t": [now]}))
    assert len(fg.read()) == 1  # nothing written


@pytest.mark.parametrize("version", [-1, 10**20, 7])
def test_a_table_version_out_of_range_is_not_found(fg: fti.FeatureGroup, version: int) -> None:
    with pytest.raises(fti.NotFoundError, match=rf"no version {version}; versions are 0 to 1"):
        fg.read(version=version)


def test_a_damaged_delta_log_is_an_integrity_error(
    fs: fti.FeatureStore, fg: fti.FeatureGroup
) -> None:
    logs = sorted((fs.config.root / "offline" / "g_v1" / "_delta_log").glob("*.json"))
    logs[-1].write_text("{not json")
    with fti.connect(fs.config.root) as other, pytest.raises(fti.IntegrityError) as err:
        other.get_feature_group("g", version=1).read()
    assert "'g_v1'" in str(err.value)
    assert type(err.value.__cause__).__module__.split(".")[0] in ("deltalake", "_internal")


def test_duckdb_errors_become_fti_errors_without_sql(tmp_path: Path) -> None:
    @engine_errors("computing something")
    def run(sql: str) -> object:
        return duckdb.sql(sql).fetchall()

    with pytest.raises(fti.ValidationError, match="while computing something") as bad_value:
        run("SELECT CAST('abc' AS INTEGER)")
    no_sql(bad_value.value)
    assert isinstance(bad_value.value.__cause__, duckdb.ConversionException)

    @engine_errors("reading offline table {}", name_arg=0)
    def out_of_memory(table: str) -> None:
        raise duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate 1 GiB")

    with pytest.raises(fti.BackendUnavailableError, match=r"offline table 'big'.*FTI_DUCKDB"):
        out_of_memory("big")

    with pytest.raises(fti.FtiError, match="bug in fti") as bug:
        run("SELECT no_such_column FROM range(3)")
    no_sql(bug.value)

    @engine_errors("doing nothing")
    def plain() -> None:
        raise KeyError("not an engine error")

    with pytest.raises(KeyError):  # other exceptions pass through unchanged
        plain()
