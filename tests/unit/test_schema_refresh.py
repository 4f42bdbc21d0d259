"""A long-lived store keeps working, and sees new columns, after another process changed a
feature group's schema. The other process is a second ``FeatureStore`` on the same root here
(tests/e2e/test_serving_schema_change.py runs a real one)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import fti
from fti.errors import IntegrityError
from fti.services import feature_groups, feature_vectors

T = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def first(root: Path) -> Iterator[fti.FeatureStore]:
    """The long-lived process: it built view v1 on group ``a`` and read a vector."""
    fs = fti.connect(root)
    a = fs.feature_group("a", primary_key=["id"], event_time="ts", online=True)
    a.insert(pd.DataFrame({"id": [1, 2], "ts": [T, T], "x": [1.0, 2.0]}))
    fv1 = fs.feature_view("v1", query=a.select(["x"]))
    assert fv1.feature_vector({"id": 1}) == {"x": 1.0}
    assert fv1.feature_vectors([{"id": 1}, {"id": 2}], format="list") == [[1.0], [2.0]]
    yield fs
    fs.close()


def _other_adds_y(root: Path) -> None:
    """The other process: add column ``y`` to ``a`` and insert a row carrying it."""
    with fti.connect(root) as other:
        a = other.get_feature_group("a")
        a.add_features({"y": "float64"})
        a.insert(pd.DataFrame({"id": [1], "ts": [T], "x": [10.0], "y": [3.0]}))


def test_a_new_view_on_the_new_column_reads_vectors(first: fti.FeatureStore, root: Path) -> None:
    a = first.get_feature_group("a")
    a.read_online({"id": 1})  # this handle's reader holds the old definition
    _other_adds_y(root)
    fv2 = first.feature_view("v2", query=a.select(["x", "y"]))
    assert fv2.feature_vector({"id": 1}) == {"x": 10.0, "y": 3.0}
    assert fv2.feature_vectors([{"id": 1}, {"id": 2}], format="list") == [
        [10.0, 3.0],
        [2.0, None],
    ]
    # The view built before the change keeps answering, interleaved with the new one.
    fv1 = first.get_feature_view("v1")
    for _ in range(2):
        assert fv1.feature_vector({"id": 1}) == {"x": 10.0}
        assert fv2.feature_vector({"id": 1}) == {"x": 10.0, "y": 3.0}


def test_a_view_defined_by_the_other_process_reads_vectors(
    first: fti.FeatureStore, root: Path
) -> None:
    _other_adds_y(root)
    with fti.connect(root) as other:
        other.feature_view("v2", query=other.get_feature_group("a").select(["y"]))
    assert first.get_feature_view("v2").feature_vector({"id": 1}) == {"y": 3.0}


def test_read_online_sees_new_columns_once_the_definition_is_rechecked(
    first: fti.FeatureStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = first.get_feature_group("a")
    assert a.read_online({"id": 1}) == [{"id": 1, "ts": T, "x": 1.0}]
    _other_adds_y(root)
    # Within the recheck interval the handle trusts its definition: no registry read per call.
    monkeypatch.setattr(feature_groups, "SCHEMA_RECHECK_SECONDS", 3600.0)
    reads = _count_registry_reads(first, monkeypatch)
    for _ in range(20):
        assert a.read_online({"id": 1}) == [{"id": 1, "ts": T, "x": 10.0}]
    assert reads == []
    # Once it is due, the handle asks the registry and reads the new column.
    monkeypatch.setattr(feature_groups, "SCHEMA_RECHECK_SECONDS", 0.0)
    assert a.read_online({"id": 1}) == [{"id": 1, "ts": T, "x": 10.0, "y": 3.0}]
    assert a.schema["y"] == "float64"
    assert reads != []
    frame = a.read_online([{"id": 1}, {"id": 2}], format="pandas")
    assert list(frame.columns) == ["id", "ts", "x", "y"]


def _count_registry_reads(fs: fti.FeatureStore, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    reads: list[Any] = []
    registry = fs._ctx.registry
    get = registry.get

    def counting(kind: str, name: str, version: int) -> Any:
        reads.append((kind, name, version))
        return get(kind, name, version)

    monkeypatch.setattr(registry, "get", counting)
    return reads


def _registry_only_column(root: Path, name: str) -> None:
    """The other process stored a new column in the registry and stopped before altering the
    online table (as if killed inside fg.add_features)."""
    from fti.definitions.fields import Field

    with fti.connect(root) as other:
        spec = other.get_feature_group("a").spec
        feature_groups.set_columns(
            other._ctx, spec, (*spec.columns, Field(name, "float64")), reason="columns_added"
        )


def test_a_column_missing_online_is_a_clear_error_and_opening_the_group_adds_it(
    first: fti.FeatureStore, root: Path
) -> None:
    a = first.get_feature_group("a")  # held from before; opening it now would add z online
    _registry_only_column(root, "z")
    fv3 = first.feature_view("v3", query=a.select(["x", "z"]))
    with pytest.raises(IntegrityError, match=r"'a_v1'.*\['z'\].*fti online rebuild"):
        fv3.feature_vector({"id": 1})
    with fti.connect(root) as other:
        other.get_feature_group("a")  # opening the group adds the column online
    assert fv3.feature_vector({"id": 1}) == {"x": 1.0, "z": None}


def test_plan_problems_name_what_cannot_be_served(first: fti.FeatureStore, root: Path) -> None:
    a = first.get_feature_group("a")
    fv1 = first.get_feature_view("v1")
    plan = feature_vectors.plan_for_view(first._ctx, fv1.spec, fitted=None)
    assert plan.problems() == []
    _registry_only_column(root, "z")
    assert plan.problems() == []  # a group that only gained columns serves v1 as before
    fv3 = first.feature_view("v3", query=a.select(["z"]))
    plan3 = feature_vectors.plan_for_view(first._ctx, fv3.spec, fitted=None)
    problems = plan3.problems()
    assert len(problems) == 1
    assert "Feature group 'a' version 1" in problems[0]
    assert "['z']" in problems[0]
    first.get_feature_group("a")  # opening the group adds z online
    assert plan3.problems() == []


def test_a_long_lived_writer_writes_columns_another_process_added(
    first: fti.FeatureStore, root: Path
) -> None:
    """A stream writer holds its handle for hours: rows carrying the new column are accepted
    (the definition is re-read on the mismatch), and rows without it leave it null online,
    as it is in the offline row."""
    import pyarrow as pa

    a = first.get_feature_group("a")  # opened before the other process added y
    _other_adds_y(root)
    later = T.replace(hour=1)
    staged = a.stage_online(pa.Table.from_pylist([{"id": 1, "ts": later, "x": 8.0}]))
    a.commit_staged([staged])
    assert "y" not in a.schema  # nothing told this writer about y yet
    staged = a.stage_online(pa.Table.from_pylist([{"id": 2, "ts": later, "x": 6.0, "y": 7.0}]))
    a.commit_staged([staged])
    assert a.schema["y"] == "float64"
    with fti.connect(root) as other:
        fresh = other.get_feature_group("a")
        assert fresh.read_online([{"id": 1}, {"id": 2}]) == [
            {"id": 1, "ts": later, "x": 8.0, "y": None},
            {"id": 2, "ts": later, "x": 6.0, "y": 7.0},
        ]
        offline = fresh.read()
        newest = offline[offline["ts"] == pd.Timestamp(later)].sort_values("id")
        assert newest["x"].tolist() == [8.0, 6.0]
        assert newest["y"].isna().tolist() == [True, False]


def test_rows_staged_before_and_after_a_new_column_commit_together(
    first: fti.FeatureStore, root: Path
) -> None:
    import pyarrow as pa

    a = first.get_feature_group("a")
    _other_adds_y(root)
    later = T.replace(hour=2)
    staged = [
        a.stage_online(pa.Table.from_pylist([{"id": 1, "ts": later, "x": 8.0}])),
        a.stage_online(pa.Table.from_pylist([{"id": 2, "ts": later, "x": 6.0, "y": 7.0}])),
    ]
    assert a.commit_staged(staged).rows == 2
    offline = first.get_feature_group("a").read()
    newest = offline[offline["ts"] == pd.Timestamp(later)].sort_values("id")
    assert newest["x"].tolist() == [8.0, 6.0]
    assert newest["y"].isna().tolist() == [True, False]


def test_a_failing_online_store_is_a_problem_without_its_message(
    first: fti.FeatureStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    plan = feature_vectors.plan_for_view(first._ctx, first.get_feature_view("v1").spec, fitted=None)

    def broken(table: Any, keys: Any) -> Any:
        raise RuntimeError("disk I/O error at /secret/path")

    monkeypatch.setattr(first._ctx.online, "read", broken)
    [problem] = plan.problems()
    assert "Feature group 'a' version 1" in problem
    assert "RuntimeError" in problem
    assert "/secret/path" not in problem
    assert "/secret/path" in caplog.text
