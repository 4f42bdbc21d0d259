"""Training-serving skew: recompute logged feature vectors offline and compare them.

A logged prediction holds the untransformed features the server read from the online store
(on-demand features included) and the time it logged them. The check recomputes the same
features with the point-in-time join, at the request's time on *both* axes: event time <=
``logged_at`` and ingested at or before ``logged_at`` (``known_at``, the store as the request
saw it), so a late-arriving row written after the request is not a false alarm. Untransformed
values are compared (transformations are the same code on both paths and are tested there):
every feature is a *match*, a *mismatch* (both values kept), *missing online* (null in the log,
a value offline) or *missing offline* (the reverse). Floats match within a relative tolerance of
1e-9; NaN matches NaN; null matches null.

The logged time is taken after the online read, so a row written between the read and the log
line is counted as known: only a write to the same key racing the request can show up as skew.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from fti._internal.frames import from_arrow
from fti.errors import ValidationError
from fti.services import feature_views, model_registry, prediction_logs
from fti.services.context import StoreContext
from fti.services.training_data import point_in_time

__all__ = ["MATCH", "MISMATCH", "MISSING_OFFLINE", "MISSING_ONLINE", "SkewReport", "check"]

MATCH = "match"
MISMATCH = "mismatch"
MISSING_ONLINE = "missing_online"
MISSING_OFFLINE = "missing_offline"
STATUSES = (MATCH, MISMATCH, MISSING_ONLINE, MISSING_OFFLINE)
REL_TOL = 1e-9
_FINDING_FIELDS = (
    "request_id",
    "position",
    "logged_at",
    "feature",
    "status",
    "online",
    "offline",
)


@dataclass(frozen=True)
class SkewReport:
    """What a skew check found: counts per status overall and per feature, and every finding
    that is not a match (``findings``: one dict per request position and feature)."""

    model: str
    model_version: int | None
    feature_view: str
    feature_view_version: int
    start: datetime | None
    end: datetime | None
    logged: int  # logged rows in the window
    checked: int  # rows sampled and recomputed
    counts: dict[str, int]
    by_feature: dict[str, dict[str, int]]
    findings: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every compared value matched."""
        return not self.findings

    @property
    def requests(self) -> list[tuple[str, int]]:
        """``(request_id, position)`` of every checked row with at least one finding."""
        return sorted({(f["request_id"], f["position"]) for f in self.findings})

    def frame(self, format: str = "pandas") -> Any:
        """The findings as a frame; ``online``/``offline`` as JSON text (values of any type)."""
        cols: dict[str, list[Any]] = {n: [] for n in _FINDING_FIELDS}
        for f in self.findings:
            for n in _FINDING_FIELDS:
                v = f[n]
                cols[n].append(_json(v) if n in ("online", "offline") else v)
        table = pa.table(
            {
                "request_id": pa.array(cols["request_id"], pa.string()),
                "position": pa.array(cols["position"], pa.int32()),
                "logged_at": pa.array(cols["logged_at"], pa.timestamp("us", tz="UTC")),
                "feature": pa.array(cols["feature"], pa.string()),
                "status": pa.array(cols["status"], pa.string()),
                "online": pa.array(cols["online"], pa.string()),
                "offline": pa.array(cols["offline"], pa.string()),
            }
        )
        return from_arrow(table, format)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (findings included)."""
        return {
            "model": self.model,
            "model_version": self.model_version,
            "feature_view": self.feature_view,
            "feature_view_version": self.feature_view_version,
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
            "logged": self.logged,
            "checked": self.checked,
            "counts": dict(self.counts),
            "by_feature": {k: dict(v) for k, v in self.by_feature.items()},
            "findings": [
                {
                    **f,
                    "logged_at": f["logged_at"].isoformat(),
                    "online": _json(f["online"]),
                    "offline": _json(f["offline"]),
                }
                for f in self.findings
            ],
            "seconds": round(self.seconds, 3),
        }

    def __str__(self) -> str:
        c = self.counts
        head = (
            f"Skew check of model {self.model!r} over {self.checked} of {self.logged} logged "
            f"row(s): {c[MATCH]} match, {c[MISMATCH]} mismatch, {c[MISSING_ONLINE]} missing "
            f"online, {c[MISSING_OFFLINE]} missing offline"
        )
        return head + ("." if self.ok else f" in {len(self.requests)} request row(s).")


def _json(value: Any) -> str:
    return json.dumps(value, default=str, allow_nan=True)


def compare(online: Any, offline: Any) -> str:
    """The status of one logged (online) value against its recomputed (offline) value."""
    if online is None and offline is None:
        return MATCH
    if online is None:
        return MISSING_ONLINE
    if offline is None:
        return MISSING_OFFLINE
    if isinstance(offline, datetime) and isinstance(online, str):
        try:
            online = datetime.fromisoformat(online)
        except ValueError:
            return MISMATCH
    if isinstance(online, bool) or isinstance(offline, bool):
        return MATCH if online == offline else MISMATCH
    numbers = isinstance(online, int | float) and isinstance(offline, int | float)
    if numbers and (isinstance(online, float) or isinstance(offline, float)):
        a, b = float(online), float(offline)
        if math.isnan(a) or math.isnan(b):
            return MATCH if math.isnan(a) and math.isnan(b) else MISMATCH
        return MATCH if math.isclose(a, b, rel_tol=REL_TOL, abs_tol=0.0) else MISMATCH
    return MATCH if online == offline else MISMATCH


def check(
    ctx: StoreContext,
    name: str,
    *,
    version: int | None = None,
    sample: int | None = 1_000,
    start: datetime | None = None,
    end: datetime | None = None,
    seed: int = 0,
) -> SkewReport:
    """Recompute up to ``sample`` logged rows of model ``name`` (all if None) with
    ``start <= logged_at < end`` offline as known at their request time, and compare."""
    began = time.perf_counter()
    if sample is not None and (isinstance(sample, bool) or sample < 1):
        raise ValidationError(f"sample={sample!r} must be a positive number of requests or None.")
    spec = model_registry.get_spec(ctx, name, version)
    ref = spec.feature_view
    if ref is None:
        raise ValidationError(
            f"Model {name!r} version {spec.version} was registered without a feature view, so "
            "its inputs have no logged feature vectors to check. Register it with "
            "feature_view=fv."
        )
    fv = feature_views.get_spec(ctx, ref.name, ref.version)
    log: pa.Table = prediction_logs.read(
        ctx, ref.name, ref.version, start=start, end=end, model=name,
        model_version=version, expand=False, format="arrow",
    )  # fmt: skip
    logged = log.num_rows
    picked = list(range(logged))
    if sample is not None and logged > sample:
        picked = sorted(random.Random(seed).sample(picked, sample))  # noqa: S311 (a sample, not a secret)
        log = log.take(pa.array(picked, pa.int64()))
    counts = dict.fromkeys(STATUSES, 0)
    by_feature: dict[str, Counter[str]] = {}
    findings: list[dict[str, Any]] = []
    if log.num_rows:
        recomputed, logged_features = _recompute(ctx, fv, log)
        ids = log["request_id"].to_pylist()
        positions = log["position"].to_pylist()
        times = log["logged_at"].to_pylist()
        columns = {n: recomputed.column(n).to_pylist() for n in recomputed.column_names}
        for row, feats in enumerate(logged_features):
            for feature, online in feats.items():
                offline = columns[feature][row] if feature in columns else None
                status = compare(online, offline)
                counts[status] += 1
                by_feature.setdefault(feature, Counter())[status] += 1
                if status != MATCH:
                    findings.append(
                        {
                            "request_id": ids[row],
                            "position": positions[row],
                            "logged_at": times[row],
                            "feature": feature,
                            "status": status,
                            "online": online,
                            "offline": offline,
                        }
                    )
    return SkewReport(
        model=name,
        model_version=version,
        feature_view=ref.name,
        feature_view_version=ref.version,
        start=start,
        end=end,
        logged=logged,
        checked=log.num_rows,
        counts=counts,
        by_feature={f: {s: c[s] for s in STATUSES} for f, c in by_feature.items()},
        findings=findings,
        seconds=time.perf_counter() - began,
    )


def _recompute(ctx: StoreContext, fv: Any, log: pa.Table) -> tuple[pa.Table, list[dict[str, Any]]]:
    """The point-in-time features of every logged row, as known at its time, and the logged
    features decoded (same order)."""
    left = fv.query.left.group
    entities = [json.loads(s) for s in log["entity"].to_pylist()]
    requests = [json.loads(s) for s in log["request"].to_pylist()]
    features = [json.loads(s) for s in log["features"].to_pylist()]
    when = log["logged_at"]
    columns: dict[str, Any] = {}
    for key in left.primary_key:
        columns[key] = pa.array([e.get(key) for e in entities])
    taken = set(columns) | set(fv.features)
    time_column = left.event_time or "logged_at"
    if time_column in taken:
        raise ValidationError(
            f"Feature view {fv.name!r}: column {time_column!r} is both a key or feature and the "
            "request time of the skew check; rename the feature."
        )
    columns[time_column] = when
    params: list[str] = []
    for r in requests:
        params.extend(k for k in r if k not in params and k not in taken and k != time_column)
    for p in params:
        columns[p] = pa.array([r.get(p) for r in requests])
    spine = pa.table(columns)
    result = point_in_time(
        ctx,
        fv.query,
        spine=spine,
        columns=fv.feature_columns(),
        on_demand=fv.on_demand,
        known_at=time_column,
    )
    wanted = [n for n in fv.features if n in result.table.column_names]
    return result.table.select(wanted), features
