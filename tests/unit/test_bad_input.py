"""Bad input: each case gets an error naming the column/value and the fix, and writes nothing.

"Writes nothing" is checked against a snapshot taken before the rejected insert: the offline
table version and row count, the online rows of every known key, and the stored definition.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import fti
from fti.backends.online import OnlineTable

T0 = datetime(2024, 1, 1, tzinfo=UTC)
KEYS = [{"k": 1}, {"k": 2}, {"k": 3}]


def good(ks: list[int], hours: list[int], vs: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"k": ks, "t": [T0 + timedelta(hours=h) for h in hours], "v": vs})


@pytest.fixture
def fg(fs: fti.FeatureStore) -> fti.FeatureGroup:
    group = fs.feature_group("w", primary_key=["k"], event_time="t", online=True)
    group.insert(good([1, 2], [1, 1], [1.0, 2.0]))
    return group


def snapshot(fs: fti.FeatureStore, group: fti.FeatureGroup) -> dict[str, Any]:
    fresh = fs.get_feature_group(group.name, version=group.version)
    stats = fresh.stats()
    return {
        "offline_version": stats["offline_version"],
        "rows": stats["rows"],
        "read_rows": len(fresh.read(format="arrow")) if stats["rows"] else 0,
        "online": fresh.read_online(KEYS) if fresh.spec.online and fresh.spec.has_schema else None,
        "online_count": stats["online_rows"],
        "columns": fresh.spec.columns,
        "history": len(fresh.schema_history()),
    }


def ts(*hours: int) -> list[datetime]:
    return [T0 + timedelta(hours=h) for h in hours]


# (case id, frame, error type, regexes that must all appear in the message)
CASES: list[tuple[str, Any, type[Exception], list[str]]] = [
    (
        "wrong_column_type",
        pd.DataFrame({"k": [3], "t": ts(2), "v": ["hot"]}),
        fti.SchemaError,
        ["'v'", "string", "float64", "Cast it to float64"],
    ),
    (
        "wrong_key_type",
        pd.DataFrame({"k": ["three"], "t": ts(2), "v": [1.0]}),
        fti.SchemaError,
        ["'k'", "string", "int64", "Cast it"],
    ),
    (
        "not_a_frame",
        {"k": 3, "t": T0, "v": 1.0},
        fti.ValidationError,
        ["must be a pandas or polars DataFrame", "got dict"],
    ),
    (
        "pandas_series",
        pd.Series([1, 2]),
        fti.ValidationError,
        ["must be a DataFrame", "Series"],
    ),
    (
        "missing_primary_key",
        pd.DataFrame({"t": ts(2), "v": [1.0]}),
        fti.ValidationError,
        ["Primary key column 'k' is missing", r"Columns given: \['t', 'v'\]"],
    ),
    (
        "missing_event_time",
        pd.DataFrame({"k": [3], "v": [1.0]}),
        fti.ValidationError,
        ["Event time column 't' is missing", r"Columns given: \['k', 'v'\]"],
    ),
    (
        "null_key_pandas",
        pd.DataFrame({"k": [3, None], "t": ts(2, 3), "v": [1.0, 2.0]}),
        fti.ValidationError,
        ["Primary key column 'k'", "1 missing value", "row 1", "drop or fill"],
    ),
    (
        "null_key_arrow",
        pa.table(
            {
                "k": pa.array([None, 3], pa.int64()),
                "t": pa.array(ts(2, 3), pa.timestamp("us", "UTC")),
                "v": [1.0, 2.0],
            }
        ),
        fti.ValidationError,
        ["Primary key column 'k'", "1 missing value", "row 0", "drop or fill"],
    ),
    (
        "nan_key_pandas",
        pd.DataFrame({"k": [3.0, np.nan], "t": ts(2, 3), "v": [1.0, 2.0]}),
        fti.ValidationError,
        ["Primary key column 'k'", "NaN", "row 1", "drop or fill"],
    ),
    (
        "nan_key_arrow",
        pa.table(
            {
                "k": pa.array([3.0, float("nan")], pa.float64()),
                "t": pa.array(ts(2, 3), pa.timestamp("us", "UTC")),
                "v": [1.0, 2.0],
            }
        ),
        fti.ValidationError,
        ["Primary key column 'k'", "1 NaN value", "row 1", "Drop or fill"],
    ),
    (
        "naive_timestamps",
        pd.DataFrame({"k": [3], "t": [datetime(2024, 1, 1, 5)], "v": [1.0]}),
        fti.SchemaError,
        ["'t'", "naive timestamps", r"tz_localize\('UTC'\)"],
    ),
    (
        "null_timestamps",
        pd.DataFrame({"k": [3, 1], "t": [T0, None], "v": [1.0, 2.0]}),
        fti.ValidationError,
        ["Event time column 't'", "1 missing value", "row 1", "drop or fill"],
    ),
    (
        "duplicate_columns_pandas",
        pd.DataFrame([[3, T0, 1.0, 2.0]], columns=["k", "t", "v", "v"]),
        fti.ValidationError,
        [r"Duplicate column name\(s\) \['v'\]", "Rename or drop"],
    ),
    (
        "duplicate_columns_arrow",
        pa.Table.from_arrays(
            [
                pa.array([3]),
                pa.array(ts(2), pa.timestamp("us", "UTC")),
                pa.array([1.0]),
                pa.array([2.0]),
            ],
            names=["k", "t", "v", "v"],
        ),
        fti.ValidationError,
        [r"Duplicate column name\(s\) \['v'\]", "Rename or drop"],
    ),
    (
        "duplicate_columns_case_insensitive",
        pa.table(
            {
                "k": [3],
                "t": pa.array(ts(2), pa.timestamp("us", "UTC")),
                "v": [1.0],
                "V": [2.0],
            }
        ),
        fti.ValidationError,
        ["Duplicate column name 'V'", "clashes with 'v'", "Rename or drop"],
    ),
    (
        "not_an_identifier",
        pd.DataFrame({"k": [3], "t": ts(2), "a; DROP TABLE x": [1.0]}),
        fti.ValidationError,
        ["Invalid column name 'a; DROP TABLE x'", "letters, digits and underscores", "a_DROP"],
    ),
    (
        "reserved_prefix",
        pd.DataFrame({"k": [3], "t": ts(2), "_fti_seq": [1]}),
        fti.ValidationError,
        ["'_fti_seq'", "reserved", "Rename it"],
    ),
    (
        "unknown_column",
        pd.DataFrame({"k": [3], "t": ts(2), "v": [1.0], "gust": [2.0]}),
        fti.SchemaError,
        [r"Unknown column\(s\) \['gust'\]", "add_features"],
    ),
    (
        "value_out_of_range",
        pa.table(
            {
                "k": pa.array([2**63], pa.uint64()),
                "t": pa.array(ts(2), pa.timestamp("us", "UTC")),
                "v": [1.0],
            }
        ),
        fti.SchemaError,
        ["'k'", "cannot be stored as int64", "Convert the values"],
    ),
]


@pytest.mark.parametrize(
    ("data", "error", "patterns"),
    [pytest.param(d, e, p, id=i) for i, d, e, p in CASES],
)
def test_bad_insert_is_rejected_and_writes_nothing(
    fs: fti.FeatureStore,
    fg: fti.FeatureGroup,
    data: Any,
    error: type[Exception],
    patterns: list[str],
) -> None:
    before = snapshot(fs, fg)
    with pytest.raises(error) as info:
        fg.insert(data)
    message = str(info.value)
    for pattern in patterns:
        assert re.search(pattern, message), (pattern, message)
    assert snapshot(fs, fg) == before


# Without a stored schema these frames are valid: their types define the schema.
NEEDS_SCHEMA = {"wrong_column_type", "wrong_key_type", "unknown_column"}


@pytest.mark.parametrize(
    ("data", "error", "patterns"),
    [pytest.param(d, e, p, id=i) for i, d, e, p in CASES if i not in NEEDS_SCHEMA],
)
def test_bad_first_insert_stores_no_schema_and_creates_no_table(
    fs: fti.FeatureStore, data: Any, error: type[Exception], patterns: list[str]
) -> None:
    fresh = fs.feature_group("fresh", primary_key=["k"], event_time="t", online=True)
    with pytest.raises(error) as info:
        fresh.insert(data)
    assert re.search(patterns[0], str(info.value)), str(info.value)
    again = fs.get_feature_group("fresh", version=1)
    assert again.spec.columns == ()
    assert again.stats()["offline_version"] is None
    assert not fs._ctx.offline.exists(again.spec.key)
    assert fs._ctx.online.count(OnlineTable(again.spec.key, (), ())) == 0
    assert [e["type"] for e in again.schema_history()] == ["created"]


def test_empty_frame_is_allowed_writes_nothing_and_says_so(
    fs: fti.FeatureStore, fg: fti.FeatureGroup
) -> None:
    before = snapshot(fs, fg)
    for empty in (
        pd.DataFrame({"k": [], "t": [], "v": []}),
        pa.table({"k": pa.array([], pa.int64()), "t": pa.array([], pa.timestamp("us", "UTC"))}),
        [],
    ):
        report = fg.insert(empty)
        assert report.rows == 0
        assert report.offline_version is None
        assert report.online_rows_changed == 0
        assert "empty" in str(report)
        assert "Nothing was written" in str(report)
    assert snapshot(fs, fg) == before


def test_empty_frame_with_a_bad_column_name_is_still_rejected(fg: fti.FeatureGroup) -> None:
    with pytest.raises(fti.ValidationError, match="Invalid column name 'bad name'"):
        fg.insert(pd.DataFrame({"k": [], "bad name": []}))


def test_redefined_with_another_key_is_rejected_and_changes_nothing(
    fs: fti.FeatureStore, fg: fti.FeatureGroup
) -> None:
    before = snapshot(fs, fg)
    body_before = fs._ctx.registry.get("feature_group", "w", 1)
    with pytest.raises(fti.ConflictError) as info:
        fs.feature_group("w", primary_key=["v"], event_time="t", online=True)
    message = str(info.value)
    assert "primary_key: stored ('k',), given ('v',)" in message
    assert "version=2" in message  # the fix: a new version
    with pytest.raises(fti.ConflictError, match="event_time: stored 't', given 'v'"):
        fs.feature_group("w", primary_key=["k"], event_time="v")
    with pytest.raises(fti.ConflictError, match="column 'v': stored float64, given string"):
        fs.feature_group("w", primary_key=["k"], features={"v": "string"})
    assert fs._ctx.registry.get("feature_group", "w", 1) == body_before
    assert snapshot(fs, fg) == before


def test_schema_rejection_leaves_version_and_row_count_unchanged(
    fs: fti.FeatureStore, fg: fti.FeatureGroup
) -> None:
    fg.insert(good([3], [2], [3.0]))
    stats = fg.stats()
    assert (stats["offline_version"], stats["rows"]) == (2, 3)
    with pytest.raises(fti.SchemaError):
        fg.insert(good([1], [5], [9.0]).assign(v=["x"]))
    with pytest.raises(fti.SchemaError):
        fg.insert(good([1], [5], [9.0]).assign(extra=[1]))
    stats = fg.stats()
    assert (stats["offline_version"], stats["rows"]) == (2, 3)
    assert fs._ctx.offline.version(fg.spec.key) == 2
    assert len(fg.read()) == 3
    assert fg.read_online({"k": 1})[0]["v"] == 1.0


def test_declared_float_key_is_rejected(fs: fti.FeatureStore) -> None:
    with pytest.raises(fti.ValidationError, match=r"'k' is declared as float64.*int or string"):
        fs.feature_group("fk", primary_key=["k"], features={"k": "float64", "v": "float64"})
    with pytest.raises(fti.NotFoundError):
        fs.get_feature_group("fk")
