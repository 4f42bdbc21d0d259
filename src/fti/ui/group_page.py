"""The feature groups list and the group page, at a cost that does not grow with commits.

What depends on a group's data -- rows, last commit, current keys online, the latest
validation, the statistics merged from the per-commit profiles, a preview of rows -- is kept
per store in :class:`GroupFacts`, keyed by the offline table version: a page asks the table for
its version (a look at the newest log entries) and recomputes only after a commit. The
statistics are ``fg.statistics()`` (the stored per-commit profiles, merged), never a scan of
rows; the preview reads a few data files; the commit timeline reads the newest log entries.
"""

from __future__ import annotations

import itertools
import json
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fti.definitions.feature_group import FeatureGroupSpec
from fti.services import feature_groups, profiles
from fti.services.context import StoreContext
from fti.ui.listing import PAGE_SIZE, Page, age, cell, iso

__all__ = ["COMMITS", "SAMPLE_ROWS", "group_detail", "group_rows", "quantile_histogram"]

SAMPLE_ROWS = 20
SAMPLE_FILES = 8
COMMITS = 20
FG_KIND, FV_KIND = "feature_group", "feature_view"
_STAT_KEYS = ("count", "nulls", "mean", "stddev", "min", "max")


@dataclass
class _Facts:
    """What a group's table version determines (``stats`` and ``sample``: on the group page's
    first visit)."""

    table_version: int | None
    rows: int = 0
    last_commit: datetime | None = None
    online_rows: int | str | None = None
    validation: str = "no checks"
    quarantined: int = 0
    checks: dict[int | None, dict[str, Any]] = field(default_factory=dict)
    stats: list[dict[str, Any]] | None = None
    stats_rows: int = 0
    stats_commits: int = 0
    sample: dict[str, Any] | None = None
    settled: bool = True  # False: the newest commit's validation report was not stored yet


class GroupFacts:
    """Per store: the facts of each group's offline table, recomputed when its version moved."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._facts: dict[tuple[str, int, datetime], _Facts] = {}

    def get(self, ctx: StoreContext, spec: FeatureGroupSpec, *, full: bool = False) -> _Facts:
        table = spec.key
        version = ctx.offline.version(table) if ctx.offline.exists(table) else None
        key = (spec.name, spec.version, spec.created_at)  # a group made again starts anew
        with self._lock:
            facts = self._facts.get(key)
        if facts is None or facts.table_version != version or not facts.settled:
            facts = _compute(ctx, spec, version)
        if full and facts.stats is None and version is not None:
            _add_page_facts(ctx, spec, facts)
        with self._lock:
            self._facts[key] = facts
        return facts


_per_store: weakref.WeakKeyDictionary[StoreContext, GroupFacts] = weakref.WeakKeyDictionary()
_per_store_lock = threading.Lock()


def facts_of(ctx: StoreContext) -> GroupFacts:
    """The facts cache of a store (made on first use, gone with the store)."""
    with _per_store_lock:
        found = _per_store.get(ctx)
        if found is None:
            found = _per_store[ctx] = GroupFacts()
        return found


def _check_text(event: Mapping[str, Any]) -> str:
    failed = [r.get("rule", "?") for r in event.get("rules", []) if r.get("failed")]
    text = f"failed: {', '.join(map(str, failed))}" if failed else "passed"
    if event.get("quarantined"):
        text += f" ({event['quarantined']} quarantined)"
    return text


def _compute(ctx: StoreContext, spec: FeatureGroupSpec, version: int | None) -> _Facts:
    facts = _Facts(version)
    if version is not None:
        s = ctx.offline.stats(spec.key)
        facts.rows, facts.last_commit = s.rows, s.last_commit
    checks = [
        e
        for e in ctx.registry.events(feature_groups.QUALITY_KIND, spec.name, spec.version)
        if e.get("type") == "validation"
    ]
    facts.checks = {e.get("table_version"): e for e in checks[-COMMITS:]}
    facts.quarantined = sum(int(e.get("quarantined") or 0) for e in checks)
    facts.settled = version is None or not spec.expectations or version in facts.checks
    if checks:
        failed = [r for r in checks[-1].get("rules", []) if r.get("failed")]
        facts.validation = f"failed {len(failed)} rule(s)" if failed else "passed"
    if spec.online and spec.has_schema:
        try:  # the online table's key count: once per commit, not per request
            facts.online_rows = ctx.online.count(feature_groups.online_table(spec))
        except Exception:
            facts.online_rows = "unavailable"
    return facts


def quantile_histogram(s: Mapping[str, Any]) -> dict[str, Any] | None:
    """Bars between the quantiles a profile's KLL sketch gives (min, p01 .. p99, max): each
    holds the share of rows between its two cuts, drawn as a density (share / width)."""
    q = s.get("quantiles")
    lo, hi = s.get("min"), s.get("max")
    if not isinstance(q, dict) or not isinstance(lo, int | float):
        return None
    if not isinstance(hi, int | float):
        return None
    levels = [(0.0, float(lo))] + [(int(k[1:]) / 100, float(v)) for k, v in q.items()]
    levels.append((1.0, float(hi)))
    levels.sort()
    span = float(hi) - float(lo)
    if span <= 0:
        return None
    parts = [
        (a_v, b_v, b_q - a_q) for (a_q, a_v), (b_q, b_v) in itertools.pairwise(levels) if b_v > a_v
    ]
    if not parts:
        return None
    top = max(share / (b - a) for a, b, share in parts) or 1.0
    bars = []
    for a, b, share in parts:
        height = 60 * (share / (b - a)) / top
        bars.append(
            {
                "x": round(200 * (a - lo) / span, 2),
                "w": round(max(200 * (b - a) / span - 0.5, 0.5), 2),
                "h": round(height, 2),
                "y": round(60 - height, 2),
                "title": f"[{a:.4g}, {b:.4g}): {share:.0%} of rows",
            }
        )
    return {"bars": bars, "lo": f"{lo:.4g}", "hi": f"{hi:.4g}"}


def _add_page_facts(ctx: StoreContext, spec: FeatureGroupSpec, facts: _Facts) -> None:
    """Statistics from the stored per-commit profiles (merged as ``fg.statistics()`` does)
    and a preview of rows from a few data files."""
    stats = profiles.statistics(ctx, spec)
    facts.stats_rows, facts.stats_commits = stats.rows, stats.commits
    facts.stats = []
    for name, s in stats.features.items():
        distinct = s.get("distinct")
        quantiles = s.get("quantiles") or {}
        facts.stats.append(
            {
                "name": name,
                "kind": s.get("kind", "-"),
                **{k: "-" if s.get(k) is None else cell(s.get(k)) for k in _STAT_KEYS},
                "distinct": "-"
                if not isinstance(distinct, dict)
                else cell(round(float(distinct["estimate"]))),
                "quantiles": {k: cell(v) for k, v in quantiles.items()},
                "histogram": quantile_histogram(s),
            }
        )
    head = ctx.offline.head(spec.key, SAMPLE_ROWS, files=SAMPLE_FILES)
    names = [n for n in head.column_names if not n.startswith("_fti")]
    facts.sample = {
        "columns": names,
        "rows": [[cell(row[n]) for n in names] for row in head.to_pylist()],
    }


def _tags(body: Mapping[str, Any]) -> list[str]:
    tags = body.get("tags")
    if isinstance(tags, dict):
        return [f"{k}={v}" if v not in (None, "") else str(k) for k, v in tags.items()]
    if isinstance(tags, list | tuple):
        return [str(t) for t in tags]
    return []


def group_rows(ctx: StoreContext, *, q: str = "", offset: int = 0) -> Page:
    """The feature groups list: one row per (name, version), searched by name; each row's
    table facts from :class:`GroupFacts` (nothing is scanned per request)."""
    recs, total = ctx.registry.page(FG_KIND, offset=offset, limit=PAGE_SIZE, name_contains=q)
    cache = facts_of(ctx)
    rows = []
    for r in recs:
        b = r.body
        facts = cache.get(ctx, FeatureGroupSpec.from_dict(b))
        rows.append(
            {
                "name": r.name,
                "version": r.version,
                "description": b.get("description", ""),
                "tags": _tags(b),
                "primary_key": ", ".join(b.get("primary_key", [])),
                "online": bool(b.get("online")),
                "deprecated": bool(b.get("deprecated")),
                "validation": facts.validation,
                "rows": facts.rows,
                "current_keys": facts.online_rows,
                "last_commit": iso(facts.last_commit),
                "freshness": age(facts.last_commit),
                "table_version": facts.table_version,
            }
        )
    return Page(rows, total, offset, PAGE_SIZE)


def group_detail(ctx: StoreContext, name: str, version: int) -> dict[str, Any]:
    """Everything the group page shows (NotFoundError if it does not exist)."""
    spec = feature_groups.get_spec(ctx, name, version, warn=False)
    rec = ctx.registry.get(FG_KIND, name, version)
    body = rec.body if rec is not None else {}
    facts = facts_of(ctx).get(ctx, spec, full=True)
    commits = []
    if facts.table_version is not None:
        for c in ctx.offline.history(spec.key, limit=COMMITS):
            e = facts.checks.get(c["version"])
            check = "-" if e is None else _check_text(e)
            commits.append({**c, "timestamp": iso(c["timestamp"]), "validation": check})
    return {
        "spec": spec,
        "deprecated": bool(body.get("deprecated")),
        "tags": _tags(body),
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
        "rows": facts.rows,
        "last_commit": iso(facts.last_commit),
        "freshness": age(facts.last_commit),
        "table_version": facts.table_version,
        "commits": commits,
        "sample": facts.sample or {"columns": [], "rows": []},
        "stats": facts.stats or [],
        "stats_rows": facts.stats_rows,
        "stats_commits": facts.stats_commits,
        "online_rows": facts.online_rows,
        "quarantined": facts.quarantined,
        "views": [
            {"name": r.name, "version": r.version}
            for r in ctx.registry.page(
                FV_KIND, limit=100, body_contains=(f'"feature_group": {json.dumps(name)}',)
            )[0]
            if _uses(r.body.get("query", {}), name, version)
        ],
    }


def _uses(query: Mapping[str, Any], name: str, version: int) -> bool:
    selections = [query.get("left", {})] + [j.get("selection", {}) for j in query.get("joins", [])]
    return any(s.get("feature_group") == name and s.get("version") == version for s in selections)
