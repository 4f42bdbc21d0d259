"""An HTML report with plots a person can open: ROC curve, feature importance, predictions,
and the monitoring once deployed: live AUC per week with the label coverage, weather drift per
feature over the months, and (added by ``serve_demo.py``) the training-serving skew check of
the requests the model server logged."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

__all__ = ["add_section", "quality_section", "skew_section", "write_report"]


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def write_report(
    path: Path,
    *,
    y_test: np.ndarray,
    p_test: np.ndarray,
    importances: dict[str, float],
    metrics: dict[str, float],
    summary: dict[str, Any],
    live: pd.DataFrame | None = None,
    drift: pd.DataFrame | None = None,
    quality: str = "",
) -> Path:
    """Write a self-contained HTML file (plots embedded as PNG)."""
    fpr, tpr, _ = roc_curve(y_test, p_test)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"model (AUC {metrics['test_auc']:.3f})")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, test months")
    ax.legend(loc="lower right")
    roc = _png(fig)

    top = sorted(importances.items(), key=lambda kv: kv[1], reverse=True)[:20]
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.barh([k for k, _ in reversed(top)], [v for _, v in reversed(top)])
    ax.set(xlabel="gain", title="Feature importance (top 20)")
    imp = _png(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(p_test[y_test == 0], bins=40, alpha=0.6, label="on time", density=True)
    ax.hist(p_test[y_test == 1], bins=40, alpha=0.6, label="delayed > 15 min", density=True)
    ax.set(xlabel="predicted delay probability", ylabel="density", title="Predictions, test")
    ax.legend()
    dist = _png(fig)

    monitoring = "" if live is None or live.empty else _live_section(live)
    if drift is not None and not drift.empty:
        monitoring += _drift_section(drift)
    rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in {**summary, **{k: f"{v:.4f}" for k, v in metrics.items()}}.items()
    )
    path.write_text(
        f"""<!doctype html><html><head><meta charset="utf-8"><title>fti flights report</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}
td{{padding:2px 10px;border-bottom:1px solid #ddd}} img{{max-width:48%;margin:1%}}</style>
</head><body><h1>Flight delays: model report</h1>
<table>{rows}</table>
<h2>Plots</h2>
<img alt="ROC curve" src="data:image/png;base64,{roc}">
<img alt="Feature importance" src="data:image/png;base64,{imp}">
<img alt="Prediction distribution" src="data:image/png;base64,{dist}">
{quality}
{monitoring}
<!-- sections -->
</body></html>"""
    )
    return path


def _live_section(live: pd.DataFrame) -> str:
    """Live AUC per week next to the test AUC, with the share of predictions labelled."""
    weeks = live["bucket_start"].dt.strftime("%m-%d")
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(weeks, live["coverage"], color="#cfd8e3", label="label coverage")
    ax.set(ylim=(0, 1.05), ylabel="share of predictions labelled", xlabel="week starting")
    auc = ax.twinx()
    auc.plot(weeks, live["auc"], "o-", color="C0", label="live AUC")
    if "test_auc" in live:
        auc.plot(weeks, live["test_auc"], "--", color="grey", label="test AUC (training)")
    auc.set(ylabel="AUC", title="Live AUC per week (outcomes arrive a day after departure)")
    fig.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, frameon=False)
    table = live[["bucket_start", "predictions", "labelled", "coverage", "auc"]].to_html(
        index=False, float_format=lambda v: f"{v:.3f}"
    )
    return (
        "<h2>Monitoring: live metrics</h2>\n"
        f'<img alt="Live AUC per week" src="data:image/png;base64,{_png(fig)}">\n{table}'
    )


def _drift_section(history: pd.DataFrame) -> str:
    """PSI of each weather feature per month against the training months, with the threshold."""
    months = (history["at"] - pd.Timedelta(days=1)).dt.strftime("%b %Y")  # the month checked
    values = history.assign(month=months).pivot_table(
        index="month", columns="feature", values="value", sort=False
    )
    threshold = float(history["threshold"].iloc[0])
    fig, ax = plt.subplots(figsize=(8, 4))
    for feature in values.columns:
        ax.plot(values.index, values[feature], "o-", label=feature)
    ax.axhline(threshold, linestyle="--", color="grey", label=f"threshold {threshold:g}")
    ax.set_yscale("symlog", linthresh=0.5)  # small and seasonal (temperature) PSI both visible
    ax.tick_params(axis="x", labelrotation=45)
    ax.set(
        ylabel="PSI vs the training months",
        xlabel="month (its last 28 days)",
        title="Weather drift per feature (monitor weather_drift)",
    )
    ax.legend(fontsize="small", ncol=3)
    drifted = history[history["drifted"]]
    summary = (
        ", ".join(
            sorted(
                {
                    f"{f} ({m})"
                    for f, m in zip(drifted["feature"], months[drifted.index], strict=True)
                }
            )
        )
        or "none"
    )
    table = values.to_html(float_format=lambda v: f"{v:.3f}")
    return (
        "<h2>Monitoring: weather drift</h2>\n"
        f'<img alt="Weather drift per feature" src="data:image/png;base64,{_png(fig)}">\n'
        f"<p>Drifted (PSI above {threshold:g}): {html.escape(summary)}</p>\n{table}"
    )


def quality_section(validation: pd.DataFrame, group: str, stats: dict[str, Any]) -> str:
    """Data quality: the validation summary of every insert (one row per group and rule) and
    the merged per-commit statistics of one feature group (``fg.statistics().to_dict()``)."""
    checks = validation.to_html(index=False)
    rows = []
    for feature, s in stats["features"].items():
        quantiles = s.get("quantiles") or {}
        distinct = s.get("distinct") or {}
        cells = [
            feature,
            s.get("kind"),
            s.get("count"),
            s.get("nulls"),
            s.get("min"),
            quantiles.get("p50"),
            s.get("max"),
            s.get("mean"),
            s.get("stddev"),
            None if not distinct else round(distinct["estimate"]),
        ]
        shown = [
            "" if c is None else f"{c:,.3f}" if isinstance(c, float) else str(c) for c in cells
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in shown) + "</tr>")
    head = "".join(
        f"<th>{h}</th>"
        for h in ("feature", "kind", "count", "nulls", "min", "p50", "max", "mean", "stddev",
                  "distinct")
    )
    return (
        "<h2>Data quality</h2>\n"
        "<p>Validation of every insert (rules per feature group; failing rows of a "
        "quarantine group are set aside, see <code>fti fg quarantine</code>):</p>\n"
        f"{checks}\n"
        f"<p>Statistics of <b>{html.escape(group)}</b>, merged from the profiles of its "
        f"{stats['commits']} commit(s), {stats['rows']:,} rows, without rescanning them "
        "(<code>fg.statistics()</code>; quantiles within the KLL sketch's rank error):</p>\n"
        f"<table><tr>{head}</tr>{''.join(rows)}</table>\n"
    )


def skew_section(run: dict[str, Any]) -> str:
    """The skew monitor's run: requests checked, counts per feature, the first findings."""
    summary = run["skew"]
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(f[k]))}</td>"
            for k in ("feature", "match", "mismatch", "missing_online", "missing_offline")
        )
        + "</tr>"
        for f in run["features"]
    )
    findings = "".join(
        f"<li>{html.escape(f['status'])}: request {html.escape(f['request_id'])} "
        f"{html.escape(f['feature'])} online={html.escape(f['online'])} "
        f"offline={html.escape(f['offline'])}</li>"
        for f in summary["findings"][:20]
    )
    verdict = "ALERT: " + ", ".join(run["drifted"]) if run["alert"] else "no skew"
    return (
        "<h2>Monitoring: training-serving skew</h2>\n"
        f"<p>Monitor {html.escape(run['monitor'])}, run {run['run']}: {summary['checked']} of "
        f"{summary['logged']} logged request row(s) recomputed offline as known at their "
        f"request time: <b>{html.escape(verdict)}</b> "
        f"({summary['findings_total']} finding(s)).</p>\n"
        "<table><tr><th>feature</th><th>match</th><th>mismatch</th><th>missing online</th>"
        f"<th>missing offline</th></tr>{rows}</table>\n"
        + (f"<ul>{findings}</ul>" if findings else "")
    )


def add_section(path: Path, section: str) -> Path:
    """Add (or replace) a section of an existing report, keyed by its heading."""
    text = path.read_text()
    head = section.split("\n", 1)[0]
    start = text.find(head)
    if start >= 0:  # written by an earlier run: replace it
        end = text.find("<!-- /section -->", start)
        text = text[:start] + text[end + len("<!-- /section -->") + 1 :]
    marker = "<!-- sections -->"
    text = text.replace(marker, f"{section}\n<!-- /section -->\n{marker}")
    path.write_text(text)
    return path
