"""Feature monitoring: drift between a reference and a detection window.

A run reads each window with **one DuckDB pass per table** over the Delta table's Arrow dataset
(or the training dataset's train split): numeric features are counted in the reference's decile
bins, categorical features by value, nulls (and NaN) on the side; one aggregate query, DuckDB's
``histogram()`` per feature, gives every feature's histogram at once. The reference also
costs one ``quantile_cont`` pass for the bin edges. :func:`window_counts` is the seam where
per-commit sketches can replace the scan.

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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import duckdb
import numpy as np
import pyarrow as pa

from fti._internal.names import quote
from fti.definitions.feature_group import FeatureGroupSpec
from fti.definitions.feature_view import FeatureViewSpec
from fti.definitions.monitors import (
    CATEGORICAL_ONLY,
    DEFAULT_THRESHOLDS,
    NUMERIC_ONLY,
    SMALL_WINDOW,
    MonitorSpec,
    Window,
    features_tuple,
)
from fti.definitions.training_dataset import TrainingDatasetSpec
from fti.errors import ConflictError, NotFoundError, ValidationError
from fti.services import drift_metrics, feature_groups, feature_views, training_datasets
from fti.services.context import StoreContext

__all__ = [
    "KIND",
    "RUN_KIND",
    "FeatureCounts",
    "Scan",
    "build_spec",
    "get_or_create",
    "get_spec",
    "history",
    "list_specs",
    "run",
    "window_counts",
]

KIND = "monitor"
RUN_KIND = "monitor_run"
SCHEDULE_KIND = "schedule"  # owned by fti.pipelines.scheduler, which runs it
_NUMERIC = frozenset({"int8", "int16", "int32", "int64", "float32", "float64"})
_CATEGORICAL = frozenset({"string", "bool"})
_DECILES = [i / 10 for i in range(1, 10)]
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
        _kinds(ctx, spec)  # unknown features / wrong kinds fail here, nothing stored
        if isinstance(spec.reference, int):
            _training_dataset(ctx, spec, spec.reference)
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
        raise ConflictError(
            f"Monitor {spec.name!r} exists with another definition: {stored.definition()}. "
            "Use fs.monitor(name) to get it, or pick another name."
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
) -> MonitorSpec:
    """A :class:`MonitorSpec` from the facade's arguments (handles are read by their spec)."""
    if (feature_view is None) == (feature_group is None):
        raise ValidationError(
            f"Monitor {name!r} needs exactly one source: feature_view=fv or feature_group=fg."
        )
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


def _default_features(source: FeatureViewSpec | FeatureGroupSpec) -> tuple[str, ...]:
    """Every stored numeric or categorical feature of the source (keys and times aside)."""
    if isinstance(source, FeatureGroupSpec):
        skip = {*source.primary_key, source.event_time}
        cols = [(source, c) for c in source.column_names if c not in skip]
        named = [(c, g.column(c).dtype) for g, c in cols]
    else:
        sel = source.query.selections
        named = [(out, sel[i].group.column(c).dtype) for i, c, out in source.feature_columns()]
    return tuple(n for n, dtype in named if dtype in _NUMERIC | _CATEGORICAL)


def schedule_name(monitor: str) -> str:
    return f"monitor_{monitor}"[:63]


def _add_schedule(ctx: StoreContext, spec: MonitorSpec) -> None:
    now = datetime.now(UTC).isoformat()
    name = schedule_name(spec.name)
    body: dict[str, Any] = {
        "name": name,
        "function": f"monitor:{spec.name}",
        "pipeline": spec.name,
        "kind": "monitor",
        "monitor": spec.name,
        "cron": spec.schedule,
        "parameters": {},
        # Relative windows make a missed tick's run meaningful only at its own time; after
        # downtime the latest tick runs once instead of a backlog.
        "catch_up": False,
        "enabled": True,
        "created_at": now,
        "last_tick": now,
    }
    try:
        ctx.registry.create(SCHEDULE_KIND, name, 1, body)
    except ConflictError:
        raise ConflictError(
            f"A schedule named {name!r} already exists; remove it "
            f"('fti schedule remove {name}') or rename the monitor."
        ) from None


def history(ctx: StoreContext, name: str) -> list[dict[str, Any]]:
    """Every stored run of a monitor, oldest first."""
    get_spec(ctx, name)
    return [r.body for r in ctx.registry.records(RUN_KIND, name)]


def last_run(ctx: StoreContext, name: str) -> dict[str, Any] | None:
    runs = ctx.registry.records(RUN_KIND, name)
    return runs[-1].body if runs else None


# ---------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class Scan:
    """One pass over one table: the connection the Arrow data is registered on (as ``src``),
    the SQL expression of each feature's value over it, and the row filter."""

    con: duckdb.DuckDBPyConnection
    values: dict[str, str]
    where: str
    params: list[Any]
    label: str


def _kind_of(dtype: str, feature: str, where: str) -> str:
    if dtype in _NUMERIC:
        return "numeric"
    if dtype in _CATEGORICAL:
        return "categorical"
    raise ValidationError(
        f"Feature {feature!r} of {where} has dtype {dtype!r}; drift is measured on numeric "
        "(int/float) and categorical (string/bool) features. Remove it from features=."
    )


def _columns(ctx: StoreContext, spec: MonitorSpec) -> dict[str, tuple[FeatureGroupSpec, str]]:
    """feature -> (feature group it is stored in, column name there)."""
    if spec.source_kind == "feature_group":
        g = feature_groups.get_spec(ctx, spec.source_name, spec.source_version)
        have = [c for c in g.column_names if c not in g.primary_key and c != g.event_time]
        out = {f: (g, f) for f in spec.features if f in have}
        where = f"feature group {g.name!r} version {g.version}"
    else:
        fv = feature_views.get_spec(ctx, spec.source_name, spec.source_version)
        sel = fv.query.selections
        cols = {name: (sel[i].group, c) for i, c, name in fv.feature_columns()}
        have = list(cols)
        out = {f: cols[f] for f in spec.features if f in cols}
        where = f"feature view {fv.name!r} version {fv.version}"
    for f in spec.features:
        if f not in out:
            raise ValidationError(
                f"Feature {f!r} is not a stored feature of {where}. Its features: {have}."
            )
    return out


def _kinds(ctx: StoreContext, spec: MonitorSpec) -> dict[str, str]:
    """feature -> "numeric" | "categorical"; checks the metric fits each feature."""
    kinds: dict[str, str] = {}
    for f, (g, c) in _columns(ctx, spec).items():
        kinds[f] = _kind_of(g.column(c).dtype, f, f"feature group {g.name!r}")
        if kinds[f] == "categorical" and spec.metric in NUMERIC_ONLY:
            raise ValidationError(
                f"metric={spec.metric!r} needs numeric features, but {f!r} is categorical "
                f"({g.column(c).dtype}). Use metric='auto', 'js' or 'chi2', or drop {f!r}."
            )
        if kinds[f] == "numeric" and spec.metric in CATEGORICAL_ONLY:
            raise ValidationError(
                f"metric={spec.metric!r} needs categorical features, but {f!r} is numeric "
                f"({g.column(c).dtype}). Use metric='auto', 'psi' or 'ks', or drop {f!r}."
            )
    return kinds


def _value_expr(column: str, kind: str) -> str:
    col = quote(column)
    return f"CAST({col} AS VARCHAR)" if kind == "categorical" else f"CAST({col} AS DOUBLE)"


def _time_filter(
    column: str | None, bounds: tuple[datetime | None, datetime | None], label: str
) -> tuple[str, list[Any]]:
    start, end = bounds
    if start is None and end is None:
        return "", []
    if column is None:
        raise ValidationError(
            f"{label} has no event time, so a time window cannot select its rows. Use a "
            "training dataset as the reference, or monitor a feature group with an event time."
        )
    parts, params = [], []
    if start is not None:
        parts.append(f"{quote(column)} >= ?")
        params.append(start)
    if end is not None:
        parts.append(f"{quote(column)} < ?")
        params.append(end)
    return " WHERE " + " AND ".join(parts), params


def _training_dataset(ctx: StoreContext, spec: MonitorSpec, version: int) -> Any:
    if spec.source_kind != "feature_view":
        raise ValidationError(
            f"Monitor {spec.name!r}: a training dataset reference needs feature_view=, not a "
            "feature group. Use reference=fti.window(...) for a feature group."
        )
    fv = feature_views.get_spec(ctx, spec.source_name, spec.source_version)
    return training_datasets.get(ctx, fv, version)


def scans(
    ctx: StoreContext, spec: MonitorSpec, target: Window | int, kinds: dict[str, str], now: datetime
) -> list[Scan]:
    """The passes that read ``target`` (the reference or the detection) of ``spec``."""
    cols = _columns(ctx, spec)
    if isinstance(target, int):
        td = _training_dataset(ctx, spec, target)
        split = td.split.fit_split
        table = training_datasets.read_rows(ctx, td, split)
        missing = [f for f in spec.features if f not in table.column_names]
        if missing:
            raise ValidationError(
                f"Training dataset version {target} of {spec.source_name!r} has no column(s) "
                f"{missing}. Its columns: {table.column_names}."
            )
        values = {f: _value_expr(f, kinds[f]) for f in cols}
        label = f"training dataset version {target} ({split} split) of {spec.source_name!r}"
        return [Scan(_connect(table), values, "", [], label)]
    bounds = target.bounds(now)
    if target.prediction_log:
        from fti.services import prediction_logs

        g = prediction_logs.log_spec(ctx, spec.source_name, spec.source_version)
        label = f"prediction log of feature view {spec.source_name!r} v{spec.source_version}"
        where, params = _time_filter(g.event_time, bounds, label)
        if target.model is not None:
            where += (" AND " if where else " WHERE ") + "model_name = ?"
            params.append(target.model)
        values = {}
        for f in spec.features:
            raw = f"json_extract_string(features, {_sql_string('$.' + f)})"
            values[f] = raw if kinds[f] == "categorical" else f"TRY_CAST({raw} AS DOUBLE)"
        data = _dataset(ctx, g)
        return [] if data is None else [Scan(_connect(data), values, where, params, label)]
    out: list[Scan] = []
    by_group: dict[str, list[str]] = {}
    for f, (g, _c) in cols.items():
        by_group.setdefault(g.key, []).append(f)
    for fs_ in by_group.values():
        g = cols[fs_[0]][0]
        label = f"feature group {g.name!r} version {g.version}"
        where, params = _time_filter(g.event_time, bounds, label)
        data = _dataset(ctx, g)
        if data is None:
            continue
        values = {f: _value_expr(cols[f][1], kinds[f]) for f in fs_}
        out.append(Scan(_connect(data), values, where, params, label))
    return out


def _sql_string(text: str) -> str:
    # JSON paths are built from validated identifiers; quoting keeps it a literal regardless.
    return "'" + text.replace("'", "''") + "'"


def _dataset(ctx: StoreContext, g: FeatureGroupSpec) -> Any:
    if not g.has_schema or not ctx.offline.exists(g.key):
        return None
    data, _ = ctx.offline.dataset(g.key)
    return data


# ---------------------------------------------------------------------------- statistics
@dataclass
class FeatureCounts:
    """A feature's histogram in one window: rows, nulls, counts per bin (numeric: index into
    the reference's bins) or per category."""

    rows: int = 0
    nulls: int = 0
    counts: dict[Any, int] = field(default_factory=dict)

    @property
    def present(self) -> int:
        return self.rows - self.nulls


def _run_sql(scan: Scan, sql: str, params: list[Any]) -> pa.Table:
    return scan.con.sql(sql, params=params).to_arrow_table()


def _connect(data: Any) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.register("src", data)
    return con


def _bin_expr(value: str, edges: Sequence[float]) -> str:
    """The bin index of ``value``: how many edges lie below it (NaN, above every edge in
    DuckDB's order, lands in the top bin and is moved to the nulls by :func:`window_counts`)."""
    if not edges:
        return f"CASE WHEN ({value}) IS NULL THEN NULL ELSE 0 END"
    return " + ".join(f"CAST(({value}) > {float(e)!r} AS INTEGER)" for e in edges)


def bin_edges(scan: Scan, features: Sequence[str]) -> dict[str, list[float]]:
    """Distinct deciles (NaN aside) of each numeric feature in ``scan`` (the reference), one
    pass."""
    if not features:
        return {}
    items = ", ".join(
        f"quantile_cont({scan.values[f]}, {_DECILES!r}) FILTER (WHERE NOT isnan("
        f"{scan.values[f]})) AS q{i}"
        for i, f in enumerate(features)
    )
    row = _run_sql(scan, f"SELECT {items} FROM src{scan.where}", scan.params).to_pylist()[0]
    out: dict[str, list[float]] = {}
    for i, f in enumerate(features):
        q = row[f"q{i}"] or []
        out[f] = sorted({float(x) for x in q if x is not None and math.isfinite(x)})
    return out


def window_counts(scan: Scan, edges: dict[str, list[float]]) -> dict[str, FeatureCounts]:
    """Every feature's histogram in one pass: numeric features (those in ``edges``) counted
    per bin, the others per value; nulls (and NaN) apart.

    This is the seam for per-commit sketches: a window whose commits all carry a sketch can
    merge them here instead of scanning."""
    feats = list(scan.values)
    items = ["count(*) AS n"]
    for i, f in enumerate(feats):
        v = scan.values[f]
        key = _bin_expr(v, edges[f]) if f in edges else v
        items += [f"histogram({key}) AS h{i}", f"count({v}) AS c{i}"]
        if f in edges:
            items.append(f"count(*) FILTER (WHERE isnan({v})) AS nan{i}")
    sql = f"SELECT {', '.join(items)} FROM src{scan.where}"
    row = _run_sql(scan, sql, scan.params).to_pylist()[0]
    rows = int(row["n"])
    out: dict[str, FeatureCounts] = {}
    for i, f in enumerate(feats):
        hist = row[f"h{i}"] or {}
        counts = {k: int(c) for k, c in (hist.items() if isinstance(hist, dict) else hist)}
        nulls = rows - int(row[f"c{i}"])
        nan = int(row.get(f"nan{i}") or 0)
        if nan:
            top = len(edges[f])
            counts[top] -= nan
            nulls += nan
        out[f] = FeatureCounts(rows, nulls, {k: c for k, c in counts.items() if c})
    return out


def _values(scan: Scan, feature: str) -> np.ndarray:
    v = scan.values[feature]
    sql = f"SELECT v FROM (SELECT {v} AS v FROM src{scan.where}) WHERE NOT isnan(v)"
    return np.asarray(_run_sql(scan, sql, scan.params)["v"].to_numpy(), dtype=np.float64)


def _moments(scan: Scan, feature: str) -> tuple[float, float]:
    v = scan.values[feature]
    ok = f"FILTER (WHERE NOT isnan({v}))"
    sql = f"SELECT avg({v}) {ok} AS m, stddev_pop({v}) {ok} AS s FROM src{scan.where}"
    row = _run_sql(scan, sql, scan.params).to_pylist()[0]
    return float(row["m"] or 0.0), float(row["s"] or 0.0)


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
        a, b = _values(r_scan, feature), _values(d_scan, feature)
        fn = drift_metrics.ks_pvalue if metric == "ks" else drift_metrics.wasserstein
        value = fn(a, b)
    elif metric == "mean_shift":
        r_scan, d_scan = scan_of[feature]
        (rm, rs), (dm, _ds) = _moments(r_scan, feature), _moments(d_scan, feature)
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
        "null_fraction_ref": nf_ref,
        "null_fraction_detect": nf_det,
    }


def _window_counts(
    scans_: list[Scan], edges: dict[str, list[float]]
) -> tuple[dict[str, FeatureCounts], dict[str, Scan]]:
    counts: dict[str, FeatureCounts] = {}
    scan_of: dict[str, Scan] = {}
    for s in scans_:
        counts.update(window_counts(s, {f: e for f, e in edges.items() if f in s.values}))
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
    ref_scans = scans(ctx, spec, spec.reference, kinds, now)
    opened += ref_scans
    edges: dict[str, list[float]] = {}
    for s in ref_scans:
        edges.update(bin_edges(s, [f for f in numeric if f in s.values]))
    ref, ref_scan_of = _window_counts(ref_scans, edges)
    _check_rows(spec, "reference", spec.reference, ref_scans, ref)
    det_scans = scans(ctx, spec, spec.detection, kinds, now)
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
    kinds = _kinds(ctx, spec)
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
            "webhook": None,
        }

    rec = ctx.registry.create_next(RUN_KIND, spec.name, body)
    result = rec.body
    if drifted and spec.webhook:
        delivery = _post_webhook(spec.webhook, result)
        result = {**result, "webhook": delivery}
        ctx.registry.update(RUN_KIND, spec.name, rec.version, result, revision=rec.revision)
    return result


def _describe(target: Window | int, now: datetime) -> dict[str, Any]:
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
        "type": "fti.drift_alert",
        "monitor": result["monitor"],
        "run": result["run"],
        "at": result["at"],
        "drifted": result["drifted"],
        "features": [r for r in result["features"] if r["drifted"]],
    }
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
