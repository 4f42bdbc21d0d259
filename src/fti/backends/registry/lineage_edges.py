"""Lineage edges derived from registry records, kept in an indexed table next to them.

Three kinds of record carry lineage:

- a pipeline run (kind ``"run"``): an input entry is an edge artifact -> run, an output entry
  run -> artifact (``fti._internal.lineage_events`` says what an entry holds);
- a model version: training dataset -> model (``body["training_dataset"]``);
- a training dataset version: feature group @ table version -> training dataset
  (``body["table_versions"]``) and feature view -> training dataset.

The registry writes a record's edges in the transaction that writes the record (and replaces
them when the record changes, drops them when it is deleted), so a lineage walk is a few
indexed queries instead of a scan of every run. Which edges a reader shows (a record's edge is
hidden when a run reported the same link) is decided by ``fti.services.lineage_graph``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "EDGE_KINDS",
    "NO_VERSION",
    "EdgeRow",
    "EdgeSource",
    "MemoryEdges",
    "NodeKey",
    "edges_of",
    "run_info",
    "training_dataset_name",
]

NodeKey = tuple[str, str, int | None]
RUN, MODEL, TD = "run", "model", "training_dataset"
EDGE_KINDS = (RUN, MODEL, TD)  # record kinds that carry lineage edges, in reading order
NO_VERSION = -1  # how a node without a version (a run, a file) is stored: indexes skip NULLs


@dataclass(frozen=True)
class EdgeRow:
    """One stored edge. ``detail``: the entry's facts (``table_version``, a file's sha256, or
    ``via`` for an edge a record implies); ``*_info``: facts about the nodes (a run's status);
    ``owner``: the record it came from, ``seq`` its position there."""

    source: NodeKey
    target: NodeKey
    detail: dict[str, Any]
    source_info: dict[str, Any]
    target_info: dict[str, Any]
    versioned: str
    owner: tuple[str, str, int]
    seq: int
    id: int = 0  # the row id once stored

    @property
    def table_version(self) -> int | None:
        value = self.detail.get("table_version")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


def training_dataset_name(feature_view: str, feature_view_version: int) -> str:
    """Lineage name of a training dataset: its feature view's ``<name>_v<version>``."""
    return f"{feature_view}_v{feature_view_version}"


def run_info(body: dict[str, Any]) -> dict[str, Any]:
    """What a run node shows: function, pipeline, pipeline kind, start time, status."""
    return {
        "function": body.get("function"),
        "pipeline": body.get("pipeline"),
        "pipeline_kind": body.get("kind"),
        "started_at": body.get("started_at"),
        "status": body.get("status"),
    }


def _entry_detail(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in ("kind", "name", "version")}


def _artifact(entry: dict[str, Any]) -> tuple[NodeKey, dict[str, Any]]:
    version = entry.get("version")
    key = (str(entry["kind"]), str(entry["name"]), None if version is None else int(version))
    return key, (_entry_detail(entry) if key[0] == "file" else {})


def _run_edges(name: str, version: int, body: dict[str, Any]) -> list[EdgeRow]:
    owner = (RUN, name, version)
    run: NodeKey = (RUN, str(body.get("id", name)), None)
    info = run_info(body)
    rows: list[EdgeRow] = []
    for entry in body.get("inputs") or []:
        art, art_info = _artifact(entry)
        rows.append(
            EdgeRow(art, run, _entry_detail(entry), art_info, info, "source", owner, len(rows))
        )
    for entry in body.get("outputs") or []:
        art, art_info = _artifact(entry)
        rows.append(
            EdgeRow(run, art, _entry_detail(entry), info, art_info, "target", owner, len(rows))
        )
    return rows


def _model_edges(name: str, version: int, body: dict[str, Any]) -> list[EdgeRow]:
    td = body.get("training_dataset")
    if not isinstance(td, dict) or not {"feature_view", "fv_version", "version"} <= set(td):
        return []
    source = (TD, training_dataset_name(str(td["feature_view"]), int(td["fv_version"])))
    detail = {"via": "model registry"}
    return [
        EdgeRow(
            (*source, int(td["version"])),
            (MODEL, name, version),
            detail,
            {},
            {},
            "source",
            (MODEL, name, version),
            0,
        )
    ]


def _training_dataset_edges(name: str, version: int, body: dict[str, Any]) -> list[EdgeRow]:
    owner, target = (TD, name, version), (TD, name, version)
    rows: list[EdgeRow] = []
    table_versions = body.get("table_versions")
    for key, tv in (table_versions if isinstance(table_versions, dict) else {}).items():
        group, sep, group_version = str(key).rpartition("_v")
        if not sep or not group_version.isdigit() or not isinstance(tv, int):
            continue
        detail = {"table_version": tv, "via": "training dataset record"}
        source = ("feature_group", group, int(group_version))
        rows.append(EdgeRow(source, target, detail, {}, {}, "source", owner, len(rows)))
    fv, fv_version = body.get("feature_view"), body.get("feature_view_version")
    if isinstance(fv, str) and isinstance(fv_version, int):
        detail = {"via": "training dataset record"}
        source = ("feature_view", fv, fv_version)
        rows.append(EdgeRow(source, target, detail, {}, {}, "source", owner, len(rows)))
    return rows


def edges_of(kind: str, name: str, version: int, body: dict[str, Any]) -> list[EdgeRow]:
    """The edges a record implies (none for kinds without lineage)."""
    if kind == RUN:
        return _run_edges(name, version, body)
    if kind == MODEL:
        return _model_edges(name, version, body)
    if kind == TD:
        return _training_dataset_edges(name, version, body)
    return []


class EdgeSource(Protocol):
    """What a lineage walk reads: the registry (its indexed table), or :class:`MemoryEdges`."""

    def lineage_edges(
        self, nodes: list[NodeKey], *, direction: str, per_node: int | None = None
    ) -> list[EdgeRow]: ...

    def lineage_reported(self, links: list[tuple[NodeKey, NodeKey, bool]]) -> list[bool]: ...

    def lineage_latest_version(self, kind: str, name: str) -> int | None: ...


class MemoryEdges:
    """The edges of records held in memory, answering the registry's edge queries (the
    in-memory double of the edge table: unit tests of the walk use it)."""

    def __init__(self, records: Iterable[tuple[str, str, int, dict[str, Any]]]) -> None:
        self.rows = [
            dataclasses.replace(row, id=i)
            for i, row in enumerate((row for rec in records for row in edges_of(*rec)), start=1)
        ]

    @classmethod
    def of_runs(cls, runs: Iterable[dict[str, Any]]) -> MemoryEdges:
        """The edges of run bodies (each with its ``id``)."""
        return cls((RUN, str(body["id"]), 1, body) for body in runs)

    def lineage_edges(
        self, nodes: list[NodeKey], *, direction: str, per_node: int | None = None
    ) -> list[EdgeRow]:
        wanted = set(nodes)
        found: dict[NodeKey, list[EdgeRow]] = {}
        for r in self.rows:
            node = r.target if direction == "into" else r.source
            if node in wanted:
                found.setdefault(node, []).append(r)
        order = {kind: i for i, kind in enumerate(EDGE_KINDS)}

        def key(r: EdgeRow) -> tuple[int, str, int, int]:
            return (order[r.owner[0]], r.owner[1], r.owner[2], r.seq)

        return [r for rows in found.values() for r in sorted(rows, key=key)[:per_node]]

    def lineage_reported(self, links: list[tuple[NodeKey, NodeKey, bool]]) -> list[bool]:
        return [self._reported(s, t, any_run=a) for s, t, a in links]

    def _reported(self, source: NodeKey, target: NodeKey, *, any_run: bool) -> bool:
        by_runs = [r for r in self.rows if r.target == target and r.owner[0] == RUN]
        if any_run:
            return bool(by_runs)
        writers = {r.source for r in by_runs}
        return source in writers or any(
            r.source == source and r.target in writers and r.owner[0] == RUN for r in self.rows
        )

    def lineage_latest_version(self, kind: str, name: str) -> int | None:
        versions = [
            k[2]
            for r in self.rows
            for k in (r.source, r.target)
            if k[0] == kind and k[1] == name and k[2] is not None
        ]
        return max(versions) if versions else None
