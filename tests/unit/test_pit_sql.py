"""The compiled point-in-time statement: one statement, bound values, sub-microsecond spines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

import fti
from fti.planner.duckdb_pit import compile_pit

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def fv(fs: fti.FeatureStore) -> fti.FeatureView:
    a = fs.feature_group("a", primary_key=["k"], event_time="t", ttl=timedelta(hours=1))
    a.insert(pd.DataFrame({"k": [1, 2], "t": [T0, T0], "x": [1.0, 2.0], "s": ["p", "q"]}))
    return fs.feature_view(
        "v", query=a.select(["x"]).filter(fti.col("s").isin(["p", "it's"]), fti.col("x") > 0.5)
    )


def test_one_statement_with_bound_values(fv: fti.FeatureView) -> None:
    st = compile_pit(fv.spec.query, spine_columns=["k", "t", "_fti_row"])
    assert st.sql.count(";") == 0
    assert st.sql.startswith("WITH ")
    assert "it's" not in st.sql  # filter values are parameters, never SQL text
    assert st.params == ["p", "it's", 0.5]
    assert '"x"' in st.sql  # identifiers are quoted
    assert st.columns == ["k", "t", "x"]


def test_spine_times_floor_to_microseconds(fv: fti.FeatureView) -> None:
    row = pd.Timestamp(T0)
    spine = pd.DataFrame(
        {
            "k": [1, 1, 1],
            "t": pd.Series(
                [
                    row + pd.Timedelta(nanoseconds=999),  # floors to the row's time: a match
                    row - pd.Timedelta(nanoseconds=1),  # floors to 1 us before: no match
                    row + pd.Timedelta(hours=1),  # exactly t - ttl == row time: inclusive
                ]
            ).astype("datetime64[ns, UTC]"),
        }
    )
    got = fv.training_data(spine=spine)
    assert got["x"].iloc[0] == 1.0
    assert pd.isna(got["x"].iloc[1])
    assert got["x"].iloc[2] == 1.0
    late = spine.assign(t=spine["t"] + pd.Timedelta(microseconds=1))
    assert pd.isna(fv.training_data(spine=late)["x"].iloc[2])  # 1 us past the ttl


def test_filter_excludes_rows_before_the_join(fv: fti.FeatureView) -> None:
    df = fv.training_data()
    assert df["k"].tolist() == [1]
