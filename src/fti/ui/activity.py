"""What is happening: the overview, one run, stream pipelines, alerts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fti._internal.liveness import effective_status
from fti.errors import NotFoundError
from fti.services import feature_groups
from fti.services.context import StoreContext
from fti.services.lineage_graph import RUN_KIND
from fti.ui.pages import FG_KIND, FV_KIND, MODEL_KIND, TD_KIND, cell, run_rows

__all__ = ["ALERT_SCAN_EVENTS", "overview", "run_detail", "stream_rows"]

STREAM_KIND = "stream_checkpoint"  # written by fti.pipelines.streaming.runtime
MONITOR_KIND = "monitor"
_SHOWN_RUN_KEYS = frozenset(
    [
        "id",
        "kind",
        "pipeline",
        "function",
        "parameters",
        "code_version",
        "started_at",
        "ended_at",
        "status",
        "error",
        "inputs",
        "outputs",
        "steps",
        "traceback",
    ]
)
ALERT_SCAN_EVENTS = 1000  # data-quality alerts come from this many newest validation events
MAX_ALERTS = 50


def _count(ctx: StoreContext, kind: str) -> int:
    return ctx.registry.page(kind, limit=0)[1]


def _watermark(wm: Any) -> str:
    if not isinstance(wm, int):
        return "-"
    return datetime.fromtimestamp(wm / 1e6, UTC).isoformat(timespec="seconds")


def _mask(text: Any) -> str:
    from fti.config import mask_url

    return "-" if text is None else mask_url(str(text))


def stream_rows(ctx: StoreContext) -> list[dict[str, Any]]:
    """One row per stream pipeline checkpoint record (what ``fti stream status`` shows)."""
    out = []
    for r in ctx.registry.page(STREAM_KIND, limit=200)[0]:
        b = r.body
        c = b.get("counters", {}) or {}
        out.append(
            {
                "pipeline": r.name,
                "status": effective_status(b),
                "lag": "-" if b.get("lag") is None else f"{b['lag']:,}",
                "events_per_second": f"{b.get('throughput') or 0:,.1f}",
                "last_checkpoint": b.get("last_checkpoint_at") or "-",
                "records": c.get("records", 0),
                "duplicates": c.get("duplicates", 0),
                "late": c.get("late", 0),
                "invalid": c.get("invalid", 0),
                "watermark": _watermark(b.get("watermark")),
                "source": _mask(b.get("source")),
                "last_error": "" if not b.get("last_error") else _mask(b["last_error"]),
            }
        )
    return out


def _quality_alerts(ctx: StoreContext) -> list[dict[str, Any]]:
    """Groups whose newest validation failed a rule, from the newest validation events of the
    whole store (one query, however many groups there are)."""
    alerts: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for name, version, e in ctx.registry.recent_events(
        feature_groups.QUALITY_KIND, limit=ALERT_SCAN_EVENTS
    ):
        if e.get("type") != "validation" or (name, version) in seen:
            continue
        seen.add((name, version))
        failed = [x for x in e.get("rules", []) if x.get("failed")]
        if not failed or ctx.registry.get(FG_KIND, name, version) is None:
            continue
        alerts.append(
            {
                "name": name,
                "version": version,
                "at": e.get("at", "-"),
                "policy": e.get("policy", "-"),
                "rules": ", ".join(f"{x['rule']} ({x['failed']} rows)" for x in failed),
                "quarantined": e.get("quarantined", 0),
            }
        )
        if len(alerts) >= MAX_ALERTS:
            break
    return alerts


def _monitors(ctx: StoreContext) -> list[dict[str, Any]]:
    from fti.ui.model_charts import monitor_runs

    out = []
    for r in ctx.registry.page(MONITOR_KIND, limit=50)[0]:
        # the last stored run (monitor_run records, one per run: read only the newest)
        newest = monitor_runs(ctx, r.name, limit=1)
        last = newest[-1] if newest else {}
        alert = last.get("alert") if last else None
        drifted = ", ".join(last.get("drifted") or []) if last else ""
        out.append(
            {
                "name": r.name,
                "version": r.version,
                "status": "drift" if alert else ("ok" if alert is False else "not run"),
                "detail": (
                    f"{last.get('at', '')}: drifted {drifted}" if alert else last.get("at", "-")
                )
                if last
                else "-",
            }
        )
    return out


def overview(ctx: StoreContext) -> dict[str, Any]:
    """Counts, recent runs (failed and died first), alerts, monitors, streams."""
    counts = {
        "feature groups": _count(ctx, FG_KIND),
        "feature views": _count(ctx, FV_KIND),
        "training datasets": _count(ctx, TD_KIND),
        "model versions": _count(ctx, MODEL_KIND),
        "runs": _count(ctx, RUN_KIND),
    }
    failed = run_rows(ctx, status="failed", limit=5).rows
    recent = run_rows(ctx, limit=10).rows
    died = [r for r in recent if r["status"] == "died"]
    rest = [r for r in recent if r["status"] not in ("failed", "died")]
    return {
        "counts": counts,
        "runs": failed + died + rest,
        "quality_alerts": _quality_alerts(ctx),
        "monitors": _monitors(ctx),
        "streams": stream_rows(ctx),
    }


def run_detail(ctx: StoreContext, run_id: str) -> dict[str, Any]:
    """Everything recorded about one run."""
    rec = ctx.registry.get(RUN_KIND, run_id, 1)
    if rec is None:
        raise NotFoundError(f"Run {run_id!r} does not exist.")
    b = rec.body
    extra = {k: cell(v) for k, v in b.items() if k not in _SHOWN_RUN_KEYS}
    started, ended = b.get("started_at"), b.get("ended_at")
    seconds = None
    if started and ended:
        seconds = (datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds()
    return {
        "id": rec.name,
        "kind": b.get("kind", "-"),
        "pipeline": b.get("pipeline", "-"),
        "function": b.get("function", "-"),
        "status": effective_status(b),
        "started": started or "-",
        "ended": ended or "-",
        "seconds": "-" if seconds is None else f"{seconds:.2f}",
        "parameters": {k: cell(v) for k, v in (b.get("parameters") or {}).items()},
        "code_version": {k: cell(v) for k, v in (b.get("code_version") or {}).items()},
        "inputs": [_entry(e) for e in b.get("inputs", [])],
        "outputs": [_entry(e) for e in b.get("outputs", [])],
        "steps": b.get("steps", []),
        "error": b.get("error"),
        "traceback": b.get("traceback"),
        "extra": extra,
    }


def _entry(e: dict[str, Any]) -> dict[str, Any]:
    from fti.ui.graph import object_href

    version = e.get("version")
    return {
        "kind": str(e.get("kind", "?")),
        "name": str(e.get("name", "?")),
        "version": version,
        "href": object_href(
            str(e.get("kind")), str(e.get("name")), version if isinstance(version, int) else None
        ),
        "detail": ", ".join(
            f"{k}={cell(v)}" for k, v in e.items() if k not in ("kind", "name", "version")
        ),
    }
