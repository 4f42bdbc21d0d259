"""Names of feature groups, views and models: unique ignoring case, reserved prefixes and
suffixes rejected up front, and no two groups ever share an online table (issue 18.1)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

import fti
from fti.errors import NameConflictError, SchemaError, ValidationError


def prices(skus: list[str], values: list[float]) -> pd.DataFrame:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    return pd.DataFrame(
        {"sku": skus, "at": [t0 + timedelta(hours=i) for i in range(len(skus))], "price": values}
    )


def test_groups_whose_names_differ_only_in_case_cannot_both_exist(fs: fti.FeatureStore) -> None:
    upper = fs.feature_group("Prices", primary_key=["sku"], event_time="at", online=True)
    upper.insert(prices(["a"], [1.0]))
    with pytest.raises(NameConflictError, match=r"'prices'.*'Prices'.*ignoring case"):
        fs.feature_group("prices", primary_key=["sku"], event_time="at", online=True)
    with pytest.raises(NameConflictError):  # another version is still the same name
        fs.feature_group("PRICES", version=2, primary_key=["id"], online=True)
    assert [(g.name, g.version) for g in fs.feature_groups()] == [("Prices", 1)]
    assert upper.read_online([{"sku": "a"}])[0]["price"] == 1.0
    assert fs.feature_group("Prices", version=2, primary_key=["sku"]).version == 2


def test_views_and_models_are_unique_ignoring_case(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group("items", primary_key=["sku"], event_time="at")
    fg.insert(prices(["a"], [1.0]))
    fs.feature_view("Demand", query=fg.select_all())
    with pytest.raises(NameConflictError, match="'demand'"):
        fs.feature_view("demand", query=fg.select_all())
    model = {"weights": [1, 2]}
    fs.models.register("Ranker", model, allow_pickle=True)
    with pytest.raises(NameConflictError, match="'ranker'"):
        fs.models.register("ranker", model, allow_pickle=True)
    assert [m.name for m in fs.models.list()] == ["Ranker"]


@pytest.mark.parametrize("name", ["sqlite_stat", "SQLite_prices"])
def test_reserved_sqlite_prefix_is_rejected_before_anything_is_written(
    fs: fti.FeatureStore, name: str
) -> None:
    with pytest.raises(ValidationError, match="prefix 'sqlite_' is reserved"):
        fs.feature_group(name, primary_key=["sku"], event_time="at", online=True)
    assert fs.feature_groups() == []


@pytest.mark.parametrize("name", ["delays_log", "clicks_events", "Clicks_EVENTS"])
def test_names_fti_generates_are_reserved(fs: fti.FeatureStore, name: str) -> None:
    with pytest.raises(ValidationError, match="reserved for the groups fti creates"):
        fs.feature_group(name, primary_key=["sku"])
    assert fs.feature_groups() == []


@pytest.mark.parametrize("key", ["code", "sku"])
def test_an_online_table_that_cannot_be_made_fails_the_insert_with_nothing_written(
    tmp_path: Path, key: str
) -> None:
    """An older fti let ``Prices`` and ``prices`` share the SQLite table ``prices_v1``: the
    second group's insert committed offline, failed online, and the group never opened again.
    Now the online table is made (and checked) before the offline commit."""
    root = tmp_path / "store"
    fs = fti.connect(root)
    try:
        fs.feature_groups()  # creates the store's files
        online_db = root / "online.db"
        with sqlite3.connect(online_db) as conn:  # what the older group left behind
            conn.execute(
                f'CREATE TABLE "PRICES_v1" ({key} TEXT NOT NULL, _fti_et INTEGER NOT NULL, '
                f"_fti_seq INTEGER NOT NULL, price REAL, PRIMARY KEY ({key})) WITHOUT ROWID"
            )
        fg = fs.feature_group("prices", primary_key=["sku"], event_time="at", online=True)
        with pytest.raises(SchemaError, match=rf"'prices_v1'.*'PRICES_v1'.*\['{key}'\]"):
            fg.insert(prices(["a", "b"], [1.0, 2.0]))
        assert not (root / "offline" / "prices_v1").exists()  # no offline commit
        again = fs.get_feature_group("prices", version=1)  # the group still opens
        assert len(again.read()) == 0
        with sqlite3.connect(online_db) as conn:
            conn.execute('DROP TABLE "PRICES_v1"')
        again.insert(prices(["a", "b"], [1.0, 2.0]))
        assert again.read_online([{"sku": "b"}])[0]["price"] == 2.0
        assert again.read()["price"].tolist() == [1.0, 2.0]
    finally:
        fs.close()
