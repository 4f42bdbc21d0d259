"""Skew monitors: the training-serving skew check (:mod:`fti.services.skew`) run as a monitor.

``fs.monitor(name, model="delays", metric="skew", detection=fti.window(last=...))`` checks up to
``sample`` of the model's requests logged in the detection window on each run. Per feature the
run reports the counts per status and, as its value, the fraction of checked values that are not
a match; the feature is flagged when that fraction is above the threshold (default 0: any
mismatch, missing online or missing offline value is an alert). A window without logged
requests is a run with nothing checked, not an error: a scheduled monitor of a quiet hour.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fti.definitions.model_version import ModelVersionSpec
from fti.definitions.monitors import SKEW, MonitorSpec
from fti.errors import ValidationError
from fti.services import feature_views, model_registry, skew
from fti.services.context import StoreContext

__all__ = ["STORED_FINDINGS", "check_source", "compute", "view_features"]

#: A run stores at most this many findings (all are counted): runs live in the registry.
STORED_FINDINGS = 100


def _model(ctx: StoreContext, name: str, version: int | None) -> ModelVersionSpec:
    spec = model_registry.get_spec(ctx, name, version)
    if spec.feature_view is None:
        raise ValidationError(
            f"Model {name!r} version {spec.version} was registered without a feature view, so "
            "it logs no feature vectors to check for skew. Register it with feature_view=fv."
        )
    return spec


def view_features(ctx: StoreContext, name: str, version: int | None) -> tuple[str, ...]:
    """The logged features of model ``name`` (its feature view's, on-demand ones included)."""
    ref = _model(ctx, name, version).feature_view
    assert ref is not None  # checked by _model
    return tuple(feature_views.get_spec(ctx, ref.name, ref.version).features)


def check_source(ctx: StoreContext, spec: MonitorSpec) -> None:
    """The model exists, has a feature view, and every monitored feature is one of its."""
    have = view_features(ctx, spec.source_name, spec.source_version)
    unknown = [f for f in spec.features if f not in have]
    if unknown:
        raise ValidationError(
            f"Monitor {spec.name!r}: {unknown} are not features of model "
            f"{spec.source_name!r}'s feature view. Its features: {list(have)}."
        )


def _jsonable(finding: dict[str, Any]) -> dict[str, Any]:
    return {
        **finding,
        "logged_at": finding["logged_at"].isoformat(),
        "online": json.dumps(finding["online"], default=str),
        "offline": json.dumps(finding["offline"], default=str),
    }


def compute(
    ctx: StoreContext, spec: MonitorSpec, now: datetime
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-feature results and the run's skew summary (counts, findings) at ``now``."""
    start, end = spec.detection.bounds(now)
    report = skew.check(
        ctx, spec.source_name, version=spec.source_version, sample=spec.sample, start=start, end=end
    )
    watched = set(spec.features)
    threshold = spec.threshold_for(SKEW)
    features: list[dict[str, Any]] = []
    for f in spec.features:
        counts = report.by_feature.get(f, dict.fromkeys(skew.STATUSES, 0))
        total = sum(counts.values())
        value = (total - counts[skew.MATCH]) / total if total else None
        features.append(
            {
                "feature": f,
                "kind": SKEW,
                "metric": SKEW,
                "value": value,
                "threshold": threshold,
                "drifted": value is not None and value > threshold,
                "n_ref": None,
                "n_detect": total,
                "null_fraction_ref": None,
                "null_fraction_detect": None,
                **{s: counts[s] for s in skew.STATUSES},
            }
        )
    findings = [f for f in report.findings if f["feature"] in watched]
    summary = {
        "model": spec.source_name,
        "model_version": spec.source_version,
        "logged": report.logged,
        "checked": report.checked,
        "requests": len({(f["request_id"], f["position"]) for f in findings}),
        "findings_total": len(findings),
        "findings": [_jsonable(f) for f in findings[:STORED_FINDINGS]],
        "seconds": round(report.seconds, 3),
    }
    return features, summary
