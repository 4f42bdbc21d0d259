"""The registry's lineage edge table (migration 0003) on SQLite and PostgreSQL: edges are
written with their record, replaced and dropped with it, and a store built before the table
existed (at 0002) shows the same lineage once upgraded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

import fti
from fti.backends.registry import migrations
from fti.backends.registry.migrations import VERSION_TABLE, head_revision
from fti.backends.registry.sql import SqlRegistry
from fti.backends.registry.sql_lineage import edges
from fti.store import context_of

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@fti.feature_pipeline
def load(fs: fti.FeatureStore, path: str, start: datetime, hours: int) -> None:
    fti.record_input_file(Path(path))
    fs.feature_group("flights", primary_key=["flight"], event_time="t").insert(
        pd.DataFrame(
            {
                "flight": [int(start.timestamp()) + i for i in range(hours)],
                "t": [start + timedelta(hours=i) for i in range(hours)],
                "distance": [float(i) for i in range(hours)],
                "delayed": [i % 2 for i in range(hours)],
            }
        )
    )


@fti.training_pipeline
def train(fs: fti.FeatureStore) -> None:
    from sklearn.linear_model import LogisticRegression

    fv = fs.get_feature_view("delays", version=1)
    td = fv.create_training_dataset()
    x, y = td.read("train")
    fs.models.register(
        "delays", LogisticRegression().fit(x, y.squeeze()), feature_view=fv, training_dataset=td
    )


def _build(fs: fti.FeatureStore, tmp_path: Path) -> dict[str, Any]:
    raw = tmp_path / "flights.csv"
    raw.write_text("flight,distance\n1,100\n")
    first = fti.run_pipeline(load, fs=fs, params={"path": str(raw), "start": T0, "hours": 8})
    flights = fs.get_feature_group("flights", version=1)
    fv = fs.feature_view("delays", query=flights.select(["distance"]), labels=["delayed"])
    outside = fv.create_training_dataset()  # a dataset made outside any run
    fti.run_pipeline(
        load, fs=fs, params={"path": str(raw), "start": T0 + timedelta(hours=8), "hours": 8}
    )
    trained = fti.run_pipeline(train, fs=fs)
    return {"first": first.id, "trained": trained.id, "td": outside.version}


def _lineages(fs: fti.FeatureStore, ids: dict[str, Any]) -> dict[str, str]:
    targets: list[tuple[str, ...]] = [
        ("model", "delays"),
        ("feature_group", "flights", "1"),
        ("training_dataset", "delays_v1", str(ids["td"])),
        ("run", ids["first"]),
        ("run", ids["trained"]),
        ("feature_view", "delays", "1"),
    ]
    out = {}
    for t in targets:
        target = (t[0], t[1], int(t[2])) if len(t) == 3 else (t[0], t[1])
        lin = fs.lineage(target)
        out[" ".join(t)] = lin.render() + repr(lin.files()) + repr(lin.edges)
    return out


def test_an_upgraded_store_shows_the_same_lineage(registry_url: str, tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    fs = fti.connect(tmp_path / "store", registry=registry_url)
    ids = _build(fs, tmp_path)
    before = _lineages(fs, ids)
    assert ids["trained"] in before["model delays"]
    fs.close()

    # Take the registry back to 0002 (the edge table did not exist) and open it again.
    reg = SqlRegistry(registry_url)
    with reg.engine.begin() as conn:
        from alembic import command

        command.downgrade(migrations._config(conn), "0002")
        assert "fti_lineage_edges" not in sa.inspect(conn).get_table_names()
    reg.close()

    fs = fti.connect(tmp_path / "store", registry=registry_url)
    try:
        registry = context_of(fs).registry
        assert isinstance(registry, SqlRegistry)
        with registry.engine.connect() as conn:
            rev = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
            assert rev.all() == [head_revision()]
            assert conn.execute(sa.select(sa.func.count()).select_from(edges)).scalar()
        assert _lineages(fs, ids) == before
    finally:
        fs.close()


def _edge_owners(registry: SqlRegistry) -> list[tuple[str, str, str, str]]:
    with registry.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                edges.c.owner_name, edges.c.src_name, edges.c.dst_name, edges.c.detail
            ).order_by(edges.c.id)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_edges_follow_their_record(registry_url: str) -> None:
    reg = SqlRegistry(registry_url)
    try:
        body: dict[str, Any] = {"id": "r1", "kind": "feature", "inputs": [], "outputs": []}
        rec = reg.create("run", "r1", 1, body)
        assert _edge_owners(reg) == []  # a running run has read and written nothing yet
        body["inputs"] = [{"kind": "file", "name": "/raw/a.csv", "version": None, "size": 3}]
        body["outputs"] = [{"kind": "feature_group", "name": "w", "version": 1, "table_version": 2}]
        reg.update("run", "r1", 1, body, revision=rec.revision)
        assert [(o, s, d) for o, s, d, _ in _edge_owners(reg)] == [
            ("r1", "/raw/a.csv", "r1"),
            ("r1", "r1", "w"),
        ]
        into_w = reg.lineage_edges([("feature_group", "w", 1)], direction="into")
        assert [(e.source, e.table_version) for e in into_w] == [(("run", "r1", None), 2)]
        out_of_file = reg.lineage_edges([("file", "/raw/a.csv", None)], direction="out_of")
        assert [e.target for e in out_of_file] == [("run", "r1", None)]
        assert reg.lineage_latest_version("feature_group", "w") == 1
        assert reg.lineage_names("feature_group") == ["w"]
        # a record kind without lineage writes no edges; deleting the run drops its edges
        reg.create("feature_group", "w", 1, {"inputs": body["inputs"]})
        assert len(_edge_owners(reg)) == 2
        reg.delete("run", "r1", 1)
        assert _edge_owners(reg) == []
        assert reg.lineage_latest_version("feature_group", "w") is None
    finally:
        reg.close()


def _run_body(rid: str, inputs: list[Any], outputs: list[Any]) -> dict[str, Any]:
    def entry(e: tuple[Any, ...]) -> dict[str, Any]:
        return {"kind": e[0], "name": e[1], "version": e[2], "table_version": e[3]}

    return {
        "id": rid,
        "kind": "feature",
        "pipeline": rid,
        "status": "succeeded",
        "inputs": [entry(i) for i in inputs],
        "outputs": [entry(o) for o in outputs],
    }


def test_a_bounded_walk_reads_the_first_edges_and_more_only_when_needed(
    registry_url: str,
) -> None:
    """The nearest ``limit`` nodes of a walk that reads a few edges per node first equal the
    first ``limit`` of the full walk, also when the edges read first are all filtered out by
    the table-version bound; the SQL registry and the in-memory edges agree."""
    from fti.backends.registry.lineage_edges import MemoryEdges
    from fti.services.lineage_graph import LineageGraph, LineageNode, _Index

    records: list[tuple[str, str, int, dict[str, Any]]] = []
    # 40 early readers of table version 0, then 5 readers of version 100 (run ids sort so)
    for i in range(40):
        rid = f"a{i:03d}"
        body = _run_body(rid, [("feature_group", "g", 1, 0)], [("model", f"m{i}", 1, None)])
        records.append(("run", rid, 1, body))
    for i in range(5):
        rid = f"b{i:03d}"
        body = _run_body(rid, [("feature_group", "g", 1, 100)], [("model", "late", i + 1, None)])
        records.append(("run", rid, 1, body))
    records.append(("run", "w", 1, _run_body("w", [], [("feature_group", "g", 1, 100)])))
    td = {"training_dataset": {"feature_view": "v", "fv_version": 1, "version": 1}}
    records.append(("model", "late", 1, td))
    records.append(("model", "late", 2, td))
    # run c read the dataset and wrote model late v2: the model record's edge is not shown
    records.append(("run", "c", 1, _run_body("c", [("training_dataset", "v_v1", 1, None)],
                                             [("model", "late", 2, None)])))  # fmt: skip
    reg = SqlRegistry(registry_url)
    try:
        for kind, name, version, body in records:
            reg.create(kind, name, version, body)
        from fti.backends.registry.sqlite_readonly import SqliteReadonlyRegistry

        readonly = SqliteReadonlyRegistry.open_at_head(registry_url)  # None on PostgreSQL
        sources: list[Any] = [reg, MemoryEdges(records), *([readonly] if readonly else [])]
        assert (readonly is None) == registry_url.startswith("postgresql")
        for source in sources:
            w = LineageNode("run", "w", None)
            full = LineageGraph(_Index(source), w).downstream()
            assert [n.name for n in full if n.kind == "run"] == [f"b{i:03d}" for i in range(5)]
            for limit in (1, 3, 6):
                bounded = LineageGraph(_Index(source), w, limit=limit).downstream()
                assert bounded == full[:limit]
            g = LineageNode("feature_group", "g", 1)
            full_g = LineageGraph(_Index(source), g).downstream()
            assert len(full_g) == 2 * 45
            assert LineageGraph(_Index(source), g, limit=7).downstream() == full_g[:7]
            late = LineageGraph(_Index(source), LineageNode("model", "late", 1))
            # the registry's dataset -> model edge is shown: no run read the dataset
            assert [n.key for n in late.upstream()][:2] == [
                ("run", "b000", None),
                ("training_dataset", "v_v1", 1),
            ]
            late2 = LineageGraph(_Index(source), LineageNode("model", "late", 2))
            assert [e.source.name for e in late2.edges][:2] == ["b001", "c"]
            assert ("model registry",) not in [
                tuple(v for k, v in e.detail if k == "via") for e in late2.edges
            ]
            assert source.lineage_latest_version("model", "late") == 5  # run b004 wrote v5
    finally:
        reg.close()
