"""fg.read()'s three modes after a re-backfill, missing columns, partial inserts (offline and
online) and idempotent add_features (issue #11, items 2, 3 and 6)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

import fti

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def ts(*hours: int) -> list[datetime]:
    return [T0 + timedelta(hours=h) for h in hours]


def payments(fs: fti.FeatureStore) -> fti.FeatureGroup:
    return fs.feature_group(
        "payments",
        primary_key=["user"],
        event_time="at",
        online=True,
        features={"user": "string", "at": "timestamp", "amount": "float64", "n": "int64"},
    )


def backfill(amounts: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {"user": ["u1", "u1", "u2"], "at": ts(0, 1, 0), "amount": amounts, "n": [1, 2, 3]}
    )


# ----------------------------------------------------------------------------- reads


def test_a_rebackfill_reads_once_per_key_and_event_time(fs: fti.FeatureStore) -> None:
    fg = payments(fs)
    fg.insert(backfill([1.0, 2.0, 3.0]))
    time.sleep(0.05)  # Delta resolves as_of to a commit with millisecond timestamps
    between = datetime.now(UTC)
    time.sleep(0.05)
    fg.insert(backfill([10.0, 20.0, 30.0]))  # the same keys and times again: corrections

    history = fg.read()
    assert list(zip(history["user"], history["amount"], strict=True)) == [
        ("u1", 10.0),
        ("u2", 30.0),
        ("u1", 20.0),
    ]
    current = fg.read(latest=True)
    assert sorted(zip(current["user"], current["amount"], strict=True)) == [
        ("u1", 20.0),
        ("u2", 30.0),
    ]
    audit = fg.read(include_superseded=True)
    assert len(audit) == 6
    assert audit["_fti_superseded"].tolist() == [True, True, False, False, True, False]
    assert audit["_fti_seq"].is_unique
    # The state before hour 1: filters first, then the mode.
    before = fg.read(latest=True, end=ts(1)[0])
    assert sorted(before["amount"].tolist()) == [10.0, 30.0]
    # Time travel works in every mode.
    assert fg.read(version=1)["amount"].tolist() == [1.0, 3.0, 2.0]
    assert len(fg.read(version=1, include_superseded=True)) == 3
    assert fg.read(as_of=between, latest=True)["amount"].tolist() == [3.0, 2.0]
    stats = fg.stats()
    assert (stats["rows"], stats["history_rows"], stats["current_rows"]) == (6, 3, 2)


def test_latest_and_include_superseded_are_exclusive(fs: fti.FeatureStore) -> None:
    fg = payments(fs)
    fg.insert(backfill([1.0, 2.0, 3.0]))
    with pytest.raises(fti.errors.ValidationError, match=r"either latest=True .* not both"):
        fg.read(latest=True, include_superseded=True)


def test_a_group_without_event_time_reads_its_last_row_per_key(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group("planes", primary_key=["tail"])
    fg.insert(pd.DataFrame({"tail": ["N1", "N2"], "seats": [50, 60]}))
    fg.insert(pd.DataFrame({"tail": ["N1"], "seats": [55]}))
    assert fg.read()["seats"].tolist() == [60, 55]
    assert fg.read(latest=True)["seats"].tolist() == [60, 55]
    assert fg.read(include_superseded=True)["_fti_superseded"].tolist() == [True, False, False]


def test_an_empty_group_reads_empty_in_every_mode(fs: fti.FeatureStore) -> None:
    fg = payments(fs)
    assert fg.read().columns.tolist() == ["user", "at", "amount", "n"]
    assert fg.read(latest=True).empty
    assert fg.read(include_superseded=True).columns.tolist()[-2:] == [
        "_fti_seq",
        "_fti_superseded",
    ]


# ----------------------------------------------------------------------------- missing columns


def test_a_missing_feature_column_is_an_error_and_writes_nothing(fs: fti.FeatureStore) -> None:
    fg = payments(fs)
    fg.insert(backfill([1.0, 2.0, 3.0]))
    before = fg.stats()["offline_version"]
    frame = pd.DataFrame({"user": ["u1"], "at": ts(1), "n": [7]})  # no "amount"
    with pytest.raises(fti.errors.SchemaError) as err:
        fg.insert(frame)
    message = str(err.value)
    assert "lacks feature column(s) ['amount']" in message
    assert "partial=True" in message
    assert fg.stats()["offline_version"] == before
    assert fg.read_online({"user": "u1"})[0]["amount"] == 2.0
    assert fg.read()["amount"].tolist() == [1.0, 3.0, 2.0]


def test_a_rejected_partial_insert_writes_nothing(fs: fti.FeatureStore) -> None:
    fg = payments(fs)
    fg.insert(backfill([1.0, 2.0, 3.0]))
    before = fg.stats()["offline_version"]
    with pytest.raises(fti.errors.ValidationError, match="Event time column 'at' is missing"):
        fg.insert(pd.DataFrame({"user": ["u1"], "amount": [5.0]}), partial=True)
    with pytest.raises(fti.errors.SchemaError, match="Unknown column"):
        fg.insert(pd.DataFrame({"user": ["u1"], "at": ts(1), "bogus": [1]}), partial=True)
    assert fg.stats()["offline_version"] == before


# ----------------------------------------------------------------------------- partial inserts


def test_a_partial_insert_keeps_the_stored_values_offline_and_online(
    fs: fti.FeatureStore,
) -> None:
    fg = payments(fs)
    fg.insert(backfill([1.0, 2.0, 3.0]))  # u1: (h0, 1.0, n=1), (h1, 2.0, n=2); u2: (h0, 3.0, 3)
    # u1 at hour 1 (a correction of "amount" only), u1 at hour 5 (new), u2 at hour 0, u3 new.
    fg.insert(
        pd.DataFrame(
            {"user": ["u1", "u1", "u2", "u3"], "at": ts(1, 5, 0, 2), "amount": [9.0, 8.0, 7.0, 6.0]}
        ),
        partial=True,
    )
    got = [tuple(r.values()) for r in fg.read(format="arrow").to_pylist()]
    assert got == [
        ("u1", ts(0)[0], 1.0, 1),
        ("u2", ts(0)[0], 7.0, 3),  # n kept from the stored row at that time
        ("u1", ts(1)[0], 9.0, 2),
        ("u3", ts(2)[0], 6.0, None),  # no stored row: null
        ("u1", ts(5)[0], 8.0, 2),  # n of u1's greatest stored row at or before hour 5
    ]
    assert fg.read_online({"user": "u1"})[0] == {
        "user": "u1",
        "at": ts(5)[0],
        "amount": 8.0,
        "n": 2,
    }
    assert fg.read_online({"user": "u3"})[0]["n"] is None
    assert fg.stats()["rows"] == 7  # full-width rows were appended


def test_an_older_partial_insert_does_not_overwrite_the_newer_online_row(
    fs: fti.FeatureStore,
) -> None:
    fg = payments(fs)
    fg.insert(
        pd.DataFrame({"user": ["u1", "u1"], "at": ts(0, 5), "amount": [1.0, 5.0], "n": [10, 50]})
    )
    fg.insert(pd.DataFrame({"user": ["u1"], "at": ts(2), "n": [20]}), partial=True)
    # Online still holds hour 5; offline hour 2 took "amount" from hour 0, not hour 5.
    assert fg.read_online({"user": "u1"})[0] == {
        "user": "u1",
        "at": ts(5)[0],
        "amount": 5.0,
        "n": 50,
    }
    history = fg.read()
    assert history["amount"].tolist() == [1.0, 1.0, 5.0]
    assert history["n"].tolist() == [10, 20, 50]
    # A rebuild from the offline table agrees.
    fg.rebuild_online()
    assert fg.read_online({"user": "u1"})[0]["amount"] == 5.0


def test_a_partial_insert_into_a_group_without_event_time(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group(
        "planes",
        primary_key=["tail"],
        online=True,
        features={"tail": "string", "seats": "int64", "model": "string"},
    )
    fg.insert(pd.DataFrame({"tail": ["N1"], "seats": [50], "model": ["A320"]}))
    fg.insert(pd.DataFrame({"tail": ["N1", "N2"], "seats": [55, 70]}), partial=True)
    assert fg.read(format="arrow").column("model").to_pylist() == ["A320", None]
    assert fg.read_online({"tail": "N1"})[0] == {"tail": "N1", "seats": 55, "model": "A320"}


def test_a_partial_insert_into_an_empty_group_writes_nulls(fs: fti.FeatureStore) -> None:
    fg = payments(fs)
    fg.insert(pd.DataFrame({"user": ["u1"], "at": ts(0), "amount": [1.0]}), partial=True)
    assert fg.read_online({"user": "u1"})[0]["n"] is None


# ----------------------------------------------------------------------------- add_features


def test_add_features_with_existing_columns_of_the_same_type_is_a_no_op(
    fs: fti.FeatureStore,
) -> None:
    fg = payments(fs)
    fg.insert(backfill([1.0, 2.0, 3.0]))
    version = fg.stats()["offline_version"]
    events = len(fg.schema_history())
    fg.add_features({"amount": "float64", "n": "int64"})
    assert fg.stats()["offline_version"] == version
    assert len(fg.schema_history()) == events
    # Existing ones are skipped, new ones added.
    fg.add_features({"amount": "float64", "tip": "float64"})
    assert list(fg.schema) == ["user", "at", "amount", "n", "tip"]
    assert [c["name"] for c in fg.schema_history()[-1]["columns"]] == ["tip"]


def test_add_features_with_another_type_says_which_types_differ(fs: fti.FeatureStore) -> None:
    fg = payments(fs)
    fg.insert(backfill([1.0, 2.0, 3.0]))
    version = fg.stats()["offline_version"]
    with pytest.raises(fti.errors.SchemaError) as err:
        fg.add_features({"amount": "float64", "n": "string", "tip": "float64"})
    message = str(err.value)
    assert "'n' is stored as int64, given string" in message
    assert "'amount'" not in message
    assert "version=2" in message
    assert "tip" not in fg.schema  # nothing added
    assert fg.stats()["offline_version"] == version


# ----------------------------------------------------------------------------- internal readers


def test_training_data_without_a_spine_uses_the_corrected_history(fs: fti.FeatureStore) -> None:
    fg = payments(fs)
    fg.insert(backfill([1.0, 2.0, 3.0]))
    fg.insert(backfill([10.0, 20.0, 30.0]))  # a re-backfill: every row corrected
    other = fs.feature_group("users", primary_key=["user"])
    other.insert(pd.DataFrame({"user": ["u1", "u2"], "age": [30, 40]}))
    fv = fs.feature_view(
        "spend", query=fg.select(["amount"]).join(other.select_all(), on=["user"]), labels=["n"]
    )
    rows = fv.training_data()
    assert list(zip(rows["user"], rows["amount"], rows["age"], strict=True)) == [
        ("u1", 10.0, 30),
        ("u2", 30.0, 40),
        ("u1", 20.0, 30),
    ]
    window = fv.training_data(start=ts(1)[0], end=ts(2)[0])
    assert window["amount"].tolist() == [20.0]
    td = fv.create_training_dataset()
    assert td.read_raw()["amount"].tolist() == [10.0, 30.0, 20.0]
