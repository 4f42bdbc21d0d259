"""Lineage: the event recorder, the exact graph walk (table-version bounds) and fs.lineage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.tree import Tree

import fti
from fti._internal import lineage_events
from fti.backends.registry.lineage_edges import MemoryEdges
from fti.pipelines.lineage import lineage as cli_lineage
from fti.pipelines.lineage import parse_target
from fti.services.lineage_graph import LineageGraph, LineageNode, _Index
from fti.store import context_of

T0 = datetime(2013, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------------- recorder
def test_events_are_a_no_op_outside_a_run() -> None:
    assert lineage_events.active() is None
    lineage_events.record_input("feature_group", "weather", 1, table_version=1)
    lineage_events.record_output("model", "m", 1)
    assert lineage_events.active() is None


def test_recorder_collects_deduplicates_and_nests() -> None:
    with lineage_events.recording() as outer:
        lineage_events.record_input("feature_group", "weather", 1, table_version=3)
        lineage_events.record_input("feature_group", "weather", 1, table_version=3)
        lineage_events.record_input("feature_group", "weather", 1, table_version=4)
        with lineage_events.recording() as inner:
            lineage_events.record_output("model", "m", 2)
        lineage_events.record_output("training_dataset", "delays_v1", 1)
    assert outer.inputs == [
        {"kind": "feature_group", "name": "weather", "version": 1, "table_version": 3},
        {"kind": "feature_group", "name": "weather", "version": 1, "table_version": 4},
    ]
    assert outer.outputs == [{"kind": "training_dataset", "name": "delays_v1", "version": 1}]
    assert inner.outputs == [{"kind": "model", "name": "m", "version": 2}]


# ---------------------------------------------------------------------- graph walk
def _run(rid: str, kind: str, inputs: list[Any], outputs: list[Any]) -> dict[str, Any]:
    def entry(e: tuple[Any, ...]) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": e[0], "name": e[1], "version": e[2]}
        if len(e) > 3:
            d["table_version"] = e[3]
        return d

    return {
        "id": rid,
        "kind": kind,
        "pipeline": rid,
        "function": f"flow.py:{rid}",
        "status": "succeeded",
        "started_at": T0.isoformat(),
        "inputs": [entry(i) for i in inputs],
        "outputs": [entry(o) for o in outputs],
    }


def _graph(runs: list[dict[str, Any]], kind: str, name: str, version: int | None) -> LineageGraph:
    return LineageGraph(_Index(MemoryEdges.of_runs(runs)), LineageNode(kind, name, version))


def _names(nodes: list[LineageNode], kind: str = "run") -> set[str]:
    return {n.name for n in nodes if n.kind == kind}


def test_walk_follows_exact_table_versions() -> None:
    runs = [
        _run("fa", "feature", [("file", "/raw/a.csv", None)], [("feature_group", "w", 1, 1)]),
        _run("fb", "feature", [("file", "/raw/b.csv", None)], [("feature_group", "w", 1, 2)]),
        _run("t1", "training", [("feature_group", "w", 1, 1)], [("model", "m", 1)]),
        _run("t2", "training", [("feature_group", "w", 1, 2)], [("model", "m", 2)]),
        _run("p2", "inference", [("model", "m", 2)], [("prediction", "preds", 1, 1)]),
    ]
    # model 1 was trained on table version 1: only run fa and its file are upstream
    m1 = _graph(runs, "model", "m", 1)
    assert _names(m1.upstream()) == {"t1", "fa"}
    assert _names(m1.upstream(), "file") == {"/raw/a.csv"}
    assert m1.downstream() == []
    # model 2 read table version 2, which contains both writes
    m2 = _graph(runs, "model", "m", 2)
    assert _names(m2.upstream()) == {"t2", "fa", "fb"}
    assert _names(m2.upstream("file"), "file") == {"/raw/a.csv", "/raw/b.csv"}
    assert _names(m2.downstream()) == {"p2"}
    assert [(n.kind, n.name) for n in m2.downstream("prediction")] == [("prediction", "preds")]
    # forward from the runs: fb's write is not in what t1 read
    assert _names(_graph(runs, "run", "fb", None).downstream()) == {"t2", "p2"}
    assert _names(_graph(runs, "run", "fa", None).downstream()) == {"t1", "t2", "p2"}
    assert _names(_graph(runs, "run", "fa", None).downstream(), "model") == {"m"}
    # forward from the feature group (any table version): every consumer
    fg = _graph(runs, "feature_group", "w", 1)
    assert _names(fg.downstream()) == {"t1", "t2", "p2"}
    assert _names(fg.upstream()) == {"fa", "fb"}
    # from a raw file forward to the predictions
    raw = _graph(runs, "file", "/raw/b.csv", None)
    assert _names(raw.downstream()) == {"fb", "t2", "p2"}


@settings(max_examples=40, deadline=None)
@given(
    writes=st.integers(min_value=1, max_value=6),
    reads=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=6),
)
def test_walk_matches_a_plain_oracle(writes: int, reads: list[int]) -> None:
    # feature run i writes table version i; training run j reads table version reads[j]
    reads = [min(r, writes) for r in reads]
    runs = [
        _run(f"f{i}", "feature", [], [("feature_group", "g", 1, i)]) for i in range(1, writes + 1)
    ] + [
        _run(f"t{j}", "training", [("feature_group", "g", 1, tv)], [("model", "m", j)])
        for j, tv in enumerate(reads, start=1)
    ]
    for j, tv in enumerate(reads, start=1):
        expected = {f"f{i}" for i in range(1, tv + 1)} | {f"t{j}"}
        assert _names(_graph(runs, "model", "m", j).upstream()) == expected
    for i in range(1, writes + 1):
        expected = {f"t{j}" for j, tv in enumerate(reads, start=1) if tv >= i}
        assert _names(_graph(runs, "run", f"f{i}", None).downstream()) == expected


def test_rendering_marks_repeated_nodes_and_lists_each_file_once() -> None:
    runs = [
        _run("fa", "feature", [("file", "/raw/a.csv", None)], [("feature_group", "w", 1, 1)]),
        _run("fb", "feature", [("file", "/raw/a.csv", None)], [("feature_group", "v", 1, 1)]),
        _run("t1", "training",
             [("feature_group", "w", 1, 1), ("feature_group", "v", 1, 1),
              ("file", "/raw/a.csv", None)],
             [("model", "m", 1)]),
        _run("t2", "training", [("model", "m", 1), ("feature_group", "w", 1, 1)],
             [("model", "m", 2)]),
    ]  # fmt: skip
    runs[0]["inputs"][0].update(sha256="aaaa" * 16, size=10)
    runs[1]["inputs"][0].update(sha256="bbbb" * 16, size=12)  # the file changed in between
    runs[2]["inputs"][2].update(sha256="bbbb" * 16, size=12)
    g = _graph(runs, "model", "m", 2)
    text = g.render("upstream")
    assert text.splitlines()[0] == "upstream of model m v2:"
    assert "<- feature_group w v1 @ table version 1" in text
    assert "(see above)" in text  # w is reached via t2 and via model m v1's run t1
    assert text.count("/raw/a.csv") == 1  # each file once ...
    line = next(x for x in text.splitlines() if "/raw/a.csv" in x)
    assert "(2 versions)" in line  # ... with its versions and the runs that read each
    assert "sha256 aaaaaaaaaaaa… (10 bytes), read by run fa" in line
    assert "sha256 bbbbbbbbbbbb… (12 bytes), read by run t1, run fb" in line
    files = g.files()
    assert [f["path"] for f in files] == ["/raw/a.csv"]
    assert sorted((v["size"], sorted(v["runs"])) for v in files[0]["versions"]) == [
        (10, ["fa"]),
        (12, ["fb", "t1"]),
    ]
    assert "downstream of model m v2:\n  (nothing recorded)" in str(g)
    assert isinstance(g.tree("downstream"), Tree)


# ---------------------------------------------------------------------- through real runs
@fti.feature_pipeline
def load_weather(fs: fti.FeatureStore, path: Path) -> None:
    fti.record_input_file(path)
    raw = pd.read_csv(path)
    raw["time_hour"] = pd.to_datetime(raw["time_hour"], utc=True)
    fs.feature_group("weather", primary_key=["origin"], event_time="time_hour").insert(raw)


@fti.training_pipeline
def fit(fs: fti.FeatureStore, name: str = "delays") -> None:
    fs.get_feature_group("weather", version=1).read()
    lineage_events.record_output("model", name, 1)


@fti.inference_pipeline
def score(fs: fti.FeatureStore) -> None:
    lineage_events.record_input("model", "delays", 1)
    lineage_events.record_output("prediction", "delay_predictions", 1, table_version=1)


def test_fs_lineage_from_model_back_to_raw_files(fs: fti.FeatureStore, tmp_path: Path) -> None:
    raw = tmp_path / "weather.csv"
    pd.DataFrame(
        {"origin": ["JFK", "EWR"], "time_hour": [T0, T0 + timedelta(hours=1)], "temp": [1.0, 2.0]}
    ).to_csv(raw, index=False)
    feature_run = fti.run_pipeline(load_weather, fs=fs, params={"path": str(raw)})
    train_run = fti.run_pipeline(fit, fs=fs)
    score_run = fti.run_pipeline(score, fs=fs)

    model = fs.lineage(("model", "delays", 1))
    assert [n.name for n in model.upstream("file")] == [str(raw.resolve())]
    assert _names(model.upstream()) == {feature_run.id, train_run.id}
    assert _names(model.downstream()) == {score_run.id}
    assert _names(model.downstream(), "prediction") == {"delay_predictions"}

    weather = fs.lineage(fs.get_feature_group("weather", version=1))
    assert _names(weather.downstream(), "model") == {"delays"}
    assert _names(weather.downstream(), "prediction") == {"delay_predictions"}
    assert _names(fs.lineage(feature_run).downstream()) == {train_run.id, score_run.id}
    # the latest version when none is given, and the CLI spelling
    assert fs.lineage(("model", "delays")).root.version == 1
    via_cli = cli_lineage(fs, "model", "delays:1")
    assert via_cli.upstream() == model.upstream()
    assert cli_lineage(fs, "run", train_run.id[:24]).root.name == train_run.id
    with pytest.raises(fti.ValidationError, match="Cannot find the lineage"):
        fs.lineage(object())


def test_model_registry_links_a_model_to_its_training_dataset(fs: fti.FeatureStore) -> None:
    # a model registered outside any run still points at the dataset it was trained on
    registry = context_of(fs).registry
    registry.create(
        "model",
        "delays",
        1,
        {"training_dataset": {"feature_view": "delays", "fv_version": 2, "version": 3}},
    )
    registry.create(
        "run",
        "r1",
        1,
        _run(
            "r1", "training", [("feature_group", "w", 1, 4)], [("training_dataset", "delays_v2", 3)]
        ),
    )
    up = fs.lineage(("model", "delays", 1)).upstream()
    assert ("training_dataset", "delays_v2", 3) in [n.key for n in up]
    assert ("feature_group", "w", 1) in [n.key for n in up]


def test_parse_target() -> None:
    assert parse_target("fg", "weather:2") == ("feature_group", "weather", 2)
    assert parse_target("model", "delays") == ("model", "delays", None)
    assert parse_target("td", "delays_v1:3") == ("training_dataset", "delays_v1", 3)
    assert parse_target("file", "/data/x:1.csv") == ("file", "/data/x:1.csv", None)
    with pytest.raises(fti.ValidationError, match="Unknown lineage kind"):
        parse_target("table", "x")
    with pytest.raises(fti.ValidationError, match="Invalid version"):
        parse_target("model", "delays:latest")


@fti.feature_pipeline
def load_flights(fs: fti.FeatureStore, path: Path, start: datetime, end: datetime) -> None:
    fti.record_input_file(path)
    hours = int((end - start) / timedelta(hours=1))
    frame = pd.DataFrame(
        {
            "flight": [int(start.timestamp()) + i for i in range(hours)],
            "t": [start + timedelta(hours=i) for i in range(hours)],
            "distance": [float(i) for i in range(hours)],
            "delayed": [i % 2 for i in range(hours)],
        }
    )
    fs.feature_group("flights", primary_key=["flight"], event_time="t").insert(frame)


def test_lineage_of_a_model_and_dataset_made_outside_runs(
    fs: fti.FeatureStore, tmp_path: Path
) -> None:
    sklearn = pytest.importorskip("sklearn.linear_model")
    raw = tmp_path / "flights.csv"
    raw.write_text("flight,distance\n1,100\n")
    first = fti.run_pipeline(
        load_flights, fs=fs, params={"path": str(raw)}, start=T0, end=T0 + timedelta(hours=8)
    )
    flights = fs.get_feature_group("flights", version=1)
    fv = fs.feature_view("delays", query=flights.select(["distance"]), labels=["delayed"])
    td = fv.create_training_dataset()  # reads table version 1, outside any run
    later = fti.run_pipeline(
        load_flights,
        fs=fs,
        params={"path": str(raw)},
        start=T0 + timedelta(hours=8),
        end=T0 + timedelta(hours=16),
    )
    x, y = td.read("train")
    mv = fs.models.register(
        "delays", sklearn.LogisticRegression().fit(x, y.squeeze()), feature_view=fv,
        training_dataset=td,
    )  # fmt: skip
    # the dataset read table version 1: the later feature run is not upstream of it
    assert _names(fs.lineage(td).upstream()) == {first.id}
    model = fs.lineage(mv)
    assert [n.key for n in model.upstream()][:2] == [
        ("training_dataset", "delays_v1", td.version),
        ("feature_group", "flights", 1),
    ]
    assert _names(model.upstream()) == {first.id}
    assert [n.name for n in model.upstream("file")] == [str(raw.resolve())]
    assert later.id not in str(model)
