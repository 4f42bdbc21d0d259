"""Prometheus metrics in the text exposition format (version 0.0.4), kept in process.

Written here instead of pulling in a client library: counters, one latency histogram family and
gauges read at scrape time are all the server needs. Each uvicorn worker keeps its own numbers
(scrapes of a multi-worker server see one worker at a time, as with any per-process exporter).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable

__all__ = ["LATENCY_BUCKETS", "Metrics"]

# Seconds; fine at the low end where an in-process lookup lives.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


class Metrics:
    """Request counts, latency histograms, errors, dropped log rows and live gauges."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (route, method, status) -> count
        self._requests: dict[tuple[str, str, str], int] = {}
        # route -> (bucket counts, sum, count)
        self._latency: dict[str, tuple[list[int], float, int]] = {}
        # (route, error kind) -> count
        self._errors: dict[tuple[str, str], int] = {}
        self._predictions = 0
        self._log_dropped = 0
        self._gauges: dict[str, tuple[str, Callable[[], float]]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Record one finished request."""
        with self._lock:
            key = (route, method, str(status))
            self._requests[key] = self._requests.get(key, 0) + 1
            buckets, total, count = self._latency.get(route, ([0] * len(LATENCY_BUCKETS), 0.0, 0))
            i = bisect.bisect_left(LATENCY_BUCKETS, seconds)
            if i < len(buckets):
                buckets[i] += 1
            self._latency[route] = (buckets, total + seconds, count + 1)

    def error(self, route: str, kind: str) -> None:
        """Count an error response by its error class name."""
        with self._lock:
            self._errors[(route, kind)] = self._errors.get((route, kind), 0) + 1

    def predictions(self, n: int) -> None:
        with self._lock:
            self._predictions += n

    def log_dropped(self, n: int) -> None:
        """Count prediction-log rows dropped because the writer queue was full."""
        with self._lock:
            self._log_dropped += n

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """Register a gauge read at scrape time (e.g. the log queue depth)."""
        self._gauges[name] = (help_text, read)

    def snapshot_requests(self) -> dict[tuple[str, str, str], int]:
        with self._lock:
            return dict(self._requests)

    def render(self) -> str:
        """The text exposition format."""
        with self._lock:
            requests = sorted(self._requests.items())
            latency = sorted((k, (list(b), s, c)) for k, (b, s, c) in self._latency.items())
            errors = sorted(self._errors.items())
            predictions = self._predictions
            dropped = self._log_dropped
        out = [
            "# HELP fti_requests_total HTTP requests by route, method and status.",
            "# TYPE fti_requests_total counter",
        ]
        for (route, method, status), n in requests:
            labels = _labels((("route", route), ("method", method), ("status", status)))
            out.append(f"fti_requests_total{labels} {n}")
        out += [
            "# HELP fti_request_duration_seconds Request latency by route.",
            "# TYPE fti_request_duration_seconds histogram",
        ]
        for route, (buckets, total, count) in latency:
            running = 0
            for bound, n in zip(LATENCY_BUCKETS, buckets, strict=True):
                running += n
                labels = _labels((("route", route), ("le", repr(bound))))
                out.append(f"fti_request_duration_seconds_bucket{labels} {running}")
            labels = _labels((("route", route), ("le", "+Inf")))
            out.append(f"fti_request_duration_seconds_bucket{labels} {count}")
            out.append(f"fti_request_duration_seconds_sum{_labels((('route', route),))} {total!r}")
            out.append(f"fti_request_duration_seconds_count{_labels((('route', route),))} {count}")
        out += [
            "# HELP fti_errors_total Error responses by route and error kind.",
            "# TYPE fti_errors_total counter",
        ]
        for (route, kind), n in errors:
            out.append(f"fti_errors_total{_labels((('route', route), ('kind', kind)))} {n}")
        out += [
            "# HELP fti_predictions_total Predictions returned (one per entity).",
            "# TYPE fti_predictions_total counter",
            f"fti_predictions_total {predictions}",
            "# HELP fti_prediction_log_dropped_total Log rows dropped because the queue was full.",
            "# TYPE fti_prediction_log_dropped_total counter",
            f"fti_prediction_log_dropped_total {dropped}",
        ]
        for name, (help_text, read) in sorted(self._gauges.items()):
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {read()!r}"]
        return "\n".join(out) + "\n"
