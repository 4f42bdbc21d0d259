"""Feature views: queries, get-or-create, point-in-time training data, no leakage, filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import fti
from fti.definitions.query import Query

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


@fti.on_demand(inputs=["w_temp"], request=["offset"], dtype="float64")
def shifted_temp(w_temp: float | None, offset: float | None) -> float | None:
    """A module-level on-demand feature (stored by reference)."""
    return None if w_temp is None or offset is None else w_temp + offset


@pytest.fixture
def groups(fs: fti.FeatureStore) -> tuple[fti.FeatureGroup, fti.FeatureGroup]:
    flights = fs.feature_group("flights", primary_key=["flight"], event_time="dep")
    flights.insert(
        pd.DataFrame(
            {
                "flight": [1, 2, 3, 1],
                "dep": [hours(1), hours(2), hours(3), hours(5)],
                "origin": ["JFK", "LGA", "JFK", "LGA"],
                "distance": [100.0, 200.0, 300.0, 400.0],
                "delayed": [0, 1, 0, 1],
            }
        )
    )
    weather = fs.feature_group(
        "weather", primary_key=["origin"], event_time="hour", ttl=timedelta(hours=2)
    )
    weather.insert(
        pd.DataFrame(
            {
                "origin": ["JFK", "JFK", "LGA"],
                "hour": [hours(0), hours(2.5), hours(1)],
                "temp": [1.0, 2.0, 3.0],
            }
        )
    )
    return flights, weather


def test_select_variants_build_queries(
    groups: tuple[fti.FeatureGroup, fti.FeatureGroup],
) -> None:
    flights, weather = groups
    assert flights.select(["distance"]).left.features == ("distance",)
    assert flights.select_all().left.features == ("origin", "distance", "delayed")
    assert flights.select_except(["delayed"]).left.features == ("origin", "distance")
    with pytest.raises(fti.ValidationError, match="no column"):
        flights.select(["nope"])
    with pytest.raises(fti.ValidationError, match="prefix"):
        flights.select(["origin"]).join(weather.select_all(), on=["origin"]).join(
            weather.select_all(), on=["origin"]
        )
    with pytest.raises(fti.ValidationError, match="primary key"):
        flights.select(["distance"]).join(weather.select_all(), on=["distance"])
    q = flights.select(["distance"]).join(weather.select_all(), on=["origin"], prefix="w_")
    assert q.output_columns() == ["flight", "dep", "origin", "distance", "w_temp"]


def test_query_is_serialisable_data(
    fs: fti.FeatureStore, groups: tuple[fti.FeatureGroup, fti.FeatureGroup]
) -> None:
    flights, weather = groups
    q = (
        flights.select(["distance"])
        .join(weather.select(["temp"]), on=["origin"], prefix="w_")
        .filter(fti.col("distance") >= 150.0, fti.col("temp").not_null())
    )
    specs = {(g.name, g.version): g.spec for g in (flights, weather)}
    again = Query.from_dict(q.to_dict(), lambda n, v: specs[(n, v)])
    assert again == q
    assert again.to_dict() == q.to_dict()
    with pytest.raises(AttributeError):
        q.left = q.left  # type: ignore[misc]


def test_feature_view_get_or_create(
    fs: fti.FeatureStore, groups: tuple[fti.FeatureGroup, fti.FeatureGroup]
) -> None:
    flights, weather = groups
    q = flights.select(["distance"]).join(weather.select_all(), on=["origin"], prefix="w_")
    fv = fs.feature_view("delays", query=q, labels=["delayed"])
    assert fv.features == ["distance", "w_temp"]
    again = fs.feature_view("delays", query=q, labels=["delayed"])
    assert again.spec.to_dict() == fv.spec.to_dict()
    assert fs.feature_view("delays").labels == ["delayed"]
    assert fs.get_feature_view("delays", version=1).features == fv.features
    with pytest.raises(fti.ConflictError, match="labels"):
        fs.feature_view("delays", query=q, labels=["distance_label"])
    with pytest.raises(fti.NotFoundError, match="does not exist"):
        fs.get_feature_view("nope")
    # A selected label is a label, not a model input (tests/unit/test_labels.py has more).
    sel = fs.feature_view("sel", query=flights.select(["delayed", "distance"]), labels=["delayed"])
    assert (sel.features, sel.labels) == (["distance"], ["delayed"])
    with pytest.raises(fti.ValidationError, match="no feature"):
        fs.feature_view(
            "bad2", query=q, labels=["delayed"], transformations={"delayed": fti.standard_scaler()}
        )
    fs.feature_view("delays", version=2, query=flights.select(["distance"]))
    listed = [(v.name, v.version) for v in fs.feature_views()]
    assert listed == [("delays", 1), ("delays", 2), ("sel", 1)]


def test_training_data_point_in_time(
    fs: fti.FeatureStore, groups: tuple[fti.FeatureGroup, fti.FeatureGroup]
) -> None:
    flights, weather = groups
    q = flights.select(["distance"]).join(weather.select_all(), on=["origin"], prefix="w_")
    fv = fs.feature_view("delays", query=q, labels=["delayed"])
    df = fv.training_data()
    # flights ordered by (dep, insert order); weather as of each departure, ttl 2h.
    assert df["flight"].tolist() == [1, 2, 3, 1]
    assert df["delayed"].tolist() == [0, 1, 0, 1]
    temps = [None if pd.isna(v) else v for v in df["w_temp"]]
    # JFK@1h: 1.0 (0h, within 2h); LGA@2h: 3.0; JFK@3h: 2.0 (2.5h); LGA@5h: 3.0 is 4h old.
    assert temps == [1.0, 3.0, 2.0, None]
    window = fv.training_data(start=hours(2), end=hours(5))
    assert window["flight"].tolist() == [2, 3]
    polars = fv.training_data(format="polars")
    assert polars.columns == list(df.columns)


def test_spine_passes_through_and_keeps_order(
    fs: fti.FeatureStore, groups: tuple[fti.FeatureGroup, fti.FeatureGroup]
) -> None:
    flights, weather = groups
    q = flights.select(["distance", "origin"]).join(
        weather.select_all(), on=["origin"], prefix="w_"
    )
    fv = fs.feature_view("delays", query=q, labels=["delayed"], on_demand=[shifted_temp])
    new_york = [pd.Timestamp(hours(h)).tz_convert("America/New_York") for h in (3, 1.5, 3, 9)]
    spine = pd.DataFrame(
        {"flight": [3, 1, 3, 42], "dep": new_york, "offset": [10.0, 1.0, 10.0, 0.0]}
    )
    df = fv.training_data(spine=spine)
    assert df["flight"].tolist() == [3, 1, 3, 42]
    assert df["offset"].tolist() == [10.0, 1.0, 10.0, 0.0]
    assert df["distance"].tolist()[:3] == [300.0, 100.0, 300.0]
    assert pd.isna(df["distance"].iloc[3])
    assert df["w_temp"].tolist()[0] == 2.0
    assert df["shifted_temp"].tolist()[0] == 12.0
    assert str(df["dep"].dt.tz) == "UTC"


def test_filters_restrict_candidate_rows(
    fs: fti.FeatureStore, groups: tuple[fti.FeatureGroup, fti.FeatureGroup]
) -> None:
    flights, weather = groups
    q = flights.select(["distance"]).filter(fti.col("distance") > 150.0)
    fv = fs.feature_view("long", query=q)
    assert fv.training_data()["distance"].tolist() == [200.0, 300.0, 400.0]
    q2 = flights.select(["distance"]).join(
        weather.select_all().filter(fti.col("temp") < 2.0), on=["origin"], prefix="w_"
    )
    df = fs.feature_view("cold", query=q2).training_data()
    temps = [None if pd.isna(v) else v for v in df["w_temp"]]
    # LGA's only row (3.0) is filtered out; JFK@3h would see 2.0 (filtered out) and 1.0 at 0h
    # is 3h old, beyond the ttl.
    assert temps == [1.0, None, None, None]
    with pytest.raises(fti.ValidationError, match="several feature groups"):
        flights.select(["origin"]).join(weather.select_all(), on=["origin"], prefix="w_").filter(
            fti.col("origin") == "JFK"
        )


def test_snapshot_group_joins_latest_row(fs: fti.FeatureStore) -> None:
    events = fs.feature_group("events", primary_key=["user"], event_time="t")
    events.insert(pd.DataFrame({"user": [1, 2], "t": [hours(1), hours(2)], "v": [1, 2]}))
    users = fs.feature_group("users", primary_key=["user"])
    users.insert(pd.DataFrame({"user": [1, 2], "country": ["de", "fr"]}))
    users.insert(pd.DataFrame({"user": [1], "country": ["us"]}))
    fv = fs.feature_view("ev", query=events.select(["v"]).join(users.select_all(), on=["user"]))
    assert fv.training_data()["country"].tolist() == ["us", "fr"]


def test_no_leakage(fs: fti.FeatureStore) -> None:
    """No joined feature row has an event time after the spine row's time."""
    rng = np.random.default_rng(7)
    n = 2_000
    t = pa.array(1_700_000_000_000_000 + rng.integers(0, 10**10, n), pa.int64()).cast(
        pa.timestamp("us", tz="UTC")
    )
    left = fs.feature_group("left", primary_key=["k"], event_time="t")
    left.insert(pa.table({"k": rng.integers(0, 50, n), "t": t, "seen": t, "x": rng.random(n)}))
    right = fs.feature_group("right", primary_key=["k"], event_time="rt", ttl=timedelta(hours=1))
    rt = pa.array(1_700_000_000_000_000 + rng.integers(0, 10**10, n), pa.int64()).cast(
        pa.timestamp("us", tz="UTC")
    )
    right.insert(pa.table({"k": rng.integers(0, 50, n), "rt": rt, "y": rng.random(n)}))
    fv = fs.feature_view(
        "leak",
        query=left.select(["seen", "x"]).join(right.select(["rt", "y"]), on=["k"], prefix="r_"),
    )
    spine_t = pa.array(1_700_000_000_000_000 + rng.integers(0, 10**10, 500), pa.int64()).cast(
        pa.timestamp("us", tz="UTC")
    )
    spine = pa.table({"k": rng.integers(0, 55, 500), "t": spine_t})
    out = fv.training_data(spine=spine, format="arrow")
    ts = out.column("t").cast(pa.int64()).to_pylist()
    seen = out.column("seen").cast(pa.int64()).to_pylist()
    rts = out.column("r_rt").cast(pa.int64()).to_pylist()
    assert out.num_rows == 500
    assert any(s is not None for s in seen)
    assert any(r is not None for r in rts)
    for t_us, s_us, r_us in zip(ts, seen, rts, strict=True):
        assert s_us is None or s_us <= t_us
        assert r_us is None or (t_us - 3_600_000_000 <= r_us <= t_us)
    # The same holds without a spine: each row's joined features are no newer than the row.
    rows = fv.training_data(format="arrow")
    for t_us, r_us in zip(
        rows.column("t").cast(pa.int64()).to_pylist(),
        rows.column("r_rt").cast(pa.int64()).to_pylist(),
        strict=True,
    ):
        assert r_us is None or r_us <= t_us


def test_columns_added_later_read_as_null(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group("evolving", primary_key=["k"], event_time="t")
    fg.insert(pd.DataFrame({"k": [1], "t": [hours(1)], "x": [1.0]}))
    fg.add_features({"extra": "float64"})
    fv = fs.feature_view("evo", query=fg.select(["x", "extra"]))
    df = fv.training_data()  # "extra" is in no data file yet
    assert df["x"].tolist() == [1.0]
    assert pd.isna(df["extra"]).all()
    fg.insert(pd.DataFrame({"k": [2], "t": [hours(2)], "x": [2.0], "extra": [5.0]}))
    df = fv.training_data()  # now in one file of two
    assert df["extra"].tolist()[1] == 5.0
    assert pd.isna(df["extra"].iloc[0])


def test_snapshot_left_group(fs: fti.FeatureStore) -> None:
    users = fs.feature_group("people", primary_key=["user"])
    users.insert(pd.DataFrame({"user": [1, 2], "country": ["de", "fr"]}))
    users.insert(pd.DataFrame({"user": [1], "country": ["us"]}))
    clicks = fs.feature_group("clicks", primary_key=["user"], event_time="t")
    clicks.insert(pd.DataFrame({"user": [1, 1], "t": [hours(2), hours(1)], "n": [20, 10]}))
    clicks.insert(pd.DataFrame({"user": [1], "t": [hours(2)], "n": [21]}))  # a correction
    fv = fs.feature_view(
        "people_fv", query=users.select(["country"]).join(clicks.select(["n"]), on=["user"])
    )
    df = fv.training_data()  # latest row per user; clicks: latest by (time, insert order)
    assert df["user"].tolist() == [2, 1]
    assert df["country"].tolist() == ["fr", "us"]
    assert [None if pd.isna(v) else v for v in df["n"]] == [None, 21]
    spine = pd.DataFrame({"user": [1, 3, 1]})
    assert fv.training_data(spine=spine)["n"].tolist()[::2] == [21, 21]
