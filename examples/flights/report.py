"""An HTML report with plots a person can open: ROC curve, feature importance, predictions,
and the live metrics once deployed (AUC per week with the label coverage)."""

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

__all__ = ["write_report"]


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
{monitoring}
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
