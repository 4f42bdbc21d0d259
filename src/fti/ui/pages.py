"""What the pages show: plain dicts read from the registry and the offline tables' metadata.

Every list is one page of registry records (``Registry.page``: LIMIT/OFFSET plus a count, so a
listing costs the same with 10 or 10,000 records); detail pages read one object and a bounded
amount of data (the newest commits, the first rows of a table).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fti._internal.liveness import effective_status
from fti.backends.registry import Record
from fti.services import model_registry
from fti.services.context import StoreContext
from fti.services.lineage_graph import RUN_KIND
from fti.ui import model_charts
from fti.ui.group_page import group_detail, group_rows
from fti.ui.listing import PAGE_SIZE, Page, cell, iso

__all__ = [
    "PAGE_SIZE",
    "Page",
    "cell",
    "group_detail",
    "group_rows",
    "model_detail",
    "model_names",
    "run_rows",
    "view_detail",
    "view_rows",
]

FG_KIND, FV_KIND, TD_KIND, MODEL_KIND = "feature_group", "feature_view", "training_dataset", "model"
RUN_STATUSES = ("running", "succeeded", "failed", "died")


_iso = iso


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
    views = {
        (str(fv["name"]), int(fv["version"]))
        for v in versions
        if isinstance(fv := v["feature_view"], dict) and {"name", "version"} <= set(fv)
    }
    performance, performance_note = model_charts.performance_chart(ctx, name)
    return {
        "performance": performance,
        "performance_note": performance_note,
        "drift": model_charts.drift_charts(ctx, name, views),
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
    where: dict[str, str] = {}
    if pipeline:
        where["pipeline"] = pipeline
    if status:
        where["status"] = "running" if status == "died" else status
    recs, total = ctx.registry.page(
        RUN_KIND, offset=offset, limit=limit, where=where, newest_first=True
    )
    rows = [_run_row(r) for r in recs]
    if status in ("died", "running"):
        rows = [r for r in rows if r["status"] == status]
    return Page(rows, total, offset, limit)
