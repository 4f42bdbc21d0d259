"""What the pages show: plain dicts read from the registry and the offline tables' metadata.

Every list is one page of registry records (``Registry.page``: LIMIT/OFFSET plus a count, so a
listing costs the same with 10 or 10,000 records); detail pages read one object and a bounded
amount of data (the newest commits, the first rows of a table).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from fti._internal.liveness import effective_status
from fti.backends.registry import Record
from fti.services import feature_groups, model_registry
from fti.services.context import StoreContext
from fti.services.lineage_graph import RUN_KIND
from fti.services.statistics import describe

__all__ = [
    "PAGE_SIZE",
    "STATS_SAMPLE_ROWS",
    "Page",
    "group_detail",
    "group_rows",
    "model_detail",
    "model_names",
    "run_rows",
    "view_detail",
    "view_rows",
]

PAGE_SIZE = 25
STATS_SAMPLE_ROWS = 10_000  # statistics on the group page describe at most this many rows
SAMPLE_ROWS = 20
SAMPLE_FILES = 8
COMMITS = 20
FG_KIND, FV_KIND, TD_KIND, MODEL_KIND = "feature_group", "feature_view", "training_dataset", "model"
RUN_STATUSES = ("running", "succeeded", "failed", "died")


@dataclass(frozen=True)
class Page:
    """One page of a listing: the rows, the total that matched and where this page starts."""

    rows: list[dict[str, Any]]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.offset + self.limit < self.total else None

    @property
    def prev_offset(self) -> int | None:
        return max(0, self.offset - self.limit) if self.offset > 0 else None


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, str) and value:
        try:
            return _iso(datetime.fromisoformat(value))
        except ValueError:
            return value
    return "-"


def cell(value: Any) -> str:
    """A table cell as text (escaping is the template's job)."""
    if value is None:
        return "null"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value[:32].hex() + ("…" if len(value) > 32 else "")
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)[:200]
    return str(value)


# ---------------------------------------------------------------------- feature groups


def _latest_validation(ctx: StoreContext, name: str, version: int) -> str:
    events = [
        e
        for e in ctx.registry.events(feature_groups.QUALITY_KIND, name, version)
        if e.get("type") == "validation"
    ]
    if not events:
        return "no checks"
    failed = [r for r in events[-1].get("rules", []) if r.get("failed")]
    return f"failed {len(failed)} rule(s)" if failed else "passed"


def _table_facts(ctx: StoreContext, table: str) -> dict[str, Any]:
    if not ctx.offline.exists(table):
        return {"rows": 0, "last_commit": "-", "table_version": None}
    s = ctx.offline.stats(table)
    return {"rows": s.rows, "last_commit": _iso(s.last_commit), "table_version": s.version}


def group_rows(ctx: StoreContext, *, q: str = "", offset: int = 0) -> Page:
    """The feature groups list: one row per (name, version), searched by name."""
    recs, total = ctx.registry.page(FG_KIND, offset=offset, limit=PAGE_SIZE, name_contains=q)
    rows = []
    for r in recs:
        b = r.body
        rows.append(
            {
                "name": r.name,
                "version": r.version,
                "description": b.get("description", ""),
                "primary_key": ", ".join(b.get("primary_key", [])),
                "online": bool(b.get("online")),
                "deprecated": bool(b.get("deprecated")),
                "validation": _latest_validation(ctx, r.name, r.version),
                **_table_facts(ctx, f"{r.name}_v{r.version}"),
            }
        )
    return Page(rows, total, offset, PAGE_SIZE)


def _histogram(stats: Mapping[str, Any]) -> dict[str, Any] | None:
    h = stats.get("histogram")
    if not isinstance(h, dict) or not h.get("counts"):
        return None
    counts = [int(c) for c in h["counts"]]
    edges = [float(e) for e in h["edges"]]
    top = max(counts) or 1
    width = 200 / len(counts)
    bars = [
        {
            "x": round(i * width, 2),
            "w": round(width - 1, 2),
            "h": round(60 * c / top, 2),
            "y": round(60 - 60 * c / top, 2),
            "title": f"[{edges[i]:.4g}, {edges[i + 1]:.4g}): {c}",
        }
        for i, c in enumerate(counts)
    ]
    return {"bars": bars, "lo": f"{edges[0]:.4g}", "hi": f"{edges[-1]:.4g}"}


def _sample(dataset: Any, names: list[str]) -> pa.Table:
    """Up to :data:`STATS_SAMPLE_ROWS` rows from at most :data:`SAMPLE_FILES` data files, so
    the page costs the same after 10 or 10,000 commits (many small files)."""
    parts, rows = [], 0
    for i, fragment in enumerate(dataset.get_fragments()):
        if i >= SAMPLE_FILES or rows >= STATS_SAMPLE_ROWS:
            break
        part = fragment.scanner(schema=dataset.schema, columns=names).head(STATS_SAMPLE_ROWS - rows)
        parts.append(part)
        rows += part.num_rows
    if not parts:
        return pa.Table.from_pylist([], schema=pa.schema([dataset.schema.field(n) for n in names]))
    return pa.concat_tables(parts)


def group_detail(ctx: StoreContext, name: str, version: int) -> dict[str, Any]:
    """Everything the group page shows (NotFoundError if it does not exist)."""
    spec = feature_groups.get_spec(ctx, name, version, warn=False)
    rec = ctx.registry.get(FG_KIND, name, version)
    table = spec.key
    out: dict[str, Any] = {
        "spec": spec,
        "deprecated": bool(rec is not None and rec.body.get("deprecated")),
        "columns": [
            {
                "name": c.name,
                "dtype": c.dtype,
                "role": "primary key"
                if c.name in spec.primary_key
                else ("event time" if c.name == spec.event_time else "feature"),
            }
            for c in spec.columns
        ],
        "expectations": [e.describe() for e in spec.expectations],
        **_table_facts(ctx, table),
        "commits": [],
        "sample": {"columns": [], "rows": []},
        "stats": [],
        "online_rows": None,
    }
    checks = [
        e
        for e in ctx.registry.events(feature_groups.QUALITY_KIND, name, version)
        if e.get("type") == "validation"
    ]
    events = {e.get("table_version"): e for e in checks}
    if ctx.offline.exists(table):
        for c in ctx.offline.history(table, limit=COMMITS):
            e = events.get(c["version"])
            check = "-"
            if e is not None:
                failed = [r["rule"] for r in e.get("rules", []) if r.get("failed")]
                check = f"failed: {', '.join(failed)}" if failed else "passed"
                if e.get("quarantined"):
                    check += f" ({e['quarantined']} quarantined)"
            out["commits"].append({**c, "timestamp": _iso(c["timestamp"]), "validation": check})
        dataset, _ = ctx.offline.dataset(table)
        names = [n for n in dataset.schema.names if not n.startswith("_fti")]
        sample = _sample(dataset, names)
        out["sample"] = {
            "columns": names,
            "rows": [
                [cell(v) for v in row.values()] for row in sample.slice(0, SAMPLE_ROWS).to_pylist()
            ],
        }
        out["stats_rows"] = sample.num_rows
        for col, s in describe(sample).items():
            out["stats"].append(
                {
                    "name": col,
                    **{
                        k: "-" if s.get(k) is None else cell(s.get(k))
                        for k in (
                            "dtype",
                            "count",
                            "nulls",
                            "distinct",
                            "mean",
                            "std",
                            "min",
                            "max",
                        )
                    },
                    "histogram": _histogram(s),
                }
            )
    if spec.online and spec.has_schema:
        try:
            out["online_rows"] = ctx.online.count(feature_groups.online_table(spec))
        except Exception:
            out["online_rows"] = "unavailable"
    out["quarantined"] = sum(int(e.get("quarantined") or 0) for e in checks)
    out["views"] = [
        {"name": r.name, "version": r.version}
        for r in ctx.registry.page(
            FV_KIND, limit=100, body_contains=(f'"feature_group": {json.dumps(name)}',)
        )[0]
        if _uses(r.body.get("query", {}), name, version)
    ]
    return out


def _uses(query: Mapping[str, Any], name: str, version: int) -> bool:
    selections = [query.get("left", {})] + [j.get("selection", {}) for j in query.get("joins", [])]
    return any(s.get("feature_group") == name and s.get("version") == version for s in selections)


# ---------------------------------------------------------------------- feature views


def _query_groups(query: Mapping[str, Any]) -> list[dict[str, Any]]:
    left = query.get("left", {})
    out = [{**left, "role": "left", "prefix": "", "on": ""}]
    for j in query.get("joins", []):
        s = j.get("selection", {})
        on = ", ".join(
            f"{a}={b}" for a, b in zip(j.get("left_on", []), j.get("right_on", []), strict=False)
        )
        out.append({**s, "role": "join", "prefix": j.get("prefix", ""), "on": on})
    return out


def view_rows(ctx: StoreContext, *, q: str = "", offset: int = 0) -> Page:
    """The feature views list."""
    recs, total = ctx.registry.page(FV_KIND, offset=offset, limit=PAGE_SIZE, name_contains=q)
    rows = [
        {
            "name": r.name,
            "version": r.version,
            "description": r.body.get("description", ""),
            "labels": ", ".join(r.body.get("labels", [])),
            "groups": _query_groups(r.body.get("query", {})),
        }
        for r in recs
    ]
    return Page(rows, total, offset, PAGE_SIZE)


def _split_rows(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    files = body.get("files", {}) or {}
    stats = body.get("statistics", {}) or {}
    names = list(files) or list(stats)
    out = []
    for split in names:
        f = files.get(split, {}) if isinstance(files.get(split), dict) else {}
        s = stats.get(split, {}) if isinstance(stats.get(split), dict) else {}
        out.append(
            {
                "name": split,
                "rows": f.get("rows", "-"),
                "stats": [
                    {
                        "name": c,
                        **{k: cell(v.get(k)) for k in ("count", "nulls", "mean", "min", "max")},
                    }
                    for c, v in s.items()
                    if isinstance(v, dict)
                ],
            }
        )
    return out


def view_detail(ctx: StoreContext, name: str, version: int) -> dict[str, Any]:
    """The view page: query, labels, transformations, training datasets with their splits."""
    from fti.errors import NotFoundError

    rec = ctx.registry.get(FV_KIND, name, version)
    if rec is None:
        raise NotFoundError(f"Feature view {name!r} version {version} does not exist.")
    b = rec.body
    datasets = []
    for td in ctx.registry.records(TD_KIND, f"{name}_v{version}"):
        datasets.append(
            {
                "version": td.version,
                "created": _iso(td.body.get("created_at")),
                "split": json.dumps(td.body.get("split", {})),
                "range": f"{_iso(td.body.get('start'))} .. {_iso(td.body.get('end'))}",
                "table_versions": td.body.get("table_versions", {}),
                "fitted": {
                    k: json.dumps(v, default=str)[:300]
                    for k, v in (td.body.get("fitted") or {}).items()
                },
                "splits": _split_rows(td.body),
                "lineage_name": td.name,
            }
        )
    return {
        "name": name,
        "version": version,
        "description": b.get("description", ""),
        "labels": list(b.get("labels", [])),
        "groups": _query_groups(b.get("query", {})),
        "filters": [
            f"{f.get('column')} {f.get('op')} {json.dumps(f.get('value'), default=str)}"
            for f in b.get("query", {}).get("filters", [])
        ],
        "transformations": {
            k: json.dumps(v, default=str)[:300] for k, v in (b.get("transformations") or {}).items()
        },
        "on_demand": [json.dumps(f, default=str)[:300] for f in b.get("on_demand", [])],
        "datasets": datasets,
        "created": _iso(b.get("created_at")),
    }


# ---------------------------------------------------------------------- models


def model_names(ctx: StoreContext, *, q: str = "", offset: int = 0) -> Page:
    """One row per model version, grouped by name in the template."""
    recs, total = ctx.registry.page(MODEL_KIND, offset=offset, limit=PAGE_SIZE, name_contains=q)
    rows = [
        {
            "name": r.name,
            "version": r.version,
            "status": r.body.get("status", "ready"),
            "format": r.body.get("format", "-"),
            "metrics": ", ".join(
                f"{k}={cell(v)}" for k, v in (r.body.get("metrics") or {}).items()
            ),
            "created": _iso(r.body.get("created_at")),
        }
        for r in recs
    ]
    return Page(rows, total, offset, PAGE_SIZE)


def model_detail(
    ctx: StoreContext, name: str, *, sort: str = "version", desc: bool = True
) -> dict[str, Any]:
    """Every version of one model side by side, its aliases and their history."""
    from fti.errors import NotFoundError

    recs = ctx.registry.records(MODEL_KIND, name)
    if not recs:
        raise NotFoundError(f"Model {name!r} does not exist.")
    aliases = model_registry.aliases(ctx, name)
    by_version: dict[int, list[str]] = {}
    for alias, v in sorted(aliases.items()):
        by_version.setdefault(v, []).append(alias)
    metric_names = sorted({k for r in recs for k in (r.body.get("metrics") or {})})
    versions = []
    for r in recs:
        b = r.body
        art = b.get("artifact") or {}
        td = b.get("training_dataset")
        versions.append(
            {
                "version": r.version,
                "status": b.get("status", "ready"),
                "aliases": by_version.get(r.version, []),
                "metrics": {k: (b.get("metrics") or {}).get(k) for k in metric_names},
                "format": b.get("format", "-"),
                "framework": b.get("framework", "-"),
                "sha256": art.get("sha256", "-"),
                "size": art.get("size", "-"),
                "signature": b.get("signature") or {},
                "feature_view": b.get("feature_view"),
                "training_dataset": td,
                "td_lineage": None
                if not isinstance(td, dict)
                else f"{td.get('feature_view')}_v{td.get('fv_version')}",
                "description": b.get("description", ""),
                "created": _iso(b.get("created_at")),
            }
        )

    def key(v: dict[str, Any]) -> tuple[int, float]:
        value = v["version"] if sort == "version" else v["metrics"].get(sort)
        if not isinstance(value, int | float) or isinstance(value, bool):
            return (0, 0.0)
        return (1, float(value))

    versions.sort(key=key, reverse=desc)
    return {
        "name": name,
        "versions": versions,
        "metric_names": metric_names,
        "aliases": aliases,
        "alias_history": [
            {**e, "at": _iso(e.get("at"))} for e in model_registry.alias_history(ctx, name)[-20:]
        ],
        "sort": sort,
        "desc": desc,
    }


# ---------------------------------------------------------------------- runs


def _run_row(r: Record) -> dict[str, Any]:
    b = r.body
    started, ended = b.get("started_at"), b.get("ended_at")
    seconds = None
    if started and ended:
        seconds = (datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds()
    return {
        "id": r.name,
        "kind": b.get("kind", "-"),
        "pipeline": b.get("pipeline", "-"),
        "status": effective_status(b),
        "started": _iso(started),
        "seconds": "-" if seconds is None else f"{seconds:.2f}",
        "inputs": len(b.get("inputs", [])),
        "outputs": len(b.get("outputs", [])),
        "error": (b.get("error") or "")[:200],
    }


def run_rows(
    ctx: StoreContext,
    *,
    pipeline: str = "",
    status: str = "",
    offset: int = 0,
    limit: int = PAGE_SIZE,
) -> Page:
    """Runs, newest first, filtered by pipeline and status. ``died`` is a ``running`` record
    whose writer is gone: those are selected as ``running`` and checked on this page."""
    match: list[str] = []
    if pipeline:
        match.append(f'"pipeline": {json.dumps(pipeline)}')
    if status:
        stored = "running" if status == "died" else status
        match.append(f'"status": {json.dumps(stored)}')
    recs, total = ctx.registry.page(
        RUN_KIND, offset=offset, limit=limit, body_contains=tuple(match), newest_first=True
    )
    rows = [_run_row(r) for r in recs]
    if status in ("died", "running"):
        rows = [r for r in rows if r["status"] == status]
    return Page(rows, total, offset, limit)
