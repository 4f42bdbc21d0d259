"""Monitors: frozen, validated specs of a drift or skew check.

A drift monitor compares the distribution of some features in a *reference* (a training
dataset's train split, or a time window of the source) with a *detection* window (of the source,
or of a feature view's prediction log) using one metric per feature. A skew monitor
(``metric="skew"``, source a model) runs the training-serving skew check over the model's
requests logged in the detection window.

>>> fti.window(last=timedelta(days=1))                                      # doctest: +SKIP
>>> fti.window(start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime(2026, 2, 1, tzinfo=UTC))
... # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from croniter import croniter

from fti._internal.names import check_identifier, check_unique
from fti.errors import ValidationError

__all__ = [
    "DEFAULT_THRESHOLDS",
    "METRICS",
    "SKEW",
    "SKEW_SAMPLE",
    "SMALL_WINDOW",
    "MonitorSpec",
    "Window",
    "window",
]

#: Below this many non-null values in either window, ``metric="auto"`` switches to a test
#: (KS for numeric, chi-square for categorical): binned distances are noisy on small samples,
#: and a p-value accounts for the sample size.
SMALL_WINDOW = 1_000

#: metric -> (default threshold, direction). "above": drifted when value > threshold;
#: "below": drifted when value < threshold (p-values).
DEFAULT_THRESHOLDS: Mapping[str, tuple[float, str]] = {
    "psi": (0.2, "above"),
    "js": (0.1, "above"),
    "hellinger": (0.1, "above"),
    "ks": (0.05, "below"),
    "chi2": (0.05, "below"),
    "wasserstein": (0.1, "above"),
    "mean_shift": (0.1, "above"),
    "null_fraction": (0.05, "above"),
    # the fraction of a feature's checked values that are not a match (skew monitors only)
    "skew": (0.0, "above"),
}
METRICS = ("auto", *DEFAULT_THRESHOLDS)
#: Metrics that need numbers (``chi2`` needs categories; the others work on both: numeric
#: features are binned at the reference's deciles).
NUMERIC_ONLY = frozenset({"ks", "wasserstein", "mean_shift"})
CATEGORICAL_ONLY = frozenset({"chi2"})
SKEW = "skew"
#: Requests a skew monitor checks per run unless ``sample=`` says otherwise.
SKEW_SAMPLE = 1_000


def _aware(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(
            f"{what}={value!r} must be a timezone-aware datetime, e.g. "
            "datetime(2026, 1, 1, tzinfo=timezone.utc)."
        )
    return value.astimezone(UTC)


@dataclass(frozen=True)
class Window:
    """A time range of a source: absolute (``start``/``end``, either open) or relative to the
    run (``last``: the ``last`` before now). ``prediction_log=True`` reads a feature view's
    prediction log instead of its feature groups (optionally one ``model``'s predictions)."""

    start: datetime | None = None
    end: datetime | None = None
    last: timedelta | None = None
    prediction_log: bool = False
    model: str | None = None

    def __post_init__(self) -> None:
        _aware(self.start, "start")
        _aware(self.end, "end")
        if self.last is not None:
            if self.start is not None or self.end is not None:
                raise ValidationError(
                    "Pass window(last=...) or window(start=..., end=...), not both."
                )
            if not isinstance(self.last, timedelta) or self.last <= timedelta(0):
                raise ValidationError(
                    f"The 'last' parameter must be a timedelta > 0. Got {self.last!r} instead."
                )
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValidationError(
                f"Window start {self.start.isoformat()} is not before end "
                f"{self.end.isoformat()}. Swap them or widen the window."
            )
        if self.model is not None:
            if not self.prediction_log:
                raise ValidationError(
                    f"window(model={self.model!r}) filters a prediction log; add "
                    "prediction_log=True."
                )
            check_identifier(self.model, what="model")

    def bounds(self, now: datetime) -> tuple[datetime | None, datetime | None]:
        """``(start, end)`` of this window for a run at ``now`` (``end`` exclusive)."""
        if self.last is not None:
            return now - self.last, now
        return self.start, self.end

    def describe(self) -> str:
        what = "prediction log" + (f" of {self.model}" if self.model else "")
        what = what if self.prediction_log else "window"
        if self.last is not None:
            return f"{what} last {self.last}"
        s = self.start.isoformat() if self.start else "-inf"
        e = self.end.isoformat() if self.end else "+inf"
        return f"{what} [{s}, {e})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "window",
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "last_seconds": self.last.total_seconds() if self.last is not None else None,
            "prediction_log": self.prediction_log,
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Window:
        last = d.get("last_seconds")
        return cls(
            start=datetime.fromisoformat(d["start"]) if d.get("start") else None,
            end=datetime.fromisoformat(d["end"]) if d.get("end") else None,
            last=timedelta(seconds=float(last)) if last is not None else None,
            prediction_log=bool(d.get("prediction_log", False)),
            model=d.get("model"),
        )


def window(
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    last: timedelta | None = None,
    prediction_log: bool = False,
    model: str | None = None,
) -> Window:
    """A time window for a monitor's reference or detection data.

    >>> fti.window(last=timedelta(days=1))                     # the day before each run
    ... # doctest: +SKIP
    >>> fti.window(last=timedelta(hours=1), prediction_log=True, model="delays")
    ... # doctest: +SKIP
    """
    return Window(start=start, end=end, last=last, prediction_log=prediction_log, model=model)


@dataclass(frozen=True)
class MonitorSpec:
    """A stored drift or skew monitor.

    ``source`` is ``("feature_group" | "feature_view" | "model", name, version)`` (a model's
    version None: every version); ``reference`` a :class:`Window` or the version (int) of a
    training dataset of the source feature view (None for a skew monitor); ``threshold`` None
    means the metric's default (:data:`DEFAULT_THRESHOLDS`); ``sample`` the requests a skew
    monitor checks per run (None: all in the window).
    """

    name: str
    source_kind: str
    source_name: str
    source_version: int | None
    features: tuple[str, ...]
    reference: Window | int | None
    detection: Window
    metric: str = "auto"
    threshold: float | None = None
    schedule: str | None = None
    webhook: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    sample: int | None = SKEW_SAMPLE

    @property
    def is_skew(self) -> bool:
        """True for a training-serving skew monitor (``metric="skew"`` on a model)."""
        return self.metric == SKEW

    def __post_init__(self) -> None:
        check_identifier(self.name, what="monitor")
        if self.source_kind not in ("feature_group", "feature_view", "model"):
            raise ValidationError(
                f"Monitor source kind {self.source_kind!r} is unknown; expected "
                "'feature_group', 'feature_view' or 'model'."
            )
        if (self.source_kind == "model") != self.is_skew:
            raise ValidationError(
                f"Monitor {self.name!r}: metric='skew' checks a model's logged requests and a "
                "model is monitored by metric='skew' only. Pass model='name' with "
                "metric='skew', or feature_view=/feature_group= with a drift metric."
            )
        if self.source_version is None and self.source_kind != "model":
            raise ValidationError(f"Monitor {self.name!r} needs the source's version.")
        if self.is_skew:
            self._check_skew()
        if not self.features:
            raise ValidationError(
                f"Monitor {self.name!r} has no features. Pass features=['amount', ...]."
            )
        for f in self.features:
            check_identifier(f, what="feature")
        check_unique(self.features, what="feature")
        if self.metric not in METRICS:
            raise ValidationError(
                f"Unknown drift metric {self.metric!r}. Choose one of {list(METRICS)}."
            )
        if self.threshold is not None and (
            isinstance(self.threshold, bool)
            or not isinstance(self.threshold, int | float)
            or not math.isfinite(self.threshold)
            or self.threshold < 0
        ):
            raise ValidationError(
                f"The 'threshold' parameter must be a finite number >= 0 or None. Got "
                f"{self.threshold!r} instead."
            )
        if self.threshold is not None and self.metric == "auto":
            raise ValidationError(
                f"threshold={self.threshold!r} needs a metric: with metric='auto' each feature "
                "uses its metric's default. Pass metric='psi' (or another) with the threshold."
            )
        if self.is_skew:
            pass
        elif isinstance(self.reference, bool) or not isinstance(self.reference, Window | int):
            raise ValidationError(
                f"reference={self.reference!r} must be a training dataset or fti.window(...)."
            )
        if isinstance(self.reference, Window) and self.reference.prediction_log:
            raise ValidationError(
                "A prediction log cannot be the reference; use a training dataset or a window "
                "of the source."
            )
        if not isinstance(self.detection, Window):
            raise ValidationError(
                f"detection={self.detection!r} must be fti.window(...), e.g. "
                "fti.window(last=timedelta(days=1))."
            )
        if self.detection.prediction_log and self.source_kind != "feature_view":
            raise ValidationError(
                "Only a feature view has a prediction log: pass feature_view=fv to monitor its "
                "logged requests."
            )
        if self.schedule is not None and not croniter.is_valid(self.schedule):
            raise ValidationError(
                f"Invalid cron expression {self.schedule!r}. Use five fields: minute hour day "
                "month weekday, e.g. '0 * * * *' (hourly)."
            )
        if self.webhook is not None:
            parts = urlsplit(self.webhook)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValidationError(
                    f"webhook={self.webhook!r} is not an http(s) URL. Pass e.g. "
                    "'https://hooks.example.com/fti'."
                )
            if parts.username or parts.password:
                raise ValidationError(
                    "The webhook URL must not contain credentials (user:password@); they would "
                    "be stored in the registry. Use a URL with a secret path or token instead."
                )

    def _check_skew(self) -> None:
        if self.reference is not None:
            raise ValidationError(
                f"Monitor {self.name!r}: a skew monitor compares each logged request with the "
                "offline store as known at its time; it takes no reference=. Remove it."
            )
        if isinstance(self.detection, Window) and self.detection.model is not None:
            raise ValidationError(
                f"Monitor {self.name!r}: the monitored model is model=; pass "
                "detection=fti.window(...) without model=."
            )
        if self.sample is not None and (
            isinstance(self.sample, bool) or not isinstance(self.sample, int) or self.sample < 1
        ):
            raise ValidationError(
                f"The 'sample' parameter must be a positive number of requests or None (all). "
                f"Got {self.sample!r} instead."
            )

    def public_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` with the webhook cut to its scheme and host: a webhook URL often
        carries a secret in its path (Slack, Teams), so it is never printed."""
        d = self.to_dict()
        if self.webhook is not None:
            parts = urlsplit(self.webhook)
            d["webhook"] = f"{parts.scheme}://{parts.netloc}/..."
        return d

    def threshold_for(self, metric: str) -> float:
        if self.threshold is not None and metric == self.metric:
            return float(self.threshold)
        return DEFAULT_THRESHOLDS[metric][0]

    def definition(self) -> dict[str, Any]:
        """The parts that make two monitors the same (everything but the creation date)."""
        ref = self.reference
        out = {
            "source": {
                "kind": self.source_kind,
                "name": self.source_name,
                "version": self.source_version,
            },
            "features": list(self.features),
            "reference": ref.to_dict()
            if isinstance(ref, Window)
            else None
            if ref is None
            else {"kind": "training_dataset", "version": ref},
            "detection": self.detection.to_dict(),
            "metric": self.metric,
            "threshold": self.threshold,
            "schedule": self.schedule,
            "webhook": self.webhook,
        }
        if self.is_skew:  # drift monitors' stored bodies stay as they were
            out["sample"] = self.sample
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.definition(), "created_at": self.created_at.isoformat()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MonitorSpec:
        ref = d["reference"]
        version = d["source"]["version"]
        return cls(
            name=str(d["name"]),
            source_kind=str(d["source"]["kind"]),
            source_name=str(d["source"]["name"]),
            source_version=None if version is None else int(version),
            features=tuple(d["features"]),
            reference=None
            if ref is None
            else int(ref["version"])
            if ref["kind"] == "training_dataset"
            else Window.from_dict(ref),
            detection=Window.from_dict(d["detection"]),
            metric=str(d.get("metric", "auto")),
            threshold=d.get("threshold"),
            schedule=d.get("schedule"),
            webhook=d.get("webhook"),
            created_at=datetime.fromisoformat(d["created_at"]),
            sample=d.get("sample", SKEW_SAMPLE),
        )


def features_tuple(features: Sequence[str] | str | None, name: str) -> tuple[str, ...]:
    """Normalize a ``features=`` argument (a list of names)."""
    if isinstance(features, str):
        return (features,)
    if not features:
        raise ValidationError(f"Monitor {name!r} needs features=['amount', ...] to watch.")
    return tuple(features)
