"""Training datasets: versions, splits, train-only fitting, reproducibility, batch data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

import fti

T0 = datetime(2024, 1, 1, tzinfo=UTC)
N = 200


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


@pytest.fixture
def fv(fs: fti.FeatureStore) -> fti.FeatureView:
    """x has mean ~10 in January (days 0-99) and mean ~100 afterwards (days 100-199)."""
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(10, 2, N // 2), rng.normal(100, 5, N // 2)])
    loans = fs.feature_group("loans", primary_key=["loan"], event_time="t")
    loans.insert(
        pd.DataFrame(
            {
                "loan": np.arange(N),
                "t": [day(i) for i in range(N)],
                "x": x,
                "grade": rng.choice(["a", "b"], N),
                "label": rng.integers(0, 2, N),
            }
        )
    )
    return fs.feature_view(
        "loans_fv",
        query=loans.select(["x", "grade"]),
        labels=["label"],
        transformations={"x": fti.standard_scaler(), "grade": fti.one_hot_encoder()},
    )


def test_time_split_fits_on_train_only(fv: fti.FeatureView) -> None:
    td = fv.create_training_dataset(
        split={"train": (day(0), day(100)), "test": (day(100), day(200))}
    )
    raw_train = td.read_raw("train")
    raw_test = td.read_raw("test")
    assert len(raw_train) == 100
    assert len(raw_test) == 100
    mean = float(np.mean(raw_train["x"]))
    std = float(np.std(raw_train["x"]))  # population std, as the scaler documents
    assert td.fitted["x"]["mean"] == pytest.approx(mean)
    assert td.fitted["x"]["std"] == pytest.approx(std)
    assert float(np.mean(raw_test["x"])) > 90  # the test split really has another mean

    x_train, y_train = td.read("train")
    x_test, y_test = td.read("test")
    assert list(y_train) == list(raw_train["label"])
    assert y_test.name == "label"
    np.testing.assert_allclose(x_train["x"], (raw_train["x"] - mean) / std)
    np.testing.assert_allclose(x_test["x"], (raw_test["x"] - mean) / std)
    assert float(np.mean(x_test["x"])) > 20  # scaled with train stats, not re-centred
    assert [c for c in x_train.columns if c.startswith("grade")] == ["grade_a", "grade_b"]

    batch = fv.batch_data(start=day(100), end=day(200), training_dataset_version=td.version)
    np.testing.assert_array_equal(batch["x"].to_numpy(), x_test["x"].to_numpy())
    np.testing.assert_array_equal(batch["grade_a"].to_numpy(), x_test["grade_a"].to_numpy())
    assert "label" not in batch.columns
    with_keys = fv.batch_data(
        start=day(100), end=day(200), training_dataset_version=td.version, with_entities=True
    )
    assert list(with_keys.columns[:2]) == ["loan", "t"]


def test_random_split_is_reproducible_by_seed(fv: fti.FeatureView) -> None:
    a = fv.create_training_dataset(split={"train": 0.75, "test": 0.25}, seed=11)
    b = fv.create_training_dataset(split={"train": 0.75, "test": 0.25}, seed=11)
    c = fv.create_training_dataset(split={"train": 0.75, "test": 0.25})
    assert (a.version, b.version, c.version) == (1, 2, 3)
    assert c.seed is not None  # a drawn seed is recorded
    ra, rb = a.read_raw("train"), b.read_raw("train")
    pd.testing.assert_frame_equal(ra, rb)
    assert 120 <= len(ra) <= 180
    assert len(ra) + len(a.read_raw("test")) == N
    assert set(ra["loan"]).isdisjoint(a.read_raw("test")["loan"])
    assert [td.version for td in fv.training_datasets()] == [1, 2, 3]
    assert a.spec.split.to_dict() == {"kind": "random", "fractions": {"train": 0.75, "test": 0.25}}


def test_reread_returns_same_rows_after_inserts(fs: fti.FeatureStore, fv: fti.FeatureView) -> None:
    td = fv.create_training_dataset(split={"train": 0.5, "test": 0.5}, seed=1)
    before = {s: td.read(s) for s in td.splits}
    versions = td.table_versions
    loans = fs.get_feature_group("loans")
    # Later inserts: corrections of existing rows (same key and time) and new rows.
    loans.insert(
        pd.DataFrame(
            {
                "loan": [0, 1, 500],
                "t": [day(0), day(1), day(3)],
                "x": [-1e6, -1e6, 5.0],
                "grade": ["c", "c", "c"],
                "label": [1, 1, 1],
            }
        )
    )
    again = fs.get_feature_view("loans_fv", version=1).get_training_dataset(td.version)
    assert again.table_versions == versions
    for split, (x, y) in before.items():
        x2, y2 = again.read(split)
        pd.testing.assert_frame_equal(x, x2)
        pd.testing.assert_series_equal(y, y2)
    # A new version sees the new data: two corrected rows (one row per key and time) and one
    # new row.
    fresh = fv.create_training_dataset()
    raw = fresh.read_raw("train")
    assert len(raw) == N + 1
    assert raw.loc[raw["loan"] == 0, "x"].tolist() == [-1e6]
    assert fresh.table_versions["loans_v1"] > versions["loans_v1"]


def test_statistics_and_formats(fv: fti.FeatureView) -> None:
    td = fv.create_training_dataset(description="all rows")
    stats = td.statistics["train"]
    assert stats["x"]["count"] == N
    assert stats["x"]["nulls"] == 0
    for key in ("mean", "std", "min", "max", "histogram"):
        assert stats["x"][key] is not None
    assert stats["grade"]["distinct"] == 2
    x_pl, y_pl = td.read("train", format="polars")
    assert x_pl.shape[0] == N
    assert y_pl.name == "label"
    x_arrow, _ = td.read("train", format="arrow")
    assert x_arrow.num_rows == N
    assert td.spec.description == "all rows"
    assert td.spec.feature_view_version == 1


def test_errors_say_what_to_do(fs: fti.FeatureStore, fv: fti.FeatureView) -> None:
    with pytest.raises(fti.ValidationError, match="sum to 1"):
        fv.create_training_dataset(split={"train": 0.5, "test": 0.2})
    with pytest.raises(fti.ValidationError, match="overlap"):
        fv.create_training_dataset(split={"train": (day(0), day(50)), "test": (day(40), day(60))})
    with pytest.raises(fti.NotFoundError, match="Existing versions"):
        fv.get_training_dataset(9)
    td = fv.create_training_dataset()
    with pytest.raises(fti.NotFoundError, match="no split"):
        td.read("validation")
    plain = fs.feature_view("plain", query=fs.get_feature_group("loans").select(["x"]))
    assert plain.batch_data()["x"].shape == (N,)
    with pytest.raises(fti.ValidationError, match="no training"):
        fs.feature_view(
            "scaled",
            query=fs.get_feature_group("loans").select(["x"]),
            transformations={"x": fti.standard_scaler()},
        ).batch_data()
