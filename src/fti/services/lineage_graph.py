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

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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


def _detail(entry: dict[str, Any], skip: Iterable[str]) -> tuple[tuple[str, Any], ...]:
    skipped = set(skip)
    return tuple(
        (k, v if not isinstance(v, list | dict) else repr(v))
        for k, v in sorted(entry.items())
        if k not in skipped
    )


class _Index:
    """Adjacency lists built from run bodies."""

    def __init__(self, runs: Iterable[dict[str, Any]]) -> None:
        self.nodes: dict[tuple[str, str, int | None], LineageNode] = {}
        self.into: dict[tuple[str, str, int | None], list[LineageEdge]] = {}
        self.out_of: dict[tuple[str, str, int | None], list[LineageEdge]] = {}
        for body in runs:
            self._add_run(body)

    def _node(self, node: LineageNode) -> LineageNode:
        known = self.nodes.get(node.key)
        if known is None or (node.detail and not known.detail):
            self.nodes[node.key] = node
            return node
        return known

    def _edge(self, edge: LineageEdge) -> None:
        self.out_of.setdefault(edge.source.key, []).append(edge)
        self.into.setdefault(edge.target.key, []).append(edge)

    def _add_run(self, body: dict[str, Any]) -> None:
        run = self._node(
            LineageNode(
                RUN_KIND,
                str(body["id"]),
                None,
                (
                    ("function", body.get("function")),
                    ("pipeline", body.get("pipeline")),
                    ("pipeline_kind", body.get("kind")),
                    ("started_at", body.get("started_at")),
                    ("status", body.get("status")),
                ),
            )
        )
        for entry in body.get("inputs", []):
            art = self._artifact(entry)
            self._edge(LineageEdge(art, run, _detail(entry, ("kind", "name", "version"))))
        for entry in body.get("outputs", []):
            art = self._artifact(entry)
            detail = _detail(entry, ("kind", "name", "version"))
            self._edge(LineageEdge(run, art, detail, versioned="target"))

    def _artifact(self, entry: dict[str, Any]) -> LineageNode:
        kind, name, version = str(entry["kind"]), str(entry["name"]), entry.get("version")
        detail = _detail(entry, ("kind", "name", "version")) if kind == "file" else ()
        return self._node(LineageNode(kind, name, version, detail))

    def latest_version(self, kind: str, name: str) -> int | None:
        versions = [
            k[2] for k in self.nodes if k[0] == kind and k[1] == name and isinstance(k[2], int)
        ]
        return max(versions) if versions else None


def _expand(
    index: _Index, node: LineageNode, bound: int | None, direction: str
) -> list[tuple[LineageEdge, LineageNode, int | None]]:
    """One hop: (edge, next node, next bound) for every edge allowed by the table-version bound.

    Upstream the bound is an upper bound (the table version that was read), downstream a lower
    bound (the table version that was written). Stepping onto the artifact an edge's table
    version belongs to sets the bound for the next hop.
    """
    out = []
    edges = index.into if direction == "upstream" else index.out_of
    for edge in edges.get(node.key, []):
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


def _walk(
    index: _Index, root: LineageNode, direction: str, limit: int | None = None
) -> list[tuple[LineageNode, LineageEdge]]:
    """Breadth-first walk; (node, edge it was first reached by), each node once, root excluded;
    stops after ``limit`` nodes (the nearest) when given."""
    seen: set[tuple[tuple[str, str, int | None], int | None]] = set()
    reached: dict[tuple[str, str, int | None], tuple[LineageNode, LineageEdge]] = {}
    queue: deque[tuple[LineageNode, int | None]] = deque([(root, None)])
    while queue and (limit is None or len(reached) < limit):
        node, bound = queue.popleft()
        if (node.key, bound) in seen:
            continue
        seen.add((node.key, bound))
        for edge, nxt, next_bound in _expand(index, node, bound, direction):
            if nxt.key != root.key and nxt.key not in reached:
                reached[nxt.key] = (nxt, edge)
            queue.append((nxt, next_bound))
    found = list(reached.values())
    return found if limit is None else found[:limit]


class LineageGraph:
    """The lineage of one object: what it came from (upstream) and what was built on it.

    >>> lin = fs.lineage(model_version)                                      # doctest: +SKIP
    >>> [n.name for n in lin.upstream("file")]      # the raw input files     # doctest: +SKIP
    >>> print(lin)                                                           # doctest: +SKIP
    """

    def __init__(self, index: _Index, root: LineageNode, *, limit: int | None = None) -> None:
        self._index = index
        self.root = index.nodes.get(root.key, root)
        self.limit = limit  # at most this many nodes per direction (the nearest), if set
        self._up = _walk(index, self.root, "upstream", limit)
        self._down = _walk(index, self.root, "downstream", limit)

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
        found: dict[str, dict[str, dict[str, Any]]] = {}
        for run in runs:
            for edge in self._index.into.get(run.key, []):
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


def training_dataset_name(feature_view: str, feature_view_version: int) -> str:
    """Lineage name of a training dataset: its feature view's ``<name>_v<version>``."""
    return f"{feature_view}_v{feature_view_version}"


def build(ctx: StoreContext) -> _Index:
    """Index every run record of the store, plus the links the registry records themselves hold:
    model -> training dataset (model registry) and feature group table versions -> training
    dataset (training dataset records), so objects created outside a pipeline run still have
    their lineage."""
    index = _Index(r.body for r in ctx.registry.records(RUN_KIND))
    for rec in ctx.registry.records("model"):
        td = rec.body.get("training_dataset")
        if not isinstance(td, dict) or not {"feature_view", "fv_version", "version"} <= set(td):
            continue
        source = index._node(
            LineageNode(
                "training_dataset",
                training_dataset_name(str(td["feature_view"]), int(td["fv_version"])),
                int(td["version"]),
            )
        )
        target = index._node(LineageNode("model", rec.name, rec.version))
        if not _linked(index, source, target):
            index._edge(LineageEdge(source, target, (("via", "model registry"),)))
    for rec in ctx.registry.records("training_dataset"):
        _link_training_dataset(index, rec.name, rec.version, rec.body.get("table_versions"))
        fv, fv_version = rec.body.get("feature_view"), rec.body.get("feature_view_version")
        if isinstance(fv, str) and isinstance(fv_version, int):
            source = index._node(LineageNode("feature_view", fv, fv_version))
            target = index._node(LineageNode("training_dataset", rec.name, rec.version))
            if not _linked(index, source, target):
                index._edge(LineageEdge(source, target, (("via", "training dataset record"),)))
    return index


def _linked(index: _Index, source: LineageNode, target: LineageNode) -> bool:
    """Is there already an edge source -> target, or source -> run -> target?"""
    for edge in index.into.get(target.key, []):
        if edge.source.key == source.key:
            return True
        if edge.source.kind == RUN_KIND and any(
            e.source.key == source.key for e in index.into.get(edge.source.key, [])
        ):
            return True
    return False


def _link_training_dataset(index: _Index, name: str, version: int, table_versions: Any) -> None:
    """Edges feature group @ table version -> training dataset, from the dataset's own record
    (``table_versions``: ``{"<group>_v<version>": table version}``), unless a run reported
    the same read."""
    if not isinstance(table_versions, dict):
        return
    target = index._node(LineageNode("training_dataset", name, version))
    if any(e.source.kind == RUN_KIND for e in index.into.get(target.key, [])):
        return  # a run reported creating it, with what it read
    known = {(e.source.key, e.table_version) for e in index.into.get(target.key, [])}
    for key, tv in table_versions.items():
        group, sep, group_version = str(key).rpartition("_v")
        if not sep or not group_version.isdigit() or not isinstance(tv, int):
            continue
        source = index._node(LineageNode("feature_group", group, int(group_version)))
        if (source.key, tv) not in known:
            detail = (("table_version", tv), ("via", "training dataset record"))
            index._edge(LineageEdge(source, target, detail))


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
) -> LineageGraph:
    """The lineage of ``kind`` ``name`` ``version`` (latest version seen in runs when None).

    ``kind`` is ``"run"`` (name = run id), ``"feature_group"``, ``"training_dataset"``,
    ``"model"``, ``"prediction"``, ``"file"`` or any kind a service reported. ``index``: the
    result of :func:`build` when the caller keeps one (it is only read); ``limit``: walk at
    most that many nodes each way, nearest first (a page that draws a bounded graph).
    """
    index = build(ctx) if index is None else index
    registered = [] if kind in (RUN_KIND, "file") else ctx.registry.records(kind, name)
    if kind != RUN_KIND and kind != "file" and version is None:
        version = index.latest_version(kind, name)
        if version is None and registered:
            version = max(r.version for r in registered)
    key = (kind, name, version)
    if key not in index.nodes and not any(r.version == version for r in registered):
        what = f"{kind} {name!r}" + ("" if version is None else f" version {version}")
        known = sorted({n.name for n in index.nodes.values() if n.kind == kind})
        raise NotFoundError(
            f"No {what} is registered or recorded in any pipeline run. Known {kind} names: "
            f"{known or sorted({r.name for r in registered}) or 'none'}. Check the name and "
            "version (e.g. fti lineage model delays:3; a training dataset is "
            "FEATURE_VIEW_vN:VERSION)."
        )
    return LineageGraph(index, LineageNode(kind, name, version), limit=limit)
