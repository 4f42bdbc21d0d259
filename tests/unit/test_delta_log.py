"""Table stats from the JSON Delta log (what ``fti fg list`` reads) agree with deltalake's own
view of the table, after appends, deletes and schema changes, and fall back after a checkpoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable
from hypothesis import given, settings
from hypothesis import strategies as st

import fti
from fti.backends.offline.delta_log import has_commits, log_stats

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _truth(path: str) -> tuple[int, int, int, int]:
    """(version, rows, files, bytes) as deltalake sees the table: rows by reading it."""
    dt = DeltaTable(path)
    actions = dt.get_add_actions(flatten=True)
    size = sum(actions.column("size_bytes").to_pylist())
    return int(dt.version()), dt.to_pyarrow_table().num_rows, actions.num_rows, int(size)


@settings(max_examples=15, deadline=None)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("insert"), st.lists(st.integers(0, 5), min_size=1, max_size=6)),
            st.tuples(st.just("delete"), st.lists(st.integers(0, 5), min_size=1, max_size=2)),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_log_stats_match_deltalake(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, list[int]]]
) -> None:
    root = tmp_path_factory.mktemp("delta_log")
    with fti.connect(root) as fs:
        fg = fs.feature_group("g", primary_key=["k"], event_time="t")
        fg.insert([{"k": 0, "t": T0, "x": 0.0}])
        for i, (op, keys) in enumerate(ops):
            if op == "insert":
                fg.insert([{"k": k, "t": T0 + timedelta(hours=i), "x": float(k)} for k in keys])
            else:
                fg.delete_rows([{"k": k} for k in keys])
        fg.add_features({"y": "float64"})
        path = fs._ctx.offline.path(fg.spec.key)  # type: ignore[attr-defined]
        fast = log_stats(path)
        assert fast is not None
        assert (fast.version, fast.rows, fast.files, fast.size_bytes) == _truth(path)
        last = DeltaTable(path).history(1)[0]
        assert fast.last_operation == last["operation"]
        assert fast.last_commit == datetime.fromtimestamp(last["timestamp"] / 1000, UTC)
        assert fs._ctx.offline.stats(fg.spec.key) == fast


def test_a_checkpoint_falls_back_to_deltalake(tmp_path: Path) -> None:
    with fti.connect(tmp_path / "store") as fs:
        fg = fs.feature_group("g", primary_key=["k"])
        for k in range(3):
            fg.insert([{"k": k, "x": 1.0}])
        path = fs._ctx.offline.path(fg.spec.key)  # type: ignore[attr-defined]
        before = log_stats(path)
        DeltaTable(path).create_checkpoint()
        assert log_stats(path) is None  # the state is in Parquet now: not read here
        after = fs._ctx.offline.stats(fg.spec.key)
        assert before is not None
        assert (after.version, after.rows, after.files, after.size_bytes) == (
            before.version, before.rows, before.files, before.size_bytes,
        )  # fmt: skip
        assert after.rows == int(pc.count(DeltaTable(path).to_pyarrow_table().column("k")).as_py())
    assert log_stats(tmp_path / "nowhere") is None


def test_has_commits_agrees_with_deltalake(tmp_path: Path) -> None:
    with fti.connect(tmp_path / "store") as fs:
        fg = fs.feature_group("g", primary_key=["k"])
        path = fs._ctx.offline.path(fg.spec.key)  # type: ignore[attr-defined]
        assert not has_commits(path)
        assert not DeltaTable.is_deltatable(path)
        fg.insert([{"k": 1, "x": 1.0}])
        assert has_commits(path)
        assert DeltaTable.is_deltatable(path)
    (tmp_path / "empty" / "_delta_log").mkdir(parents=True)
    assert not has_commits(tmp_path / "empty")
    assert not DeltaTable.is_deltatable(str(tmp_path / "empty"))
