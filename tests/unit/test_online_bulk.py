"""Bulk online writes: an insert reaches the online store as its newest row per key.

The reduction is checked against a plain-Python oracle (the greatest row per key by
(event time, ingestion order)); the store itself must receive one row per key, however many
rows the insert had.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fti
from fti.backends.compute.duckdb import DuckDBEngine
from fti.backends.online import ET, SEQ
from fti.services.materialization import newest_per_key

T0 = datetime(2024, 1, 1, tzinfo=UTC)
ENGINE = DuckDBEngine()

# (key part 1, key part 2, event time, seq offset): seqs are made unique per row below.
rows = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "ab", ""]),
        st.integers(min_value=-2, max_value=2),
        st.integers(min_value=-(2**62), max_value=2**62) | st.integers(-1, 1),
        st.integers(min_value=-(2**40), max_value=2**40),
    ),
    min_size=0,
    max_size=40,
)


def oracle(batch: list[tuple[str, int, int, int, float]]) -> dict[tuple[str, int], tuple[Any, ...]]:
    best: dict[tuple[str, int], tuple[str, int, int, int, float]] = {}
    for r in batch:
        key = (r[0], r[1])
        if key not in best or (r[2], r[3]) > (best[key][2], best[key][3]):
            best[key] = r
    return best


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows)
def test_newest_per_key_matches_the_oracle(rows: list[tuple[str, int, int, int]]) -> None:
    # Unique seqs (as within one insert), in an arbitrary order (as across inserts), spread
    # over the whole int64 range, so the combined (et, seq) ordering is exercised at its edges.
    extremes = [2**63 - 1 - i if i % 2 else -(2**63) + i for i in range(len(rows))]
    batch = [
        (k1, k2, et, off * 4096 + i if off else extremes[i], float(i))
        for i, (k1, k2, et, off) in enumerate(rows)
    ]
    table = pa.table(
        {
            "k1": pa.array([r[0] for r in batch], pa.string()),
            "k2": pa.array([r[1] for r in batch], pa.int64()),
            ET: pa.array([r[2] for r in batch], pa.int64()),
            SEQ: pa.array([r[3] for r in batch], pa.int64()),
            "x": pa.array([r[4] for r in batch], pa.float64()),
        }
    )
    got = newest_per_key(ENGINE, table, ["k1", "k2"]).to_pylist()
    expected = oracle(batch)
    assert len(got) == len(expected)
    keys = [(g["k1"], g["k2"]) for g in got]
    assert keys == sorted(expected)  # one row per key, in key order
    for g in got:
        assert tuple(g.values()) == expected[(g["k1"], g["k2"])]


@pytest.fixture
def recorded(fs: fti.FeatureStore, monkeypatch: pytest.MonkeyPatch) -> list[pa.Table]:
    """The batches the online store is asked to write."""
    batches: list[pa.Table] = []
    store = fs._ctx.online
    upsert = store.upsert

    def recording(table: Any, batch: pa.Table, *, version: int | None) -> int:
        batches.append(batch)
        return upsert(table, batch, version=version)

    monkeypatch.setattr(store, "upsert", recording)
    return batches


def test_insert_writes_one_row_per_key_online(
    fs: fti.FeatureStore, recorded: list[pa.Table]
) -> None:
    fg = fs.feature_group("stats", primary_key=["user"], event_time="ts", online=True)
    n = 3_000
    frame = pd.DataFrame(
        {
            "user": [i % 7 for i in range(n)],
            # Event times repeat, so ties are decided by the row position (ingestion order).
            "ts": [T0 + timedelta(hours=(i * 37) % 11) for i in range(n)],
            "x": [float(i) for i in range(n)],
        }
    )
    report = fg.insert(frame)
    assert sum(b.num_rows for b in recorded) == 7
    assert report.online_rows_changed == 7
    for user in range(7):
        mine = frame[frame.user == user]
        newest = mine[mine.ts == mine.ts.max()].iloc[-1]
        row = fg.read_online([{"user": user}])[0]
        assert row is not None
        assert (row["ts"], row["x"]) == (newest.ts, newest.x)
    # An older insert afterwards changes nothing online (its rows lose inside the store).
    older = frame.assign(ts=T0 - timedelta(days=1))
    assert fg.insert(older).online_rows_changed == 0


def test_rebuild_reads_the_files_and_a_column_no_file_has(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group("stats", primary_key=["user"], event_time="ts", online=True)
    fg.insert(pd.DataFrame({"user": [1, 2, 1], "ts": [T0, T0, T0], "x": [1.0, 2.0, 3.0]}))
    fg.insert(pd.DataFrame({"user": [2], "ts": [T0 - timedelta(hours=1)], "x": [9.0]}))
    fg = fg.add_features({"y": "float64"})  # in the schema, in no Parquet file yet
    assert fg.rebuild_online() == 2
    got = fg.read_online([{"user": 1}, {"user": 2}])
    assert [(r["x"], r["y"]) for r in got if r is not None] == [(3.0, None), (2.0, None)]
