"""Lifecycle on the embedded store: delete (refused while something depends on the target,
``force`` deletes the dependants too, nothing else touched, an interrupted delete is finished
by running it again) and deprecate (kept, hidden from lists, a warning on use)."""

from __future__ import annotations

import json
import sqlite3
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import Result
from typer.testing import CliRunner

import fti
from fti.cli.app import app
from fti.errors import (
    ConflictError,
    DependantsError,
    DeprecatedWarning,
    NotFoundError,
    ValidationError,
)
from fti.services import feature_groups
from fti.store import context_of
from lifecycle_world import T0, build, offline_files, online_rows, registry_snapshot

pytest.importorskip("sklearn")

FLIGHTS_DEPENDANTS = [
    "alias 'production' of model 'delays' version 1",
    "model 'delays' version 1",
    "training dataset version 1 of feature view 'delays' version 1",
    "feature view 'delays' version 1",
]


def sqlite_tables(fs: fti.FeatureStore) -> set[str]:
    with sqlite3.connect(fs.config.root / "online.db") as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_delete_is_refused_while_something_depends_on_it(fs: fti.FeatureStore) -> None:
    w = build(fs)
    before = registry_snapshot(fs)
    with pytest.raises(DependantsError) as info:
        fs.delete_feature_group("flights", version=1)
    assert info.value.dependants == FLIGHTS_DEPENDANTS
    message = str(info.value)
    assert "Cannot delete the feature group 'flights' version 1: 4 object(s)" in message
    assert all(d in message for d in FLIGHTS_DEPENDANTS)
    assert "force=True" in message
    with pytest.raises(DependantsError, match="training dataset version 1 of feature view"):
        w.fv.delete()
    with pytest.raises(DependantsError, match="model 'delays' version 1"):
        w.td.delete()
    with pytest.raises(DependantsError, match="alias 'production'"):
        w.mv.delete()
    assert registry_snapshot(fs) == before  # nothing was written
    assert len(w.flights.read()) == 40
    assert w.mv.load() is not None


def test_leaves_first_needs_no_force(fs: fti.FeatureStore) -> None:
    w = build(fs)
    td_files = fs.config.root / "artifacts" / "training_datasets"
    model_files = fs.config.root / "artifacts" / "models"
    assert any(td_files.rglob("*.parquet"))
    assert any(model_files.rglob("*"))
    fs.models.remove_alias("delays", "production")
    assert w.mv.delete() == ["model 'delays' version 1"]
    assert not model_files.exists() or not any(model_files.rglob("*"))
    assert w.td.delete() == ["training dataset version 1 of feature view 'delays' version 1"]
    assert not td_files.exists() or not any(td_files.rglob("*"))
    assert w.fv.delete() == ["feature view 'delays' version 1"]
    assert w.flights.delete() == ["feature group 'flights' version 1"]
    assert [g.name for g in fs.feature_groups()] == ["other"]
    assert fs.feature_views() == []
    assert fs.models.list() == []
    with pytest.raises(NotFoundError):
        fs.get_feature_group("flights", version=1)
    with pytest.raises(NotFoundError, match="does not exist"):
        fs.delete_feature_group("flights", version=1)


def test_force_deletes_dependants_and_touches_nothing_else(fs: fti.FeatureStore) -> None:
    w = build(fs)
    ctx = context_of(fs)
    other_keys = [{"k": "a"}, {"k": "b"}]
    files_before = offline_files(fs, "other_v1")
    online_before = online_rows(fs, w.other, other_keys)
    records_before = registry_snapshot(fs)
    other_before = w.other.read()
    assert "flights_v1" in sqlite_tables(fs)

    deleted = fs.delete_feature_group("flights", version=1, force=True)

    assert deleted == [*FLIGHTS_DEPENDANTS, "feature group 'flights' version 1"]
    # the target and its dependants: offline files, online table, records, artifacts
    assert [p.name for p in (fs.config.root / "offline").iterdir() if "flights" in p.name] == []
    assert "flights_v1" not in sqlite_tables(fs)
    with sqlite3.connect(fs.config.root / "online.db") as conn:
        marks = conn.execute("SELECT count(*) FROM _fti_applied WHERE tbl = 'flights_v1'")
        assert marks.fetchone()[0] == 0
    for kind, name in [("feature_group", "flights"), ("feature_view", "delays")]:
        assert ctx.registry.records(kind, name) == []
        assert ctx.registry.events(kind, name, 1) == []
    # numbered versions leave a stub that keeps the number taken, and nothing else
    for kind, name in [("training_dataset", "delays_v1"), ("model", "delays")]:
        [stub] = ctx.registry.records(kind, name)
        assert set(stub.body) <= {"retired", "name", "version", "feature_view",
                                  "feature_view_version"}  # fmt: skip
    assert ctx.registry.get("model_alias", "delays", 1).body == {"aliases": {}}
    assert not any((fs.config.root / "artifacts").rglob("*.*"))
    # nothing else: the other group's files, online rows and records are identical
    assert offline_files(fs, "other_v1") == files_before
    assert online_rows(fs, w.other, other_keys) == online_before
    after = registry_snapshot(fs)
    expected = {k: v for k, v in records_before.items() if k[1] == "other"}
    assert {k: v for k, v in after.items() if k[1] == "other"} == expected
    assert {k[:2] for k in after if k[1] != "other"} == {
        ("training_dataset", "delays_v1"),
        ("model", "delays"),
        ("model_alias", "delays"),
    }
    pd.testing.assert_frame_equal(w.other.read(), other_before)
    # the names are free again, and a re-created group starts empty
    again = fs.feature_group("flights", primary_key=["id"], event_time="at", online=True)
    assert len(again.read()) == 0
    again.insert(pd.DataFrame({"id": [1], "at": [T0], "distance": [7.0], "delayed": [0]}))
    assert len(again.read()) == 1
    assert again.read_online([{"id": 1}, {"id": 2}]) == [
        {"id": 1, "at": T0, "distance": 7.0, "delayed": 0},
        None,
    ]


def test_a_deleted_version_number_is_not_given_out_again(fs: fti.FeatureStore) -> None:
    w = build(fs)
    w.mv.delete(force=True)
    with pytest.raises(NotFoundError, match="'delays' version 1 was deleted"):
        fs.models.get("delays", version=1)
    with pytest.raises(NotFoundError, match="does not exist"):
        fs.models.delete("delays", version=1)
    x, y = w.td.read("train")
    from sklearn.linear_model import LogisticRegression

    again = fs.models.register("delays", LogisticRegression().fit(x, y), training_dataset=w.td)
    assert again.version == 2
    assert [m.version for m in fs.models.list(include_deprecated=True)] == [2]
    assert fs.models.get("delays").version == 2
    w.td.delete(force=True)
    assert w.fv.create_training_dataset(split={"train": 0.5, "test": 0.5}, seed=1).version == 2
    assert [t.version for t in w.fv.training_datasets()] == [2]
    with pytest.raises(NotFoundError, match="was deleted"):
        w.fv.get_training_dataset(1)


def test_deleting_a_view_keeps_its_groups_and_takes_its_prediction_log(
    fs: fti.FeatureStore,
) -> None:
    w = build(fs)
    ctx = context_of(fs)
    feature_groups.get_or_create(  # what the model server creates on its first prediction
        ctx,
        "delays_log",
        version=1,
        primary_key=["request_id"],
        event_time=feature_groups._UNSET,
        online=False,
        ttl=feature_groups._UNSET,
        description="",
        features=feature_groups._UNSET,
        generated=True,
    )
    with pytest.raises(DependantsError, match="feature group 'delays_log' version 1"):
        fs.delete_feature_view("delays", version=1)
    deleted = w.fv.delete(force=True)
    assert deleted[-2:] == [
        "feature group 'delays_log' version 1",
        "feature view 'delays' version 1",
    ]
    assert sorted(g.name for g in fs.feature_groups()) == ["flights", "other"]
    assert len(w.flights.read()) == 40


def test_a_stream_groups_events_and_checkpoint_go_with_it(fs: fti.FeatureStore) -> None:
    from fti.backends.streams.memory import ListSource

    @fti.stream_pipeline(
        feature_group="taps",
        key=["user"],
        event_time="ts",
        event_id="id",
        schema={"user": "string", "id": "int64", "ts": "timestamp", "ms": "int64"},
        aggregations=[fti.Aggregation("ms", "sum", window=timedelta(minutes=1), name="total")],
    )
    def taps(event: dict[str, Any]) -> dict[str, Any]:
        return event

    events = [{"user": "a", "id": i, "ts": (T0 + i * timedelta(seconds=1)).isoformat(), "ms": "1"}
              for i in range(5)]  # fmt: skip
    taps.run(fs, source=ListSource(events), idle_timeout=0.05)
    ctx = context_of(fs)
    assert ctx.registry.get("stream_checkpoint", "taps_v1", 1) is not None
    assert sorted(g.name for g in fs.feature_groups()) == ["taps", "taps_events"]
    assert fs.delete_feature_group("taps", version=1) == [
        "stream checkpoint 'taps_v1'",
        "feature group 'taps_events' version 1",
        "feature group 'taps' version 1",
    ]
    assert fs.feature_groups() == []
    assert ctx.registry.get("stream_checkpoint", "taps_v1", 1) is None
    assert list((fs.config.root / "offline").iterdir()) == []
    taps.run(fs, source=ListSource(events), idle_timeout=0.05)  # starts over, from scratch
    assert fs.get_feature_group("taps", version=1).read_online([{"user": "a"}])[0]["total"] == 5


def test_an_interrupted_delete_is_refused_on_use_and_finished_by_running_it_again(
    fs: fti.FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = build(fs)
    w.fv.delete(force=True)
    ctx = context_of(fs)

    def crash(table: str) -> None:
        raise KeyboardInterrupt  # killed between the online drop and the offline drop

    monkeypatch.setattr(ctx.offline, "drop", crash)
    with pytest.raises(KeyboardInterrupt):
        fs.delete_feature_group("flights", version=1)
    monkeypatch.undo()
    assert (fs.config.root / "offline" / "flights_v1").exists()  # files still there ...
    finish = r"fs\.delete_feature_group\('flights', version=1\)"
    with pytest.raises(ConflictError, match=rf"being deleted.*{finish}"):  # ... but unusable
        fs.get_feature_group("flights", version=1)
    with pytest.raises(ConflictError, match=finish):
        fs.feature_group("flights", primary_key=["id"], event_time="at", online=True)
    assert [g.name for g in fs.feature_groups(include_deprecated=True)] == ["other"]
    with pytest.raises(ConflictError, match=finish):
        w.flights.insert(pd.DataFrame({"id": [1], "at": [T0], "distance": [1.0], "delayed": [0]}))
    assert fs.delete_feature_group("flights", version=1) == ["feature group 'flights' version 1"]
    assert not (fs.config.root / "offline" / "flights_v1").exists()
    again = fs.feature_group("flights", primary_key=["id"], event_time="at", online=True)
    assert len(again.read()) == 0


def test_deprecate_hides_from_lists_and_warns_on_use(fs: fti.FeatureStore) -> None:
    w = build(fs)
    w.flights.deprecate(reason="use flights v2")
    assert w.flights.deprecated
    assert [g.name for g in fs.feature_groups()] == ["other"]
    assert [g.name for g in fs.feature_groups(include_deprecated=True)] == ["flights", "other"]
    with pytest.warns(DeprecatedWarning, match=r"'flights' version 1 is deprecated \(use flights"):
        fg = fs.get_feature_group("flights", version=1)
    with pytest.warns(DeprecatedWarning):
        fs.feature_group("flights", primary_key=["id"])
    with pytest.warns(DeprecatedWarning):  # still works
        fg.add_features({"gust": "float64"})
    assert fg.deprecated  # a schema change keeps the flag
    with pytest.warns(DeprecatedWarning):  # views built on it warn when opened
        fs.get_feature_view("delays", version=1)
    assert len(fs.feature_views()) == 1  # lists do not warn (nor hide the view)
    fg.deprecate(False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fs.get_feature_group("flights", version=1)
    assert [g.name for g in fs.feature_groups()] == ["flights", "other"]
    events = context_of(fs).registry.events("feature_group", "flights", 1)
    assert [e["type"] for e in events if "deprecated" in e["type"]] == [
        "deprecated",
        "undeprecated",
    ]


def test_deprecate_views_training_datasets_and_models(fs: fti.FeatureStore) -> None:
    w = build(fs)
    w.fv.deprecate()
    assert fs.feature_views() == []
    assert len(fs.feature_views(include_deprecated=True)) == 1
    with pytest.warns(DeprecatedWarning, match="feature view 'delays' version 1"):
        fv = fs.get_feature_view("delays", version=1)
    fv.deprecate(False)
    w.td.deprecate()
    assert w.fv.training_datasets() == []
    assert [t.version for t in w.fv.training_datasets(include_deprecated=True)] == [1]
    with pytest.warns(DeprecatedWarning, match="training dataset version 1"):
        assert w.fv.get_training_dataset(1).read("test")[0] is not None
    fs.models.deprecate("delays", version=1)
    assert fs.models.list() == []
    assert len(fs.models.list(include_deprecated=True)) == 1
    with pytest.warns(DeprecatedWarning, match="model 'delays' version 1"):
        fs.models.get("delays", alias="production").load()
    with pytest.warns(DeprecatedWarning, match="model 'delays' version 1"):
        fs.models.get("delays")  # the latest


def cli(root: Path, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--root", str(root)])


def test_cli_delete_and_deprecate(fs: fti.FeatureStore) -> None:
    build(fs)
    root = fs.config.root
    out = cli(root, "fg", "delete", "flights:1")  # CliRunner's stdin is not a terminal
    assert isinstance(out.exception, ValidationError)
    assert "--yes" in str(out.exception)
    out = cli(root, "fg", "delete", "flights", "--yes")
    assert isinstance(out.exception, ValidationError)
    assert "NAME:VERSION" in str(out.exception)
    out = cli(root, "fg", "delete", "flights:1", "--yes")
    assert isinstance(out.exception, DependantsError)
    assert "feature view 'delays' version 1" in str(out.exception)
    out = cli(root, "models", "deprecate", "delays:1")
    assert out.exit_code == 0, out.output
    assert fs.models.list() == []
    out = cli(root, "models", "deprecate", "delays:1", "--undo")
    assert out.exit_code == 0
    assert len(fs.models.list()) == 1
    out = cli(root, "fg", "deprecate", "other:1", "--reason", "old")
    assert out.exit_code == 0
    assert [g.name for g in fs.feature_groups()] == ["flights"]
    out = cli(root, "td", "deprecate", "delays:1", "1")
    assert out.exit_code == 0, out.output
    out = cli(root, "td", "delete", "delays:1", "1", "--yes")
    assert isinstance(out.exception, DependantsError)
    assert "model 'delays' version 1" in str(out.exception)
    out = cli(root, "fv", "delete", "delays:1", "--yes", "--force")
    assert out.exit_code == 0, out.output
    assert "feature view 'delays' version 1" in out.output
    assert "model 'delays' version 1" in out.output
    out = cli(root, "fg", "delete", "flights:1", "--yes", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == {"deleted": ["feature group 'flights' version 1"]}
    assert [g.name for g in fs.feature_groups(include_deprecated=True)] == ["other"]
    for noun in ("fg", "fv", "td", "models"):
        for verb in ("delete", "deprecate"):
            out = CliRunner().invoke(app, [noun, verb, "--help"])
            assert out.exit_code == 0
            assert "Example" in out.output


def test_online_rebuild_all_includes_deprecated_groups(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group("prices", primary_key=["sku"], event_time="at", online=True)
    fg.insert(pd.DataFrame({"sku": ["a"], "at": [T0], "price": [2.0]}))
    fg.deprecate()
    context_of(fs).online.drop(feature_groups.online_table(fg.spec))  # a lost online store
    out = cli(fs.config.root, "online", "rebuild", "--all")
    assert out.exit_code == 0, out.output
    assert fg.read_online([{"sku": "a"}])[0]["price"] == 2.0


def test_a_deleted_group_takes_its_quarantine_profiles_and_quality_reports(
    fs: fti.FeatureStore,
) -> None:
    fg = fs.feature_group(
        "tx",
        primary_key=["id"],
        event_time="ts",
        expectations=[fti.expect.between("amount", 0, 100)],
        on_invalid="quarantine",
    )
    fg.insert(pd.DataFrame({"id": [1, 2], "ts": [T0, T0], "amount": [5.0, 500.0]}))
    assert len(fg.quarantined()) == 1
    assert len(fg.validation_reports()) == 1
    assert fg.statistics().rows == 1
    base = Path(fs._ctx.offline.path(fg.spec.key)).parent
    owned = [p.name for p in base.iterdir() if p.name.startswith(fg.spec.key)]
    assert sorted(owned) == sorted(
        [fg.spec.key, f"{fg.spec.key}__quarantine", f"{fg.spec.key}__profiles"]
    )
    fg.delete()
    assert [p.name for p in base.iterdir() if p.name.startswith(fg.spec.key)] == []
    assert fs._ctx.registry.events(feature_groups.QUALITY_KIND, "tx", 1) == []
    again = fs.feature_group("tx", primary_key=["id"], event_time="ts")
    assert again.read().empty
