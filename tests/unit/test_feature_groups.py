"""Feature groups on the embedded store: get-or-create, insert, reads, schema evolution."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import fti


def ts(*hours: int) -> list[datetime]:
    return [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in hours]


def frame(origins: list[str], hours: list[int], temps: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"origin": origins, "time_hour": ts(*hours), "temp": temps})


def test_insert_read_and_online(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group("weather", primary_key=["origin"], event_time="time_hour", online=True)
    report = fg.insert(frame(["JFK", "LGA", "JFK"], [1, 1, 2], [1.0, 2.0, 3.0]))
    assert report.rows == 3
    assert report.offline_version == 1
    # Online rows, one per key: JFK's older row of the same insert never reaches the store.
    assert report.online_rows_changed == 2
    assert fg.schema == {"origin": "string", "time_hour": "timestamp", "temp": "float64"}
    history = fg.read()
    assert history["temp"].tolist() == [1.0, 2.0, 3.0]
    rows = fg.read_online([{"origin": "JFK"}, {"origin": "nope"}])
    assert rows[0] == {"origin": "JFK", "time_hour": ts(2)[0], "temp": 3.0}
    assert rows[1] is None


def test_accepts_polars_and_arrow(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group("t", primary_key=["id"], event_time="at")
    fg.insert(pl.DataFrame({"id": [1], "at": ts(0), "x": [0.5]}))
    fg.insert(pa.table({"id": [2], "at": pa.array(ts(1), pa.timestamp("ns", "UTC")), "x": [1.5]}))
    assert fg.read(format="polars")["x"].to_list() == [0.5, 1.5]
    assert fg.read(format="arrow").num_rows == 2


def test_correction_wins_and_older_never_overwrites(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group("w", primary_key=["origin"], event_time="time_hour", online=True)
    fg.insert(frame(["JFK"], [5], [1.0]))
    fg.insert(frame(["JFK"], [5], [9.0]))  # same key and time, later: a correction
    assert fg.read_online({"origin": "JFK"})[0]["temp"] == 9.0
    fg.insert(frame(["JFK"], [1], [-1.0]))  # older event time: must not win online
    assert fg.read_online({"origin": "JFK"})[0]["temp"] == 9.0
    # within one insert, the later row position wins a tie
    fg.insert(frame(["JFK", "JFK"], [7, 7], [10.0, 11.0]))
    assert fg.read_online({"origin": "JFK"})[0]["temp"] == 11.0


def test_ttl_applies_at_read_time(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group(
        "recent", primary_key=["k"], event_time="t", online=True, ttl=timedelta(hours=1)
    )
    now = datetime.now(UTC)
    fg.insert(
        pd.DataFrame({"k": [1, 2], "t": [now - timedelta(minutes=5), now - timedelta(hours=2)]})
    )
    rows = fg.read_online([{"k": 1}, {"k": 2}])
    assert rows[0] is not None
    assert rows[1] is None


def test_get_or_create_conflict_names_the_difference(fs: fti.FeatureStore) -> None:
    fs.feature_group("fg", primary_key=["a"], event_time="t")
    assert fs.feature_group("fg").primary_key == ["a"]
    with pytest.raises(fti.ConflictError, match=r"primary_key: stored \('a',\), given \('b',\)"):
        fs.feature_group("fg", primary_key=["b"], event_time="t")
    with pytest.raises(fti.NotFoundError, match=r"Existing versions: \[1\]"):
        fs.get_feature_group("fg", version=2)


def test_time_travel_by_version(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group("tt", primary_key=["origin"], event_time="time_hour")
    fg.insert(frame(["A"], [1], [1.0]))
    fg.insert(frame(["B"], [2], [2.0]))
    assert len(fg.read(version=1)) == 1
    assert len(fg.read()) == 2
    assert len(fg.read(as_of=datetime.now(UTC))) == 2


def test_start_end_filter(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group("se", primary_key=["origin"], event_time="time_hour")
    fg.insert(frame(["A", "A", "A"], [1, 2, 3], [1.0, 2.0, 3.0]))
    out = fg.read(start=ts(2)[0], end=ts(3)[0])
    assert out["temp"].tolist() == [2.0]


def test_add_features_in_place(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group("evo", primary_key=["origin"], event_time="time_hour", online=True)
    fg.insert(frame(["A"], [1], [1.0]))
    fg.add_features({"wind": "float64"})
    fg.insert(frame(["A"], [2], [2.0]).assign(wind=[7.0]))
    out = fg.read()
    assert out["wind"].isna().tolist() == [True, False]
    assert fg.read_online({"origin": "A"})[0]["wind"] == 7.0
    assert [e["type"] for e in fg.schema_history()] == [
        "created",
        "schema_inferred",
        "columns_added",
    ]


def test_delete_rows_offline_and_online(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group("del", primary_key=["origin"], event_time="time_hour", online=True)
    fg.insert(frame(["A", "B", "A"], [1, 1, 2], [1.0, 2.0, 3.0]))
    assert fg.delete_rows([{"origin": "A"}]) == 2
    assert fg.read()["origin"].tolist() == ["B"]
    assert fg.read_online([{"origin": "A"}, {"origin": "B"}])[0] is None


def test_snapshot_group_without_event_time(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group("planes", primary_key=["tailnum"], online=True)
    fg.insert(pd.DataFrame({"tailnum": ["N1", "N2"], "seats": [100, 200]}))
    fg.insert(pd.DataFrame({"tailnum": ["N1"], "seats": [150]}))
    assert fg.read_online({"tailnum": "N1"})[0] == {"tailnum": "N1", "seats": 150}


def test_composite_keys_do_not_collide(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group("ck", primary_key=["a", "b"], online=True)
    fg.insert(pd.DataFrame({"a": [1, 12], "b": ["23", "3"], "v": [1.0, 2.0]}))
    rows = fg.read_online([{"a": 1, "b": "23"}, {"a": 12, "b": "3"}, {"a": 1, "b": "3"}])
    assert [r["v"] if r else None for r in rows] == [1.0, 2.0, None]


def test_online_frame_format(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group("ff", primary_key=["k"], online=True)
    fg.insert(pd.DataFrame({"k": [1], "v": [0.5]}))
    df = fg.read_online([{"k": 1}, {"k": 2}], format="pandas")
    assert df["k"].tolist() == [1, 2]
    assert df["v"].iloc[0] == 0.5
    assert pd.isna(df["v"].iloc[1])


def test_catch_up_after_missing_online_write(fs: fti.FeatureStore) -> None:
    """Simulate a crash between the offline commit and the online write."""
    fg = fs.feature_group("cu", primary_key=["k"], event_time="t", online=True)
    fg.insert(pd.DataFrame({"k": [1], "t": ts(1), "v": [1.0]}))
    ctx = fs._ctx
    # commit offline only, as a killed process would have left it
    extra = pa.table(
        {
            "k": pa.array([1, 2], pa.int64()),
            "t": pa.array(ts(2, 2), pa.timestamp("us", "UTC")),
            "v": [5.0, 6.0],
            "_fti_seq": pa.array([10**19 // 10, 10**19 // 10 + 1], pa.int64()),
        }
    )
    ctx.offline.append(fg.spec.key, extra)
    fg2 = fs.get_feature_group("cu", version=1)  # opening catches up
    assert [r["v"] for r in fg2.read_online([{"k": 1}, {"k": 2}])] == [5.0, 6.0]


def test_rebuild_online_equals_before(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group("rb", primary_key=["k"], event_time="t", online=True)
    fg.insert(pd.DataFrame({"k": [1, 2, 1], "t": ts(1, 1, 3), "v": [1.0, 2.0, 3.0]}))
    before = fg.read_online([{"k": 1}, {"k": 2}])
    assert fg.rebuild_online() == 2
    assert fg.read_online([{"k": 1}, {"k": 2}]) == before


def test_empty_insert_writes_nothing(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group("e", primary_key=["k"], event_time="t")
    fg.insert(pd.DataFrame({"k": [1], "t": ts(1), "v": [1.0]}))
    report = fg.insert(pd.DataFrame({"k": [], "t": [], "v": []}))
    assert report.rows == 0
    assert "empty" in str(report)
    assert fg.stats()["offline_version"] == 1
