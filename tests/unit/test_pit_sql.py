"""The compiled point-in-time statement: one statement, bound values, sub-microsecond spines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pytest

import fti
from fti._internal.frames import to_arrow
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


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = timedelta(microseconds=1)
WIDE = [-(2**63), -5, 0, 2**32 - 6, 2**32 - 5, 2**63 - 1]  # int64 keys at both extremes


@pytest.fixture
def edge(fs: fti.FeatureStore) -> fti.FeatureView:
    """Keys across the int64 range, times around 1970 (negative epochs), a correction."""
    g = fs.feature_group("e", primary_key=["k"], event_time="t", ttl=timedelta(microseconds=2))
    first = pd.DataFrame(
        {
            "k": WIDE,
            "t": [EPOCH - US] * len(WIDE),
            "v": [float(i) for i in range(len(WIDE))],
        }
    )
    g.insert(first)
    g.insert(pd.DataFrame({"k": [-5], "t": [EPOCH - US], "v": [-50.0]}))  # a later correction
    g.insert(pd.DataFrame({"k": [-5, 0], "t": [EPOCH - 2 * US] * 2, "v": [-99.0, -99.0]}))
    return fs.feature_view("ev", query=g.select(["v"]))


def _spine(keys: list[int], at: datetime) -> pd.DataFrame:
    return pd.DataFrame({"k": keys, "t": pd.Series([at] * len(keys)).astype("datetime64[us, UTC]")})


@pytest.mark.parametrize(
    ("keys", "narrowed"),
    [
        ([-5, 2**32 - 6, 0], True),  # a span of exactly 2**32 values: UINTEGER offsets
        ([-5, 2**32 - 5, 0], False),  # one more: the plain BIGINT key
        ([0], True),
        (WIDE, False),
    ],
)
def test_integer_keys_join_alike_narrowed_or_not(
    edge: fti.FeatureView, keys: list[int], narrowed: bool
) -> None:
    spine = _spine(keys, EPOCH - US)
    table = to_arrow(spine).append_column("_fti_row", pa.array(range(len(keys)), pa.int64()))
    ranges = {"k": (min(keys), max(keys))}
    sql = compile_pit(edge.spec.query, spine_columns=table.column_names, key_ranges=ranges).sql
    assert ("UINTEGER" in sql) == narrowed
    got = edge.training_data(spine=spine)
    expected = {-(2**63): 0.0, -5: -50.0, 0: 2.0, 2**32 - 6: 3.0, 2**32 - 5: 4.0, 2**63 - 1: 5.0}
    assert got["k"].tolist() == keys
    assert got["v"].tolist() == [expected[k] for k in keys]


def test_times_before_1970_order_and_expire(edge: fti.FeatureView) -> None:
    # 2 us before the epoch only the older rows exist; the ttl (2 us) is inclusive.
    assert edge.training_data(spine=_spine([-5, 0], EPOCH - 2 * US))["v"].tolist() == [-99.0] * 2
    assert edge.training_data(spine=_spine([-5], EPOCH - 3 * US))["v"].isna().all()
    assert edge.training_data(spine=_spine([-5], EPOCH + US))["v"].tolist() == [-50.0]
    assert edge.training_data(spine=_spine([-5], EPOCH + 2 * US))["v"].isna().all()


def test_unknown_and_out_of_range_spine_keys_get_nulls(edge: fti.FeatureView) -> None:
    got = edge.training_data(spine=_spine([7, -5, 7, 2**40], EPOCH))
    assert got["k"].tolist() == [7, -5, 7, 2**40]
    assert got["v"].isna().tolist() == [True, False, True, True]


@pytest.mark.parametrize(("rows", "narrowed"), [(1, True), (2**32, True), (2**32 + 1, False)])
def test_spine_order_sorts_on_a_narrow_row_number(
    fv: fti.FeatureView, rows: int, narrowed: bool
) -> None:
    ranges = {"_fti_row": (0, rows - 1)}
    sql = compile_pit(fv.spec.query, spine_columns=["k", "t", "_fti_row"], key_ranges=ranges).sql
    assert sql.endswith("ORDER BY _fti_row::UINTEGER" if narrowed else "ORDER BY _fti_row")


def test_rows_no_spine_row_can_choose_are_pruned_alike(fs: fti.FeatureStore) -> None:
    g = fs.feature_group("w", primary_key=["k"], event_time="t", ttl=timedelta(hours=1))
    hours = [-3.0, -0.5, 0.0, 1.0]
    g.insert(
        pd.DataFrame(
            {
                "k": [1, 1, 1, 1, 2],
                "t": [T0 + timedelta(hours=h) for h in [*hours, -3.0]],
                "v": [*hours, 9.0],
            }
        )
    )
    fv = fs.feature_view("w", query=g.select(["v"]))
    first, last = T0 - timedelta(minutes=10), T0 + timedelta(minutes=10)
    st = compile_pit(fv.spec.query, spine_columns=["k", "t", "_fti_row"], spine_times=(first, last))
    assert '"t" <= ?' in st.sql
    assert '"t" >= ?' in st.sql
    assert st.params[-2:] == [last, first - timedelta(hours=1)]
    spine = pd.DataFrame({"k": [1, 1, 2, 1], "t": [first, last, last, first]})
    got = fv.training_data(spine=spine)
    # -0.5 h is fresh at first; the row at 0 h at last; key 2's only row is too old (3 h).
    assert got["v"].tolist()[:2] == [-0.5, 0.0]
    assert pd.isna(got["v"].iloc[2])
    assert got["v"].iloc[3] == -0.5


def test_spine_columns_follow_their_rows_through_start_and_end(fv: fti.FeatureView) -> None:
    spine = pd.DataFrame(
        {
            "k": [1, 2, 1, 2, 2],
            "t": [T0, T0 + timedelta(hours=2), T0 + timedelta(minutes=30), T0, T0],
            "req": ["a", "b", "c", "d", "e"],
        }
    )
    got = fv.training_data(spine=spine, start=T0, end=T0 + timedelta(hours=1))
    assert got.columns.tolist() == ["k", "t", "req", "x"]
    assert got["req"].tolist() == ["a", "c", "d", "e"]
    assert got["k"].tolist() == [1, 1, 2, 2]
    assert got["t"].tolist() == [T0, T0 + timedelta(minutes=30), T0, T0]
    assert got["x"].tolist()[:2] == [1.0, 1.0]
    assert got["x"].isna().tolist()[2:] == [True, True]  # k=2 fails the filter s == "p"
    assert len(fv.training_data(spine=spine, start=T0 + timedelta(hours=3))) == 0
