"""Labels from any feature group of the query (selected or not) or from the spine.

A label is joined point-in-time exactly like a feature (checked against a plain-Python oracle),
keeps the name given in ``labels=`` (the join's output name or the raw column name), is never a
model input (X, batch data, the model signature), and a feature group that gives only labels
need not be online for feature vectors.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

import fti

T0 = datetime(2025, 3, 1, tzinfo=UTC)
TTL = timedelta(hours=3)


def hours(h: float) -> datetime:
    return T0 + timedelta(hours=h)


@dataclass(frozen=True)
class Row:
    uid: int
    t: datetime
    order: int  # ingestion order: later inserts win at equal event times
    churned: int | None


@dataclass
class World:
    users: fti.FeatureGroup  # online: the model's inputs
    outcomes: fti.FeatureGroup  # offline only: the labels (and a note)
    rows: list[Row]  # every outcomes row written, in ingestion order


@pytest.fixture
def world(fs: fti.FeatureStore) -> World:
    rng = random.Random(5)
    users = fs.feature_group(
        "users",
        primary_key=["uid"],
        event_time="ts",
        online=True,
        features={"uid": "int64", "ts": "timestamp", "amount": "float64", "city": "string"},
    )
    users.insert(
        pd.DataFrame(
            {
                "uid": [1, 2, 3, 1, 2],
                "ts": [hours(h) for h in (0, 1, 2, 4, 6)],
                "amount": [10.0, 20.0, 30.0, 11.0, 21.0],
                "city": ["a", "b", "a", "a", "c"],
            }
        )
    )
    outcomes = fs.feature_group(
        "outcomes",
        primary_key=["uid"],
        event_time="ts",
        ttl=TTL,
        features={"uid": "int64", "ts": "timestamp", "churned": "int64", "note": "string"},
    )
    rows: list[Row] = []
    for _ in range(3):  # three inserts: later ones correct earlier rows at the same time
        batch = [
            Row(rng.randint(1, 4), hours(rng.choice([0, 1, 1.5, 2, 3, 5])), 0, rng.randint(0, 1))
            for _ in range(6)
        ]
        outcomes.insert(
            pd.DataFrame(
                {
                    "uid": [r.uid for r in batch],
                    "ts": [r.t for r in batch],
                    "churned": [r.churned for r in batch],
                    "note": [f"n{r.uid}" for r in batch],
                }
            )
        )
        rows += [Row(r.uid, r.t, len(rows) + i, r.churned) for i, r in enumerate(batch)]
    return World(users, outcomes, rows)


def oracle(rows: list[Row], uid: int, t: datetime) -> int | None:
    """The label as of ``t``: the latest (time, ingestion order) row with time <= t within the
    ttl, written independently of the engine."""
    best: Row | None = None
    for r in rows:
        if r.uid == uid and r.t <= t and (best is None or (r.t, r.order) > (best.t, best.order)):
            best = r
    if best is None or best.t < t - TTL:
        return None
    return best.churned


def spine() -> pd.DataFrame:
    pairs = [(u, h) for u in (1, 2, 3, 4, 9) for h in (0.5, 1.5, 2, 3, 4.5, 6, 9)]
    return pd.DataFrame({"uid": [u for u, _ in pairs], "ts": [hours(h) for _, h in pairs]})


def _values(column: pd.Series) -> list[Any]:
    return [None if pd.isna(v) else int(v) for v in column]


# ------------------------------------------------------------------------- resolution
def test_label_of_a_joined_group_not_selected_by_raw_or_prefixed_name(
    fs: fti.FeatureStore, world: World
) -> None:
    for name in ("churned", "o_churned"):
        fv = fs.feature_view(
            f"v_{name}",
            query=world.users.select(["amount"]).join(
                world.outcomes.select([]), on=["uid"], prefix="o_"
            ),
            labels=[name],
        )
        assert fv.features == ["amount"]
        df = fv.training_data(spine=spine())
        assert list(df.columns) == ["uid", "ts", "amount", name]
        expected = [oracle(world.rows, u, t) for u, t in zip(df["uid"], df["ts"], strict=True)]
        assert _values(df[name]) == expected
        assert any(v is not None for v in expected)
        assert any(v is None for v in expected)


def test_selected_label_of_a_joined_group_is_a_label_not_a_feature(
    fs: fti.FeatureStore, world: World
) -> None:
    query = world.users.select(["amount"]).join(
        world.outcomes.select(["churned", "note"]), on=["uid"], prefix="o_"
    )
    fv = fs.feature_view("sel", query=query, labels=["o_churned"])
    assert fv.features == ["amount", "o_note"]
    df = fv.training_data(spine=spine())
    assert list(df.columns) == ["uid", "ts", "amount", "o_note", "o_churned"]
    expected = [oracle(world.rows, u, t) for u, t in zip(df["uid"], df["ts"], strict=True)]
    assert _values(df["o_churned"]) == expected
    # By its raw name: the label is named as given, the prefixed column is gone.
    raw = fs.feature_view("sel_raw", query=query, labels=["churned"])
    assert raw.features == ["amount", "o_note"]
    df = raw.training_data(spine=spine())
    assert list(df.columns) == ["uid", "ts", "amount", "o_note", "churned"]
    assert _values(df["churned"]) == expected
    with pytest.raises(fti.ValidationError, match="no feature"):
        fs.feature_view(
            "bad", query=query, labels=["churned"], transformations={"o_churned": fti.impute_mean()}
        )


def test_label_of_the_left_group_joined_from_its_own_rows_without_a_spine(
    fs: fti.FeatureStore, world: World
) -> None:
    """The label group as the left-most group (its rows are the spine), features joined."""
    fv = fs.feature_view(
        "left",
        query=world.outcomes.select(["note"]).join(world.users.select(["amount"]), on=["uid"]),
        labels=["churned"],
    )
    df = fv.training_data()
    # One row per outcomes row of the corrected history (the last ingested per key and time),
    # in (time, ingestion) order; the label is the row's own.
    last: dict[tuple[object, object], Any] = {}
    for r in sorted(world.rows, key=lambda r: r.order):
        last[(r.uid, r.t)] = r
    chosen = sorted(last.values(), key=lambda r: (r.t, r.order))
    assert list(zip(df["uid"], df["ts"], strict=True)) == [(r.uid, r.t) for r in chosen]
    assert _values(df["churned"]) == [r.churned for r in chosen]
    assert fv.features == ["note", "amount"]


def test_ambiguous_label_names_both_groups_and_the_fix(fs: fti.FeatureStore, world: World) -> None:
    other = fs.feature_group(
        "other",
        primary_key=["uid"],
        event_time="ts",
        features={"uid": "int64", "ts": "timestamp", "churned": "int64"},
    )
    query = (
        world.users.select(["amount"])
        .join(world.outcomes.select([]), on=["uid"], prefix="o_")
        .join(other.select([]), on=["uid"], prefix="x_")
    )
    with pytest.raises(fti.ValidationError) as e:
        fs.feature_view("amb", query=query, labels=["churned"])
    text = str(e.value)
    assert "feature group 'outcomes'" in text
    assert "feature group 'other'" in text
    assert "labels=['o_churned']" in text
    from fti.definitions.feature_view import LabelSource

    ok = fs.feature_view("ok", query=query, labels=["x_churned"])
    assert ok.spec.label_sources == (LabelSource("x_churned", 2, "churned"),)
    # Two joins without a prefix give the same output name: the fix is a prefix.
    bare = (
        world.users.select(["amount"])
        .join(world.outcomes.select([]), on=["uid"])
        .join(other.select([]), on=["uid"])
    )
    with pytest.raises(fti.ValidationError, match="prefix"):
        fs.feature_view("amb2", query=bare, labels=["churned"])


def test_output_name_wins_over_raw_name(fs: fti.FeatureStore, world: World) -> None:
    """A left-group column named like a prefixed group's raw column: the name decides."""
    left = fs.feature_group(
        "events",
        primary_key=["uid"],
        event_time="ts",
        features={"uid": "int64", "ts": "timestamp", "churned": "int64", "v": "float64"},
    )
    left.insert(pd.DataFrame({"uid": [1], "ts": [hours(2)], "churned": [7], "v": [1.0]}))
    query = left.select(["v"]).join(world.outcomes.select([]), on=["uid"], prefix="o_")
    mine = fs.feature_view("mine", query=query, labels=["churned"]).training_data()
    assert mine["churned"].tolist() == [7]
    theirs = fs.feature_view("theirs", query=query, labels=["o_churned"]).training_data()
    assert _values(theirs["o_churned"]) == [oracle(world.rows, 1, hours(2))]


def test_keys_event_times_and_on_demand_inputs_are_never_labels(
    fs: fti.FeatureStore, world: World
) -> None:
    query = world.users.select(["amount"]).join(world.outcomes.select([]), on=["uid"], prefix="o_")
    with pytest.raises(fti.ValidationError, match="entity column 'uid'"):
        fs.feature_view("k", query=query, labels=["uid"])

    @fti.on_demand(inputs=["churned"], dtype="int64")
    def leak(churned: int | None) -> int | None:
        return churned

    with pytest.raises(fti.ValidationError, match="never a model input"):
        fs.feature_view("od", query=query, labels=["churned"], on_demand=[leak])


# ------------------------------------------------------------------------- spine labels
def test_spine_label_still_works_and_a_spine_column_wins(
    fs: fti.FeatureStore, world: World
) -> None:
    query = world.users.select(["amount"]).join(world.outcomes.select([]), on=["uid"], prefix="o_")
    fv = fs.feature_view("sp", query=query, labels=["target"])
    s = spine()
    s["target"] = list(range(len(s)))
    df = fv.training_data(spine=s)
    assert df["target"].tolist() == list(range(len(s)))
    with pytest.raises(fti.ValidationError, match="spine"):
        fv.training_data()
    td = fv.create_training_dataset(spine=s, split={"train": 0.5, "test": 0.5}, seed=1)
    X, y = td.read("train")
    raw = td.read_raw("train")
    assert list(X.columns) == ["amount"]
    assert y.tolist() == raw["target"].tolist()
    # A spine column named like a group's label is the label.
    fv2 = fs.feature_view("sp2", query=query, labels=["churned"])
    s2 = spine().assign(churned=5)
    assert set(fv2.training_data(spine=s2)["churned"]) == {5}


# ------------------------------------------------------------------------- model inputs
def test_label_is_never_in_x_batch_data_or_the_signature(
    fs: fti.FeatureStore, world: World
) -> None:
    from sklearn.tree import DecisionTreeClassifier

    query = world.users.select(["amount", "city"]).join(
        world.outcomes.select(["churned"]), on=["uid"], prefix="o_"
    )
    fv = fs.feature_view("m", query=query, labels=["o_churned"])
    s = spine()
    s = s[s["uid"] != 9].reset_index(drop=True)
    td = fv.create_training_dataset(spine=s, split={"train": 0.6, "test": 0.4}, seed=2)
    X, y = td.read("train")
    raw = td.read_raw("train")
    assert list(X.columns) == ["amount", "city"]
    assert y.name == "o_churned"
    assert _values(y) == [
        oracle(world.rows, u, t) for u, t in zip(raw["uid"], raw["ts"], strict=True)
    ]
    batch = fv.batch_data(spine=s)
    assert list(batch.columns) == ["amount", "city"]
    assert "o_churned" not in fv.batch_data(spine=s, with_entities=True).columns
    # A model on the numeric input, the label named by its raw column name.
    fv_amount = fs.feature_view(
        "m2",
        query=world.users.select(["amount"]).join(
            world.outcomes.select(["churned"]), on=["uid"], prefix="o_"
        ),
        labels=["churned"],
    )
    td2 = fv_amount.create_training_dataset(spine=s)
    X2, y2 = td2.read("train")
    assert list(X2.columns) == ["amount"]
    clf = DecisionTreeClassifier(max_depth=2).fit(X2, y2.fillna(0))
    mv = fs.models.register("churn", clf, feature_view=fv_amount, training_dataset=td2)
    assert mv.spec.signature.input_names == ["amount"]
    assert [(f.name, f.dtype) for f in mv.spec.signature.outputs] == [("churned", "int64")]


# ------------------------------------------------------------------------- online
def test_feature_vector_skips_an_offline_label_only_group(
    fs: fti.FeatureStore, world: World
) -> None:
    assert not world.outcomes.spec.online
    query = world.users.select(["amount"]).join(world.outcomes.select([]), on=["uid"], prefix="o_")
    fv = fs.feature_view("online", query=query, labels=["churned"])
    assert fv.feature_vector({"uid": 1}) == {"amount": 11.0}
    assert fv.feature_vectors([{"uid": 2}, {"uid": 3}], format="list") == [[21.0], [30.0]]
    # A selected label of an offline group: still only a label, still skipped.
    sel = fs.feature_view(
        "online_sel",
        query=world.users.select(["amount"]).join(
            world.outcomes.select(["churned"]), on=["uid"], prefix="o_"
        ),
        labels=["o_churned"],
    )
    assert sel.feature_vector({"uid": 1}) == {"amount": 11.0}
    # A group that gives a model input must still be online, and says so.
    feat = fs.feature_view(
        "online_feat",
        query=world.users.select(["amount"]).join(
            world.outcomes.select(["note"]), on=["uid"], prefix="o_"
        ),
        labels=["churned"],
    )
    with pytest.raises(fti.ValidationError, match="'outcomes' version 1 is not online"):
        feat.feature_vector({"uid": 1})


def test_feature_vector_with_an_offline_label_group_as_the_left_most(
    fs: fti.FeatureStore, world: World
) -> None:
    fv = fs.feature_view(
        "left_online",
        query=world.outcomes.select([]).join(world.users.select(["amount"]), on=["uid"]),
        labels=["churned"],
    )
    assert fv.feature_vector({"uid": 1}) == {"amount": 11.0}
    # The left-most group is not read: an unknown key gives nulls, as the join would.
    assert fv.feature_vector({"uid": 99}) == {"amount": None}
    with pytest.raises(fti.ValidationError, match="uid"):
        fv.feature_vector({"user": 1})


def test_a_label_name_must_not_shadow_a_column(fs: fti.FeatureStore, world: World) -> None:
    """Names are compared case-insensitively (as SQL does): a raw label name that differs from
    a selected column only by case is rejected, naming both."""
    left = fs.feature_group(
        "shadow",
        primary_key=["uid"],
        event_time="ts",
        features={"uid": "int64", "ts": "timestamp", "CHURNED": "int64"},
    )
    query = left.select(["CHURNED"]).join(world.outcomes.select([]), on=["uid"], prefix="o_")
    with pytest.raises(fti.ValidationError, match=r"'churned'.*'CHURNED'.*output name"):
        fs.feature_view("shadow", query=query, labels=["churned"])
    assert fs.feature_view("fine", query=query, labels=["o_churned"]).features == ["CHURNED"]
