"""Online write order, as a property: whatever the order, duplicates and batching of the
inserts, the online row of each key is the greatest by (event time, ingestion order), and the
offline history is read back in exactly that order.

The oracle is plain Python: ingestion order is (insert index, row position in the insert).
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fti

T0 = datetime(2024, 1, 1, tzinfo=UTC)

# A row is (key, event hour); its value encodes where it was inserted, so it is unique.
row = st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(min_value=0, max_value=3))
inserts = st.lists(st.lists(row, min_size=1, max_size=6), min_size=1, max_size=4)


def value(insert: int, position: int) -> float:
    return insert * 100.0 + position


Row = tuple[tuple[int, int, int], str, int, float]


def oracle(batches: list[list[tuple[str, int]]], with_time: bool) -> list[Row]:
    """Every row as (order key, key, hour, value), sorted by the row order."""
    rows: list[Row] = []
    for i, batch in enumerate(batches):
        for j, (key, hour) in enumerate(batch):
            order = (hour if with_time else 0, i, j)
            rows.append((order, key, hour, value(i, j)))
    rows.sort(key=lambda r: r[0])
    return rows


@pytest.mark.slow
@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(batches=inserts, with_time=st.booleans())
def test_online_row_is_the_greatest_and_offline_order_matches(
    batches: list[list[tuple[str, int]]], with_time: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp, fti.connect(Path(tmp)) as fs:
        fg = fs.feature_group(
            "order", primary_key=["k"], event_time="t" if with_time else None, online=True
        )
        for i, batch in enumerate(batches):
            frame = pd.DataFrame(
                {
                    "k": [k for k, _ in batch],
                    "t": [T0 + timedelta(hours=h) for _, h in batch],
                    "v": [value(i, j) for j in range(len(batch))],
                }
            )
            if not with_time:
                frame = frame.drop(columns="t")
            fg.insert(frame)

        expected = oracle(batches, with_time)
        latest: dict[str, tuple[int, float]] = {}
        for _, key, hour, v in expected:  # ascending, so the last one per key wins
            latest[key] = (hour, v)

        got = fg.read_online([{"k": k} for k in ("a", "b", "c")])
        for key, row_ in zip(("a", "b", "c"), got, strict=True):
            if key not in latest:
                assert row_ is None
                continue
            assert row_ is not None
            hour, v = latest[key]
            assert row_["v"] == v
            if with_time:
                assert row_["t"] == T0 + timedelta(hours=hour)

        offline = fg.read(include_superseded=True)  # every row written, in row order
        assert offline["v"].tolist() == [r[3] for r in expected]
        assert offline["k"].tolist() == [r[1] for r in expected]

        # A fresh handle on the same files (catch-up path) agrees, and so does a rebuild.
        assert fs.get_feature_group("order").read_online([{"k": k} for k in latest]) == [
            got[("a", "b", "c").index(k)] for k in latest
        ]
        fg.rebuild_online()
        assert fg.read_online([{"k": k} for k in ("a", "b", "c")]) == got


def test_online_read_before_any_insert_finds_nothing(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group(
        "declared", primary_key=["k"], online=True, features={"k": "int64", "v": "float64"}
    )
    assert fg.read_online([{"k": 1}, {"k": 2}]) == [None, None]
    assert fg.read_online({"k": 1}) == [None]
