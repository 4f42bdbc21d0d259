"""Live performance and drift on the model page: server-side SVG line charts plus the numbers
as a table (the fallback, and what a screen reader reads).

- **Performance**: ``fs.models.performance(name, every="1D")`` -- the metrics of the logged
  predictions joined to the logged outcomes per day, next to the test metric the version was
  registered with. It scans the prediction logs, so a model's result is kept for
  :data:`PERFORMANCE_TTL` seconds (the chart says when it was computed).
- **Drift**: the stored runs of every monitor on the model's feature views (or of its
  predictions): one chart per monitor and feature, the metric per run against its threshold,
  newest :data:`MONITOR_RUNS` runs (one indexed page of records, however many runs exist).

Charts are computed here as coordinates; the template draws them (autoescaped), so no script
runs and the CSP stays ``script-src 'self'``.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fti.errors import FtiError
from fti.services import model_performance, monitoring
from fti.services.context import StoreContext
from fti.ui.listing import cell, iso

__all__ = [
    "MONITOR_RUNS",
    "PERFORMANCE_TTL",
    "Chart",
    "drift_charts",
    "line_chart",
    "monitor_runs",
    "performance_chart",
]

PERFORMANCE_TTL = 30.0
PERFORMANCE_BUCKETS = 60  # newest buckets drawn
MONITOR_RUNS = 50
MAX_DRIFT_CHARTS = 12
W, H, LEFT, RIGHT, TOP, BOTTOM = 520, 170, 52, 12, 12, 30


@dataclass(frozen=True)
class Chart:
    """A line chart in SVG coordinates, and the same numbers as a table."""

    title: str
    width: int
    height: int
    lines: list[dict[str, Any]]  # {"name", "css", "points": "x,y x,y", "dots": [...]}
    y_ticks: list[dict[str, Any]]  # {"y", "label"}
    x_labels: list[dict[str, Any]]  # {"x", "label"}
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def line_chart(
    title: str,
    x: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None], str]],
    *,
    marks: Sequence[bool] | None = None,
    note: str = "",
) -> Chart | None:
    """Lines over the shared ``x`` labels; ``series``: (name, values, css class). A None
    value breaks its line. ``marks``: points to flag (drawn as a ring on the first series,
    and "yes" in the table). None when there is nothing to draw."""
    finite = [v for _, vs, _ in series for v in vs if v is not None and math.isfinite(v)]
    if not x or not finite:
        return None
    lo, hi = min(finite), max(finite)
    if hi == lo:
        lo, hi = lo - (abs(lo) or 1.0) * 0.1, hi + (abs(hi) or 1.0) * 0.1
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    step = plot_w / max(1, len(x) - 1)

    def px(i: int) -> float:
        return round(LEFT + (i * step if len(x) > 1 else plot_w / 2), 1)

    def py(v: float) -> float:
        return round(TOP + plot_h * (1 - (v - lo) / (hi - lo)), 1)

    lines = []
    for s, (name, values, css) in enumerate(series):
        runs: list[list[str]] = [[]]
        dots = []
        for i, v in enumerate(values):
            if v is None or not math.isfinite(v):
                runs.append([])
                continue
            runs[-1].append(f"{px(i)},{py(v)}")
            flagged = bool(marks and s == 0 and marks[i])
            dots.append({"x": px(i), "y": py(v), "flag": flagged, "title": f"{x[i]}: {_fmt(v)}"})
        lines.append(
            {"name": name, "css": css, "paths": [" ".join(r) for r in runs if r], "dots": dots}
        )
    ticks = [
        {"y": py(lo + (hi - lo) * k / 4), "label": _fmt(lo + (hi - lo) * k / 4)} for k in range(5)
    ]
    every = max(1, math.ceil(len(x) / 6))
    shown = sorted({*range(0, len(x), every), len(x) - 1})
    x_labels = [
        {
            "x": px(i),
            "label": x[i],
            "anchor": "start"
            if i == 0 and len(x) > 1
            else ("end" if i == len(x) - 1 else "middle"),
        }
        for i in shown
        # The first and last labels hang inward from the edges: keep the inner ones clear.
        if i in (0, len(x) - 1) or (i >= 1.5 * every and len(x) - 1 - i >= 1.5 * every)
    ]
    columns = ["x", *(name for name, _, _ in series)] + (["flagged"] if marks else [])
    rows = [
        [x[i], *("-" if vs[i] is None else cell(vs[i]) for _, vs, _ in series)]
        + (["yes" if marks[i] else "no"] if marks else [])
        for i in range(len(x))
    ]
    return Chart(title, W, H, lines, ticks, x_labels, columns, rows, note)


# ------------------------------------------------------------------------------ performance
_perf_cache: weakref.WeakKeyDictionary[StoreContext, dict[str, tuple[float, Any]]] = (
    weakref.WeakKeyDictionary()
)
_perf_lock = threading.Lock()
_METRICS = ("auc", "accuracy", "log_loss", "calibration_error", "mae", "rmse")


def _performance_table(ctx: StoreContext, name: str) -> tuple[Any, str]:
    """(table or None, message): the performance per day, cached for PERFORMANCE_TTL."""
    now = time.monotonic()
    with _perf_lock:
        hit = _perf_cache.setdefault(ctx, {}).get(name)
    if hit is not None and now - hit[0] < PERFORMANCE_TTL:
        cached: tuple[Any, str] = hit[1]
        return cached
    try:
        table = model_performance.performance(ctx, name, every="1D", format="arrow")
        found: tuple[Any, str] = (
            table,
            f"computed {iso(datetime.now(UTC))}, kept {PERFORMANCE_TTL:.0f} s",
        )
    except FtiError as e:
        found = (None, str(e).split("\n")[0])
    with _perf_lock:
        _perf_cache.setdefault(ctx, {})[name] = (now, found)
    return found


def performance_chart(ctx: StoreContext, name: str) -> tuple[list[Chart], str]:
    """Charts of the live metrics per day (one per metric, with the registered test metric
    as a second line) and a note (when computed, or why there is nothing)."""
    table, note = _performance_table(ctx, name)
    if table is None or table.num_rows == 0:
        return [], note if table is None else "No prediction was logged yet."
    table = table.slice(max(0, table.num_rows - PERFORMANCE_BUCKETS))
    x = [str(iso(t))[:10] for t in table["bucket_start"].to_pylist()]
    charts = []
    coverage = table["coverage"].to_pylist()
    for metric in _METRICS:
        if metric not in table.column_names:
            continue
        live = table[metric].to_pylist()
        series = [(f"live {metric}", live, "s0")]
        if f"test_{metric}" in table.column_names:
            series.append(
                (f"test {metric} (registered)", table[f"test_{metric}"].to_pylist(), "s1")
            )
        chart = line_chart(f"{metric} per day", x, series)
        if chart is not None:
            charts.append(chart)
    cov = line_chart("labelled share of predictions per day", x, [("coverage", coverage, "s2")])
    if cov is not None:
        charts.append(cov)
    return charts, note


# ------------------------------------------------------------------------------ drift
def monitor_runs(
    ctx: StoreContext, name: str, *, limit: int = MONITOR_RUNS
) -> list[dict[str, Any]]:
    """The newest ``limit`` stored runs of monitor ``name``, oldest first (one page of
    records, not every run)."""
    recs, _ = ctx.registry.page(monitoring.RUN_KIND, limit=limit, name=name, newest_first=True)
    found = [r.body for r in recs]
    return list(reversed(found[:limit]))


def _monitors_of(ctx: StoreContext, name: str, views: set[tuple[str, int]]) -> list[Any]:
    out = []
    for spec in monitoring.list_specs(ctx):
        on_view = (
            spec.source_kind == "feature_view" and (spec.source_name, spec.source_version) in views
        )
        windows = [spec.detection, spec.reference]
        on_model = any(getattr(w, "model", None) == name for w in windows)
        if on_view or on_model:
            out.append(spec)
    return out


def drift_charts(ctx: StoreContext, name: str, views: set[tuple[str, int]]) -> list[Chart]:
    """One chart per (monitor, feature) of the monitors on ``views`` or on ``name``'s
    predictions: the metric of each stored run against its threshold, drift flagged."""
    charts: list[Chart] = []
    for spec in _monitors_of(ctx, name, views):
        runs = monitor_runs(ctx, spec.name)
        if not runs:
            continue
        x = [str(r.get("at", "-"))[:16].replace("T", " ") for r in runs]
        for feature in spec.features:
            results: list[dict[str, Any]] = [
                next((f for f in r.get("features", []) if f.get("feature") == feature), {})
                for r in runs
            ]
            metric = next((f.get("metric") for f in reversed(results) if f.get("metric")), "?")
            values = [f.get("value") for f in results]
            thresholds = [f.get("threshold") for f in results]
            chart = line_chart(
                f"monitor {spec.name}: {feature} ({metric})",
                x,
                [(metric, values, "s0"), ("threshold", thresholds, "s3")],
                marks=[bool(f.get("drifted")) for f in results],
                note=f"newest {len(runs)} runs; flagged = drift",
            )
            if chart is not None:
                charts.append(chart)
            if len(charts) >= MAX_DRIFT_CHARTS:
                return charts
    return charts
