"""Server-side SVG layout of a lineage graph: one column per hop from the object (upstream to
the left, downstream to the right), nodes stacked in each column, edges as straight lines.
The template draws the result; every label goes through Jinja2's autoescape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fti.services import lineage_graph
from fti.services.context import StoreContext
from fti.services.lineage_graph import RUN_KIND, LineageGraph, LineageNode

__all__ = ["MAX_NODES_PER_SIDE", "Layout", "LineageIndex", "layout", "object_href"]

MAX_NODES_PER_SIDE = 60
COL_WIDTH, ROW_HEIGHT, BOX_W, BOX_H, PAD = 230, 56, 200, 40, 20

NodeKey = tuple[str, str, int | None]


@dataclass(frozen=True)
class Layout:
    """Boxes and lines in SVG coordinates; ``hidden``: more nodes exist than were drawn."""

    width: int
    height: int
    nodes: list[dict[str, Any]]
    edges: list[dict[str, float]]
    hidden: bool


class LineageIndex:
    """The lineage of one object, bounded for drawing: a walk over the registry's indexed
    edge table (a few queries per page, the same with 100 or 10,000 runs)."""

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx

    def graph(self, kind: str, name: str, version: int | None) -> LineageGraph:
        return lineage_graph.lineage(self._ctx, kind, name, version, limit=MAX_NODES_PER_SIDE + 1)


def object_href(kind: str, name: str, version: int | None) -> str | None:
    """The page of an object (relative to the UI root), if it has one."""
    n = quote(name, safe="")
    if kind == "feature_group" and version is not None:
        return f"/groups/{n}/{version}"
    if kind == "feature_view" and version is not None:
        return f"/views/{n}/{version}"
    if kind == "training_dataset" and version is not None:
        fv, sep, fv_version = name.rpartition("_v")
        if sep and fv_version.isdigit():
            return f"/views/{quote(fv, safe='')}/{fv_version}#td-{version}"
    if kind == "model":
        return f"/models/{n}" + ("" if version is None else f"#v{version}")
    if kind == RUN_KIND:
        return f"/runs/{n}"
    return None


def lineage_href(node: LineageNode) -> str:
    href = f"/lineage/{quote(node.kind, safe='')}/{quote(node.name, safe='')}"
    return href if node.version is None else f"{href}?version={node.version}"


def _depths(graph: LineageGraph) -> dict[NodeKey, int]:
    """Hops from the root: negative upstream, positive downstream (first reached wins)."""
    depth: dict[NodeKey, int] = {graph.root.key: 0}
    up = {n.key for n in graph.upstream()}
    into: dict[NodeKey, list[NodeKey]] = {}
    out_of: dict[NodeKey, list[NodeKey]] = {}
    for e in graph.edges:
        into.setdefault(e.target.key, []).append(e.source.key)
        out_of.setdefault(e.source.key, []).append(e.target.key)
    for step, sign, members in ((into, -1, up), (out_of, 1, None)):
        frontier = [graph.root.key]
        while frontier:
            nxt = []
            for key in frontier:
                for b in step.get(key, []):
                    if b in depth or (members is not None and b not in members):
                        continue
                    depth[b] = depth[key] + sign
                    nxt.append(b)
            frontier = nxt
    return depth


def _label(node: LineageNode) -> tuple[str, str]:
    info = node.info()
    if node.kind == RUN_KIND:
        return f"run {info.get('pipeline', '?')}", f"{info.get('status', '?')} · {node.name[:19]}"
    if node.kind == "file":
        return f"file {node.name.rsplit('/', 1)[-1]}", f"sha256 {str(info.get('sha256', ''))[:10]}…"
    version = "" if node.version is None else f" v{node.version}"
    return f"{node.name}{version}", node.kind.replace("_", " ")


def layout(graph: LineageGraph) -> Layout:
    """Place the root, its upstream and its downstream nodes (at most
    :data:`MAX_NODES_PER_SIDE` per side, nearest first; the graph is walked one node further
    to know whether there are more)."""
    up, down = graph.upstream(), graph.downstream()
    shown = [graph.root, *up[:MAX_NODES_PER_SIDE], *down[:MAX_NODES_PER_SIDE]]
    sides = ["root"] + ["upstream"] * len(up[:MAX_NODES_PER_SIDE])
    sides += ["downstream"] * len(down[:MAX_NODES_PER_SIDE])
    side_of = {n.key: side for n, side in zip(shown, sides, strict=True)}
    hidden = len(up) > MAX_NODES_PER_SIDE or len(down) > MAX_NODES_PER_SIDE
    depth = _depths(graph)
    keys = {n.key for n in shown}
    columns: dict[int, list[LineageNode]] = {}
    for n in shown:
        columns.setdefault(depth.get(n.key, 0), []).append(n)
    low = min(columns)
    pos: dict[NodeKey, tuple[float, float]] = {}
    nodes = []
    for d in sorted(columns):
        for i, n in enumerate(columns[d]):
            x, y = PAD + (d - low) * COL_WIDTH, PAD + i * ROW_HEIGHT
            pos[n.key] = (x, y)
            title, subtitle = _label(n)
            nodes.append(
                {
                    "x": x,
                    "y": y,
                    "w": BOX_W,
                    "h": BOX_H,
                    "title": title[:28],
                    "subtitle": subtitle[:34],
                    "full": n.label(),
                    "kind": n.kind,
                    "root": n.key == graph.root.key,
                    "side": side_of[n.key],
                    "hops": abs(d),
                    "href": lineage_href(n),
                }
            )
    edges = []
    seen = set()
    for e in graph.edges:
        if (
            e.source.key in keys
            and e.target.key in keys
            and (e.source.key, e.target.key) not in seen
        ):
            seen.add((e.source.key, e.target.key))
            (x1, y1), (x2, y2) = pos[e.source.key], pos[e.target.key]
            edges.append({"x1": x1 + BOX_W, "y1": y1 + BOX_H / 2, "x2": x2, "y2": y2 + BOX_H / 2})
    rows = max(len(c) for c in columns.values())
    width = 2 * PAD + (max(columns) - low) * COL_WIDTH + BOX_W
    return Layout(width, 2 * PAD + rows * ROW_HEIGHT, nodes, edges, hidden)
