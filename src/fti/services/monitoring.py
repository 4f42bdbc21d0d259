"""Feature monitoring: drift between a reference and a detection window, and skew monitors
(``metric="skew"``: :mod:`fti.services.monitor_skew`), stored and alerted the same way.

A run reads each window with **one DuckDB pass per table** over the Delta table's Arrow dataset
(or the training dataset's train split): numeric features are counted in the reference's decile
bins, categorical features by value, nulls (and NaN) on the side; one aggregate query, DuckDB's
``histogram()`` per feature, gives every feature's histogram at once. The reference also
costs one ``quantile_cont`` pass for the bin edges (both in :mod:`fti.services.drift_windows`,
whose ``window_counts`` is the seam where per-commit sketches can replace the scan).

Monitors are registry records (kind ``"monitor"``); each run is a ``"monitor_run"`` record
(name = monitor, version = run number), so ``history()`` is one registry read. A monitor with a
``schedule`` also has a ``"schedule"`` record that ``fti scheduler`` runs.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from fti.definitions.feature_group import FeatureGroupSpec
from fti.definitions.feature_view import FeatureViewSpec
from fti.definitions.model_version import ModelVersionSpec
from fti.definitions.monitors import (
    DEFAULT_THRESHOLDS,
    SKEW,
    SKEW_SAMPLE,
    SMALL_WINDOW,
    MonitorSpec,
    Window,
    features_tuple,
)
from fti.definitions.schedule import Schedule
from fti.definitions.training_dataset import TrainingDatasetSpec
from fti.errors import ConflictError, NotFoundError, ValidationError
from fti.services import drift_metrics, drift_windows, monitor_skew, schedules
from fti.services.context import StoreContext
from fti.services.drift_windows import FeatureCounts, Scan

__all__ = [
    "KIND",
    "RUN_KIND",
    "build_spec",
    "delete",
    "get_or_create",
    "get_spec",
    "history",
    "list_specs",
    "run",
]

KIND = "monitor"
RUN_KIND = "monitor_run"
WEBHOOK_TIMEOUT = 5.0


# ---------------------------------------------------------------------------- registry
def get_spec(ctx: StoreContext, name: str) -> MonitorSpec:
    rec = ctx.registry.get(KIND, name, 1)
    if rec is None:
        have = [r.name for r in ctx.registry.records(KIND)]
        raise NotFoundError(
            f"Monitor {name!r} does not exist. Existing monitors: {have}. Create it with "
            "fs.monitor(...)."
        )
    return MonitorSpec.from_dict(rec.body)


def list_specs(ctx: StoreContext) -> list[MonitorSpec]:
    return [MonitorSpec.from_dict(r.body) for r in ctx.registry.records(KIND)]


def get_or_create(ctx: StoreContext, spec: MonitorSpec) -> MonitorSpec:
    """Store ``spec`` (checked against its source first), or return the stored monitor of the
    same name when its definition is the same; a different one is a ConflictError."""
    rec = ctx.registry.get(KIND, spec.name, 1)
    if rec is None:
        if spec.is_skew:
            monitor_skew.check_source(ctx, spec)
        else:
            drift_windows.kinds(ctx, spec)  # unknown features, wrong kinds: fail before storing
        if isinstance(spec.reference, int):
            drift_windows.training_dataset(ctx, spec, spec.reference)
        try:
            rec = ctx.registry.create(KIND, spec.name, 1, spec.to_dict())
        except ConflictError:
            rec = ctx.registry.get(KIND, spec.name, 1)
            if rec is None:  # pragma: no cover - deleted in between
                raise
        else:
            if spec.schedule is not None:
                _add_schedule(ctx, spec)
            return spec
    stored = MonitorSpec.from_dict(rec.body)
    if stored.definition() != spec.definition():
        have, want = stored.public_dict(), spec.public_dict()
        diff = {k: have[k] for k in have if k not in ("name", "created_at") and have[k] != want[k]}
        raise ConflictError(
            f"Monitor {spec.name!r} exists with another definition (stored: {diff}). Use "
            "fs.monitor(name) to get it, or pick another name."
        )
    return stored


def build_spec(
    name: str,
    *,
    feature_view: Any,
    feature_group: Any,
    features: Sequence[str] | None,
    reference: Any,
    detection: Any,
    metric: str,
    threshold: float | None,
    schedule: str | None,
    webhook: str | None,
    model: Any = None,
    sample: int | None = SKEW_SAMPLE,
    ctx: StoreContext | None = None,
) -> MonitorSpec:
    """A :class:`MonitorSpec` from the facade's arguments (handles are read by their spec)."""
    if sum(s is not None for s in (feature_view, feature_group, model)) != 1:
        raise ValidationError(
            f"Monitor {name!r} needs exactly one source: feature_view=fv, feature_group=fg, or "
            "model='name' (with metric='skew')."
        )
    if model is not None:
        return _skew_spec(
            name, model, features, reference, detection, metric, threshold, schedule, webhook,
            sample, ctx,
        )  # fmt: skip
    source = getattr(feature_view if feature_view is not None else feature_group, "spec", None)
    if feature_view is not None and not isinstance(source, FeatureViewSpec):
        raise ValidationError(f"feature_view={feature_view!r} is not a feature view handle.")
    if feature_group is not None and not isinstance(source, FeatureGroupSpec):
        raise ValidationError(f"feature_group={feature_group!r} is not a feature group handle.")
    assert isinstance(source, FeatureViewSpec | FeatureGroupSpec)
    ref: Window | int
    td = getattr(reference, "spec", None)
    if isinstance(td, TrainingDatasetSpec):
        if not isinstance(source, FeatureViewSpec) or (
            td.feature_view,
            td.feature_view_version,
        ) != (source.name, source.version):
            raise ValidationError(
                f"reference= is training dataset version {td.version} of feature view "
                f"{td.feature_view!r} version {td.feature_view_version}; it must belong to the "
                "monitored feature view (feature_view=)."
            )
        ref = td.version
    elif isinstance(reference, Window):
        ref = reference
    else:
        raise ValidationError(
            f"reference={reference!r} must be a training dataset (td) or fti.window(...)."
        )
    if not isinstance(detection, Window):
        raise ValidationError(
            f"detection={detection!r} must be fti.window(...), e.g. "
            "fti.window(last=timedelta(days=1))."
        )
    return MonitorSpec(
        name=name,
        source_kind="feature_view" if isinstance(source, FeatureViewSpec) else "feature_group",
        source_name=source.name,
        source_version=source.version,
        features=_default_features(source) if features is None else features_tuple(features, name),
        reference=ref,
        detection=detection,
        metric=metric,
        threshold=threshold,
        schedule=schedule,
        webhook=webhook,
    )


def _skew_spec(
    name: str,
    model: Any,
    features: Sequence[str] | None,
    reference: Any,
    detection: Any,
    metric: str,
    threshold: float | None,
    schedule: str | None,
    webhook: str | None,
    sample: int | None,
    ctx: StoreContext | None,
) -> MonitorSpec:
    mv = getattr(model, "spec", None)
    if isinstance(mv, ModelVersionSpec):
        model_name, version = mv.name, mv.version  # a model version handle pins the version
    elif isinstance(model, str):
        model_name, version = model, None
    else:
        raise ValidationError(
            f"model={model!r} must be a model name or a model version (fs.models.get(...))."
        )
    if metric != SKEW:
        raise ValidationError(
            f"Monitor {name!r} watches model {model_name!r}: pass metric='skew' (a model is "
            "monitored for training-serving skew; drift is monitored on feature_view=)."
        )
    if not isinstance(detection, Window):
        raise ValidationError(
            f"detection={detection!r} must be fti.window(...): the window of logged requests "
            "each run checks, e.g. fti.window(last=timedelta(hours=1))."
        )
    if features is None:
        assert ctx is not None, "the store context resolves a skew monitor's default features"
        feats = monitor_skew.view_features(ctx, model_name, version)
    else:
        feats = features_tuple(features, name)
    return MonitorSpec(
        name=name,
        source_kind="model",
        source_name=model_name,
        source_version=version,
        features=feats,
        reference=reference,
        detection=detection,
        metric=metric,
        threshold=threshold,
        schedule=schedule,
        webhook=webhook,
        sample=sample,
    )


def _default_features(source: FeatureViewSpec | FeatureGroupSpec) -> tuple[str, ...]:
    """Every stored numeric or categorical feature of the source (keys and times aside)."""
    if isinstance(source, FeatureGroupSpec):
        skip = {*source.primary_key, source.event_time}
        cols = [(source, c) for c in source.column_names if c not in skip]
        named = [(c, g.column(c).dtype) for g, c in cols]
    else:
        sel = source.query.selections
        named = [(out, sel[i].group.column(c).dtype) for i, c, out in source.feature_columns()]
    usable = drift_windows.NUMERIC | drift_windows.CATEGORICAL
    return tuple(n for n, dtype in named if dtype in usable)


def schedule_name(monitor: str) -> str:
    return f"monitor_{monitor}"[:63]


def _add_schedule(ctx: StoreContext, spec: MonitorSpec) -> None:
    now = datetime.now(UTC)
    name = schedule_name(spec.name)
    schedule = Schedule(
        name=name,
        function=f"monitor:{spec.name}",
        cron=str(spec.schedule),
        parameters={},
        # Relative windows make a missed tick's run meaningful only at its own time; after
        # downtime the latest tick runs once instead of a backlog.
        catch_up=False,
        enabled=True,
        created_at=now,
        last_tick=now,
        pipeline=spec.name,
        kind="monitor",
        monitor=spec.name,
    )
    try:
        schedules.create(ctx, schedule)
    except ConflictError:
        raise ConflictError(
            f"A schedule named {name!r} already exists; remove it "
            f"('fti schedule remove {name}') or rename the monitor."
        ) from None


def delete(ctx: StoreContext, name: str) -> list[str]:
    """Delete a monitor, its schedule and its stored runs; returns what was deleted."""
    spec = get_spec(ctx, name)
    deleted: list[str] = []
    sched = schedule_name(spec.name)
    found = schedules.find(ctx, sched)
    if found is not None and found.monitor == spec.name:
        schedules.delete(ctx, sched)
        deleted.append(f"schedule {sched}")
    runs = ctx.registry.records(RUN_KIND, spec.name)
    for r in runs:
        ctx.registry.delete(RUN_KIND, spec.name, r.version)
    if runs:
        deleted.append(f"{len(runs)} run(s) of monitor {spec.name}")
    # The monitor record last: an interrupted delete can be run again.
    ctx.registry.delete(KIND, spec.name, 1)
    deleted.append(f"monitor {spec.name}")
    return deleted


def history(ctx: StoreContext, name: str) -> list[dict[str, Any]]:
    """Every stored run of a monitor, oldest first."""
    get_spec(ctx, name)
    return [r.body for r in ctx.registry.records(RUN_KIND, name)]


def last_run(ctx: StoreContext, name: str) -> dict[str, Any] | None:
    runs = ctx.registry.records(RUN_KIND, name)
    return runs[-1].body if runs else None


# ---------------------------------------------------------------------------- a run
def _choose(metric: str, kind: str, ref: FeatureCounts, det: FeatureCounts) -> str:
    if metric != "auto":
        return metric
    small = min(ref.present, det.present) < SMALL_WINDOW
    if kind == "numeric":
        return "ks" if small else "psi"
    return "chi2" if small else "js"


def _aligned(ref: FeatureCounts, det: FeatureCounts, bins: int | None) -> tuple[list[int], ...]:
    keys = list(range(bins)) if bins is not None else sorted(set(ref.counts) | set(det.counts))
    return [ref.counts.get(k, 0) for k in keys], [det.counts.get(k, 0) for k in keys]


def _feature_result(
    spec: MonitorSpec,
    feature: str,
    kind: str,
    ref: FeatureCounts,
    det: FeatureCounts,
    bins: int | None,
    scan_of: dict[str, tuple[Scan, Scan]],
) -> dict[str, Any]:
    metric = _choose(spec.metric, kind, ref, det)
    threshold = spec.threshold_for(metric)
    nf_ref = ref.nulls / ref.rows if ref.rows else 0.0
    nf_det = det.nulls / det.rows if det.rows else 0.0
    value: float | None
    if metric == "null_fraction":
        value = abs(nf_det - nf_ref)
    elif ref.present == 0 or det.present == 0:
        value = None  # nothing to compare: reported, not an alert (null_fraction catches it)
    elif metric in ("ks", "wasserstein"):
        r_scan, d_scan = scan_of[feature]
        a, b = drift_windows.values(r_scan, feature), drift_windows.values(d_scan, feature)
        fn = drift_metrics.ks_pvalue if metric == "ks" else drift_metrics.wasserstein
        value = fn(a, b)
    elif metric == "mean_shift":
        r_scan, d_scan = scan_of[feature]
        (rm, rs), (dm, _ds) = (
            drift_windows.moments(r_scan, feature),
            drift_windows.moments(d_scan, feature),
        )
        value = drift_metrics.mean_shift(rm, rs, dm)
    else:
        r, d = _aligned(ref, det, bins)
        value = {
            "psi": drift_metrics.psi,
            "js": drift_metrics.js_distance,
            "hellinger": drift_metrics.hellinger,
            "chi2": drift_metrics.chi2_pvalue,
        }[metric](r, d)
    below = DEFAULT_THRESHOLDS[metric][1] == "below"
    drifted = value is not None and (value < threshold if below else value > threshold)
    return {
        "feature": feature,
        "kind": kind,
        "metric": metric,
        "value": value if value is None or math.isfinite(value) else None,
        "threshold": threshold,
        "drifted": bool(drifted),
        "n_ref": ref.rows,
        "n_detect": det.rows,
        # bins counted from KLL sketches: each bin's share within drift_sketches.BIN_ERROR
        "approx": kind == "numeric"
        and metric in ("psi", "js", "hellinger")
        and (ref.approx or det.approx),
        "null_fraction_ref": nf_ref,
        "null_fraction_detect": nf_det,
    }


def _window_counts(
    scans_: list[Scan], edges: dict[str, list[float]]
) -> tuple[dict[str, FeatureCounts], dict[str, Scan]]:
    counts: dict[str, FeatureCounts] = {}
    scan_of: dict[str, Scan] = {}
    for s in scans_:
        counts.update(
            drift_windows.window_counts(s, {f: e for f, e in edges.items() if f in s.values})
        )
        scan_of.update(dict.fromkeys(s.values, s))
    return counts, scan_of


def _check_rows(
    spec: MonitorSpec,
    what: str,
    target: Window | int,
    scans_: list[Scan],
    counts: dict[str, FeatureCounts],
) -> None:
    for f in spec.features:
        if f not in counts or counts[f].rows == 0:
            desc = target.describe() if isinstance(target, Window) else f"training dataset {target}"
            src = next((s.label for s in scans_ if f in s.values), f"{spec.source_name!r}")
            raise ValidationError(
                f"Monitor {spec.name!r}: the {what} ({desc}) has no rows of feature {f!r} in "
                f"{src}. Widen the window or insert data first."
            )


def _compute(
    ctx: StoreContext,
    spec: MonitorSpec,
    kinds: dict[str, str],
    now: datetime,
    opened: list[Scan],
) -> list[dict[str, Any]]:
    """Per-feature results; every scan opened is appended to ``opened`` (closed by the
    caller)."""
    numeric = [f for f in spec.features if kinds[f] == "numeric"]
    assert spec.reference is not None  # a drift monitor always has one
    ref_scans = drift_windows.scans(ctx, spec, spec.reference, kinds, now)
    opened += ref_scans
    edges: dict[str, list[float]] = {}
    for s in ref_scans:
        edges.update(drift_windows.bin_edges(s, [f for f in numeric if f in s.values]))
    ref, ref_scan_of = _window_counts(ref_scans, edges)
    _check_rows(spec, "reference", spec.reference, ref_scans, ref)
    det_scans = drift_windows.scans(ctx, spec, spec.detection, kinds, now)
    opened += det_scans
    det, det_scan_of = _window_counts(det_scans, edges)
    _check_rows(spec, "detection window", spec.detection, det_scans, det)
    scan_of = {f: (ref_scan_of[f], det_scan_of[f]) for f in spec.features}
    return [
        _feature_result(
            spec,
            f,
            kinds[f],
            ref[f],
            det[f],
            len(edges[f]) + 1 if f in edges else None,
            scan_of,
        )
        for f in spec.features
    ]


def run(ctx: StoreContext, name: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Compute drift for every feature of monitor ``name``, store the run and, if any feature
    drifted and a webhook is set, post the alert. Returns the stored run."""
    spec = get_spec(ctx, name)
    now = (now or datetime.now(UTC)).astimezone(UTC)
    extra: dict[str, Any] = {}
    if spec.is_skew:
        features, extra["skew"] = monitor_skew.compute(ctx, spec, now)
    else:
        kinds = drift_windows.kinds(ctx, spec)
        opened: list[Scan] = []
        try:
            features = _compute(ctx, spec, kinds, now, opened)
        finally:
            for s in opened:
                s.con.close()
    drifted = [r["feature"] for r in features if r["drifted"]]

    def body(version: int) -> dict[str, Any]:
        return {
            "monitor": spec.name,
            "run": version,
            "at": now.isoformat(),
            "reference": _describe(spec.reference, now),
            "detection": _describe(spec.detection, now),
            "alert": bool(drifted),
            "drifted": drifted,
            "features": features,
            **extra,
            "webhook": None,
        }

    rec = ctx.registry.create_next(RUN_KIND, spec.name, body)
    result = rec.body
    if drifted and spec.webhook:
        delivery = _post_webhook(spec.webhook, result)
        result = {**result, "webhook": delivery}
        ctx.registry.update(RUN_KIND, spec.name, rec.version, result, revision=rec.revision)
    return result


def _describe(target: Window | int | None, now: datetime) -> dict[str, Any] | None:
    if target is None:
        return None
    if isinstance(target, int):
        return {"training_dataset_version": target}
    start, end = target.bounds(now)
    return {
        "window": target.describe(),
        "start": start.isoformat() if start else None,
        "end": end.isoformat() if end else None,
    }


def _post_webhook(url: str, result: dict[str, Any]) -> dict[str, Any]:
    """POST the alert as JSON; a failure is returned (and stored with the run), never raised."""
    payload = {
        "type": "fti.skew_alert" if "skew" in result else "fti.drift_alert",
        "monitor": result["monitor"],
        "run": result["run"],
        "at": result["at"],
        "drifted": result["drifted"],
        "features": [r for r in result["features"] if r["drifted"]],
    }
    if "skew" in result:
        summary = result["skew"]
        payload["skew"] = {**summary, "findings": summary["findings"][:20]}
    req = urllib.request.Request(  # noqa: S310 - the scheme is checked to be http(s)
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "fti-monitor"},
        method="POST",
    )
    host = urlsplit(url).hostname
    try:
        with urllib.request.urlopen(req, timeout=WEBHOOK_TIMEOUT) as resp:  # noqa: S310
            return {"host": host, "delivered": 200 <= resp.status < 300, "status": resp.status}
    except urllib.error.HTTPError as e:
        return {"host": host, "delivered": False, "status": e.code, "error": f"HTTP {e.code}"}
    except (OSError, ValueError) as e:
        return {"host": host, "delivered": False, "status": None, "error": type(e).__name__}
