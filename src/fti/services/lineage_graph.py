"""Lineage as a graph over run records: artifacts (feature group versions, training datasets,
models, prediction sets, raw files) and the runs that read and wrote them.

Every pipeline run stores its ``inputs`` and ``outputs`` (see ``fti._internal.lineage_events``).
An input edge goes artifact -> run, an output edge run -> artifact. Feature groups are versioned
twice: the definition version (node identity) and the offline table version (edge detail).
Walking upstream from something that read table version 5 follows only the runs that wrote
table versions <= 5; walking downstream from a run that wrote table version 5 follows only the
runs that read table versions >= 5. That keeps the walk exact, not merely "same name".
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fti.backends.registry.lineage_edges import (
    EDGE_KINDS,
    EdgeRow,
    EdgeSource,
    NodeKey,
    run_info,
    training_dataset_name,
)
from fti.errors import NotFoundError, ValidationError
from fti.services import runs
from fti.services.context import StoreContext

if TYPE_CHECKING:
    from rich.tree import Tree

__all__ = [
    "RUN_KIND",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "build",
    "lineage",
    "target_of",
    "training_dataset_name",
]

RUN_KIND = runs.KIND  # registry kind of run records (fti.services.runs)
_BATCH = 1000  # queued nodes whose edges one query reads


@dataclass(frozen=True)
class LineageNode:
    """An artifact ``(kind, name, version)`` or a run ``("run", run_id, None)``."""

    kind: str
    name: str
    version: int | None = None
    detail: tuple[tuple[str, Any], ...] = field(default=(), compare=False, hash=False)

    @property
    def key(self) -> tuple[str, str, int | None]:
        return (self.kind, self.name, self.version)

    def info(self) -> dict[str, Any]:
        """Extra facts: a run's status and pipeline, a file's sha256 and size."""
        return dict(self.detail)

    def label(self) -> str:
        info = self.info()
        if self.kind == RUN_KIND:
            return (
                f"run {self.name} ({info.get('pipeline_kind', '?')} pipeline "
                f"{info.get('pipeline', '?')}, {info.get('status', '?')})"
            )
        if self.kind == "file":
            if "sha256" not in info and "etag" in info:  # an s3:// object read without hashing
                etag = str(info["etag"])[:12]
                return f"file {self.name} (etag {etag}…, {info.get('size', '?')} bytes)"
            sha = str(info.get("sha256", ""))[:12]
            return f"file {self.name} (sha256 {sha}…, {info.get('size', '?')} bytes)"
        version = "" if self.version is None else f" v{self.version}"
        return f"{self.kind} {self.name}{version}"

    def __str__(self) -> str:
        return self.label()


@dataclass(frozen=True)
class LineageEdge:
    """``source`` -> ``target``; ``detail`` holds e.g. ``table_version``, which is a version of
    the artifact at the ``versioned`` end: the source of a read, the target of a write."""

    source: LineageNode
    target: LineageNode
    detail: tuple[tuple[str, Any], ...] = ()
    versioned: str = "source"

    @property
    def table_version(self) -> int | None:
        value = dict(self.detail).get("table_version")
        return value if isinstance(value, int) else None


def _detail(entry: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(
        (k, v if not isinstance(v, list | dict) else repr(v)) for k, v in sorted(entry.items())
    )


def _order(row: EdgeRow) -> tuple[int, str, int, int]:
    """Runs' edges first (by run id, which starts with the start time), then the edges of
    model and training dataset records; within a record, its order."""
    return (EDGE_KINDS.index(row.owner[0]), row.owner[1], row.owner[2], row.seq)


class _Index:
    """Adjacency lists read from the registry's lineage edge table as a walk reaches nodes:
    each :meth:`load` is one indexed query for a whole frontier, each node's edges are read
    once per index. A bounded walk reads at most ``cap`` edges per node (the first in order)
    and the rest only if it needs them.

    A record implies edges a run may also have reported (a model registered inside a training
    pipeline run): such an edge is shown only when no run reported the link, directly or through
    the run, as if the record's edges were added after every run's (one indexed query each).
    """

    def __init__(self, source: EdgeSource) -> None:
        self._registry = source
        self.nodes: dict[NodeKey, LineageNode] = {}
        # direction -> node -> (edges in order, all of them?)
        self._rows: dict[str, dict[NodeKey, tuple[list[EdgeRow], bool]]] = {
            "into": {},
            "out_of": {},
        }
        self._hidden: dict[int, bool] = {}

    def _node(self, key: NodeKey, info: dict[str, Any]) -> LineageNode:
        known = self.nodes.get(key)
        if known is None or (info and not known.detail):
            node = LineageNode(key[0], key[1], key[2], _detail(info))
            self.nodes[key] = node
            return node
        return known

    def load(self, keys: Iterable[NodeKey], direction: str, cap: int | None = None) -> None:
        """Read the edges of ``keys`` in one direction (``"upstream"``: into them): all of
        them, or the first ``cap`` of each."""
        side = "into" if direction == "upstream" else "out_of"
        cache = self._rows[side]
        missing = [k for k in dict.fromkeys(keys) if not self.loaded(k, direction, cap)]
        if not missing:
            return
        found: dict[NodeKey, list[EdgeRow]] = {k: [] for k in missing}
        per_node = None if cap is None else cap + 1  # one more tells whether there are more
        for row in self._registry.lineage_edges(missing, direction=side, per_node=per_node):
            found[row.target if side == "into" else row.source].append(row)
            self._node(row.source, row.source_info)
            self._node(row.target, row.target_info)
        for key, rows in found.items():
            rows.sort(key=_order)
            complete = per_node is None or len(rows) < per_node
            cache[key] = (rows if complete else rows[:cap], complete)

    def loaded(self, key: NodeKey, direction: str, cap: int | None = None) -> bool:
        side = "into" if direction == "upstream" else "out_of"
        found = self._rows[side].get(key)
        return found is not None and (found[1] or (cap is not None and len(found[0]) >= cap))

    def _decide(self, rows: list[EdgeRow]) -> None:
        """Whether each record's edge among ``rows`` is hidden (a run reported the link it
        stands for), for all of them in one registry call."""
        todo = [r for r in rows if r.owner[0] != RUN_KIND and r.id not in self._hidden]
        if not todo:
            return
        # a group's table version read by a dataset: hidden if a run reported creating it
        links = [
            (r.source, r.target, r.source[0] == "feature_group" and r.table_version is not None)
            for r in todo
        ]
        for row, hidden in zip(todo, self._registry.lineage_reported(links), strict=True):
            self._hidden[row.id] = hidden

    def _shown(self, row: EdgeRow) -> bool:
        return row.owner[0] == RUN_KIND or not self._hidden[row.id]

    def _edge(self, row: EdgeRow) -> LineageEdge:
        return LineageEdge(
            self.nodes[row.source], self.nodes[row.target], _detail(row.detail), row.versioned
        )

    def edges(
        self, key: NodeKey, direction: str, *, cap: int | None = None
    ) -> tuple[list[LineageEdge], bool]:
        """The shown edges into (``"upstream"``) or out of ``key``, in order, and whether that
        is all of them (with ``cap``: the first ``cap`` edges read may be a prefix)."""
        self.load([key], direction, cap)
        rows, complete = self._rows["into" if direction == "upstream" else "out_of"][key]
        self._decide(rows)
        return [self._edge(r) for r in rows if self._shown(r)], complete

    def into(self, key: NodeKey) -> list[LineageEdge]:
        """The shown edges into ``key``."""
        return self.edges(key, "upstream")[0]

    def out_of(self, key: NodeKey) -> list[LineageEdge]:
        """The shown edges out of ``key``."""
        return self.edges(key, "downstream")[0]

    def remember(self, node: LineageNode) -> None:
        """Know ``node`` (and its facts) even if no edge mentions it (a run with no inputs)."""
        self.nodes[node.key] = node

    def latest_version(self, kind: str, name: str) -> int | None:
        return self._registry.lineage_latest_version(kind, name)


def _steps(
    edges: list[LineageEdge], bound: int | None, direction: str
) -> list[tuple[LineageEdge, LineageNode, int | None]]:
    """One hop: (edge, next node, next bound) for every edge allowed by the table-version bound.

    Upstream the bound is an upper bound (the table version that was read), downstream a lower
    bound (the table version that was written). Stepping onto the artifact an edge's table
    version belongs to sets the bound for the next hop.
    """
    out = []
    for edge in edges:
        tv = edge.table_version
        if bound is not None and tv is not None:
            if direction == "upstream" and tv > bound:
                continue
            if direction == "downstream" and tv < bound:
                continue
        nxt = edge.source if direction == "upstream" else edge.target
        onto_versioned = edge.versioned == ("source" if direction == "upstream" else "target")
        out.append((edge, nxt, tv if onto_versioned else None))
    return out


def _expand(
    index: _Index, node: LineageNode, bound: int | None, direction: str
) -> list[tuple[LineageEdge, LineageNode, int | None]]:
    """Every hop from ``node`` (see :func:`_steps`)."""
    return _steps(index.edges(node.key, direction)[0], bound, direction)


def _walk(
    index: _Index,
    root: LineageNode,
    direction: str,
    limit: int | None = None,
    depth: int | None = None,
) -> list[tuple[LineageNode, LineageEdge]]:
    """Breadth-first walk; (node, edge it was first reached by), each node once, root excluded;
    stops after ``limit`` nodes (the nearest) and ``depth`` hops when given. The edges of the
    whole queue are read in one query when the walk reaches a node not read yet."""
    seen: set[tuple[NodeKey, int | None]] = set()
    reached: dict[NodeKey, tuple[LineageNode, LineageEdge]] = {}
    queue: deque[tuple[LineageNode, int | None, int]] = deque([(root, None, 0)])
    cap = None if limit is None else limit + 8  # edges read per node at first

    def visit(edges: list[LineageEdge], bound: int | None, hops: int) -> None:
        for edge, nxt, next_bound in _steps(edges, bound, direction):
            if nxt.key != root.key and nxt.key not in reached:
                reached[nxt.key] = (nxt, edge)
            if depth is None or hops + 1 < depth:
                queue.append((nxt, next_bound, hops + 1))

    while queue and (limit is None or len(reached) < limit):
        node, bound, hops = queue.popleft()
        if (node.key, bound) in seen:
            continue
        seen.add((node.key, bound))
        if not index.loaded(node.key, direction, cap):
            ahead = [n.key for n, _, _ in itertools.islice(queue, _BATCH)]
            index.load([node.key, *ahead], direction, cap)
        edges, complete = index.edges(node.key, direction, cap=cap)
        visit(edges, bound, hops)
        if not complete and (limit is None or len(reached) < limit):
            # the first edges were not enough: the rest, in order, after those
            visit(index.edges(node.key, direction)[0][len(edges) :], bound, hops)
    found = list(reached.values())
    return found if limit is None else found[:limit]


class LineageGraph:
    """The lineage of one object: what it came from (upstream) and what was built on it.

    >>> lin = fs.lineage(model_version)                                      # doctest: +SKIP
    >>> [n.name for n in lin.upstream("file")]      # the raw input files     # doctest: +SKIP
    >>> print(lin)                                                           # doctest: +SKIP
    """

    def __init__(
        self,
        index: _Index,
        root: LineageNode,
        *,
        limit: int | None = None,
        depth: int | None = None,
    ) -> None:
        self._index = index
        index.load([root.key], "upstream", 1)  # the root's facts, from its first edges
        index.load([root.key], "downstream", 1)
        self.root = index.nodes.get(root.key, root)
        self.limit = limit  # at most this many nodes per direction (the nearest), if set
        self.depth = depth  # at most this many hops each way, if set
        self._up = _walk(index, self.root, "upstream", limit, depth)
        self._down = _walk(index, self.root, "downstream", limit, depth)

    def upstream(self, kind: str | None = None) -> list[LineageNode]:
        """Everything this object was derived from (transitively), nearest first."""
        return [n for n, _ in self._up if kind is None or n.kind == kind]

    def downstream(self, kind: str | None = None) -> list[LineageNode]:
        """Everything derived from this object (transitively), nearest first."""
        return [n for n, _ in self._down if kind is None or n.kind == kind]

    @property
    def edges(self) -> list[LineageEdge]:
        """The edges the two walks followed."""
        return [e for _, e in self._up] + [e for _, e in self._down]

    def files(self, direction: str = "upstream") -> list[dict[str, Any]]:
        """Each raw file in this lineage once, with its versions: ``{"path", "versions":
        [{"sha256", "size", "runs": [run ids that read it]}]}``, in the order first reached.
        Files are inputs, so only the upstream side (or a file's own lineage) has them."""
        if direction != "upstream":
            return []
        runs = [n for n, _ in self._up if n.kind == RUN_KIND]
        if self.root.kind == RUN_KIND:
            runs.insert(0, self.root)
        self._index.load([r.key for r in runs], "upstream")  # one query for all of them
        found: dict[str, dict[str, dict[str, Any]]] = {}
        for run in runs:
            for edge in self._index.into(run.key):
                if edge.source.kind != "file":
                    continue
                d = dict(edge.detail)
                versions = found.setdefault(edge.source.name, {})
                v = versions.setdefault(
                    str(d.get("sha256")),
                    {"sha256": d.get("sha256"), "size": d.get("size"), "runs": []},
                )
                if run.name not in v["runs"]:
                    v["runs"].append(run.name)
        return [{"path": p, "versions": list(vs.values())} for p, vs in found.items()]

    def _file_lines(self) -> list[str]:
        lines = []
        for f in self.files("upstream"):
            versions = [
                (f"sha256 {str(v['sha256'])[:12]}…" if v["sha256"] else "no sha256")
                + ("" if v["size"] is None else f" ({v['size']} bytes)")
                + ", read by "
                + ", ".join(f"run {r}" for r in v["runs"])
                for v in f["versions"]
            ]
            label = "1 version" if len(versions) == 1 else f"{len(versions)} versions"
            lines.append(f"file {f['path']} ({label}): " + "; ".join(versions))
        return lines

    def _lines(self, direction: str) -> list[tuple[int, str]]:
        """Depth-first tree lines; a node expanded once is marked "(see above)" after that.
        Raw files are left out: ``files()`` lists each once, with its versions."""
        lines: list[tuple[int, str]] = [(0, self.root.label())]
        expanded: set[tuple[str, str, int | None]] = {self.root.key}

        def visit(node: LineageNode, bound: int | None, depth: int) -> None:
            for edge, nxt, next_bound in _expand(self._index, node, bound, direction):
                if nxt.key == self.root.key or nxt.kind == "file":
                    continue
                text = nxt.label()
                if edge.table_version is not None:
                    text += f" @ table version {edge.table_version}"
                if nxt.key in expanded:
                    lines.append((depth, text + " (see above)"))
                    continue
                lines.append((depth, text))
                expanded.add(nxt.key)
                visit(nxt, next_bound, depth + 1)

        visit(self.root, None, 1)
        return lines

    def render(self, direction: str = "both") -> str:
        """Plain-text trees, indented by two spaces per hop."""
        parts = []
        for d in ("upstream", "downstream") if direction == "both" else (direction,):
            lines = self._lines(d)
            title = f"{d} of {self.root.label()}:"
            body = [
                ("  " * depth) + ("<- " if d == "upstream" else "-> ") + text
                for depth, text in lines[1:]
            ] or ["  (nothing recorded)"]
            if d == "upstream":
                body += [f"  {line}" for line in self._file_lines()]
            parts.append("\n".join([title, *body]))
        return "\n".join(parts)

    def tree(self, direction: str = "upstream") -> Tree:
        """A Rich tree (print it with ``rich.print``)."""
        from rich.markup import escape
        from rich.tree import Tree

        lines = self._lines(direction)
        tree = Tree(f"[bold]{escape(lines[0][1])}[/] ({direction})")
        stack: list[Tree] = [tree]
        for depth, text in lines[1:]:
            del stack[depth:]
            stack.append(stack[-1].add(escape(text)))
        files = self._file_lines() if direction == "upstream" else []
        if len(lines) == 1 and not files:
            tree.add("(nothing recorded)")
        for line in files:
            tree.add(escape(line))
        return tree

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return (
            f"LineageGraph({self.root.label()!r}, upstream={len(self._up)}, "
            f"downstream={len(self._down)})"
        )


def build(ctx: StoreContext) -> _Index:
    """A lineage index of the store: it reads the registry's edge table as walks reach nodes
    (run records, and the links model and training dataset records hold, so objects created
    outside a pipeline run still have their lineage). Cheap to make; keep one for several
    walks over the same state."""
    return _Index(ctx.registry)


_HANDLE_KINDS = {
    "FeatureGroup": "feature_group",
    "FeatureView": "feature_view",
    "ModelVersion": "model",
    "TrainingDataset": "training_dataset",
}


def target_of(obj: Any) -> tuple[str, str, int | None]:
    """``(kind, name, version)`` of a handle, a run, or a ``(kind, name[, version])`` tuple.

    A handle may define ``lineage_key`` (a tuple) to say how it appears in lineage.
    """
    if isinstance(obj, tuple) and len(obj) in (2, 3) and all(isinstance(x, str) for x in obj[:2]):
        version = obj[2] if len(obj) == 3 else None
        return str(obj[0]), str(obj[1]), None if version is None else int(version)
    key = getattr(obj, "lineage_key", None)
    if isinstance(key, tuple) and len(key) == 3:
        return str(key[0]), str(key[1]), None if key[2] is None else int(key[2])
    cls = type(obj).__name__
    if cls == "PipelineRun":
        return RUN_KIND, str(obj.id), None
    kind = _HANDLE_KINDS.get(cls)
    if kind == "training_dataset":
        owner = getattr(obj, "feature_view", None)
        fv_name = getattr(owner, "name", owner) if owner is not None else None
        fv_name = getattr(obj, "feature_view_name", fv_name)
        fv_version = getattr(obj, "feature_view_version", getattr(owner, "version", None))
        if isinstance(fv_name, str) and fv_version is not None:
            return kind, training_dataset_name(fv_name, int(fv_version)), int(obj.version)
    elif kind is not None:
        return kind, str(obj.name), int(obj.version)
    raise ValidationError(
        f"Cannot find the lineage of {obj!r}: pass a feature group, feature view, training "
        "dataset, model version or run, or a tuple (kind, name, version), e.g. "
        "('model', 'delays', 3)."
    )


def lineage(
    ctx: StoreContext,
    kind: str,
    name: str,
    version: int | None = None,
    *,
    index: _Index | None = None,
    limit: int | None = None,
    depth: int | None = None,
) -> LineageGraph:
    """The lineage of ``kind`` ``name`` ``version`` (latest version seen in runs when None).

    ``kind`` is ``"run"`` (name = run id), ``"feature_group"``, ``"training_dataset"``,
    ``"model"``, ``"prediction"``, ``"file"`` or any kind a service reported. ``index``: the
    result of :func:`build` when the caller keeps one; ``limit``: walk at most that many nodes
    each way, nearest first (a page that draws a bounded graph); ``depth``: at most that many
    hops each way.
    """
    index = build(ctx) if index is None else index
    if kind == RUN_KIND:
        run = ctx.registry.get(RUN_KIND, name, 1)
        if run is not None:
            index.remember(LineageNode(RUN_KIND, name, None, _detail(run_info(run.body))))
        exists = run is not None
    else:
        registered = [] if kind == "file" else ctx.registry.records(kind, name)
        if kind != "file" and version is None:
            version = index.latest_version(kind, name)
            if version is None and registered:
                version = max(r.version for r in registered)
        index.load([(kind, name, version)], "upstream", 1)
        index.load([(kind, name, version)], "downstream", 1)
        exists = (kind, name, version) in index.nodes or any(
            r.version == version for r in registered
        )
    if not exists:
        what = f"{kind} {name!r}" + ("" if version is None else f" version {version}")
        known = ctx.registry.lineage_names(kind) if kind != RUN_KIND else []
        if kind not in (RUN_KIND, "file") and not known:
            known = sorted({r.name for r in ctx.registry.records(kind, name)})
        raise NotFoundError(
            f"No {what} is registered or recorded in any pipeline run. Known {kind} names: "
            f"{known or 'none'}. Check the name and "
            "version (e.g. fti lineage model delays:3; a training dataset is "
            "FEATURE_VIEW_vN:VERSION)."
        )
    return LineageGraph(index, LineageNode(kind, name, version), limit=limit, depth=depth)
