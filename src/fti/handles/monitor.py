"""``Monitor``: the handle returned by ``fs.monitor(...)``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa

from fti._internal.frames import from_arrow
from fti.definitions.monitors import MonitorSpec
from fti.services import monitoring
from fti.services.context import StoreContext

__all__ = ["Monitor"]

_HISTORY_COLUMNS = (
    "run",
    "at",
    "feature",
    "kind",
    "metric",
    "value",
    "threshold",
    "drifted",
    "n_ref",
    "n_detect",
    "null_fraction_ref",
    "null_fraction_detect",
)


class Monitor:
    """A drift or skew monitor: run it now, or read the runs stored so far.

    >>> mon = fs.monitor("amount_drift", feature_view=fv, features=["amount"], reference=td,
    ...                  detection=fti.window(last=timedelta(days=1)))       # doctest: +SKIP
    >>> mon.run()["alert"]                                                    # doctest: +SKIP
    >>> mon.history()                                                         # doctest: +SKIP
    >>> skew = fs.monitor("delays_skew", model="delays", metric="skew",
    ...                   detection=fti.window(last=timedelta(hours=1)))     # doctest: +SKIP
    >>> skew.run()["skew"]["findings_total"]                                  # doctest: +SKIP
    """

    def __init__(self, ctx: StoreContext, spec: MonitorSpec) -> None:
        self._ctx = ctx
        self._spec = spec

    @property
    def spec(self) -> MonitorSpec:
        """The frozen definition."""
        return self._spec

    @property
    def name(self) -> str:
        return self._spec.name

    def __repr__(self) -> str:
        s = self._spec
        return (
            f"Monitor({s.name!r}, {s.source_kind}={s.source_name!r} v{s.source_version}, "
            f"features={list(s.features)})"
        )

    def run(self, *, now: datetime | None = None) -> dict[str, Any]:
        """Compute drift now, store the run and return it: ``alert`` (any feature drifted),
        ``drifted`` (their names) and per feature ``metric``, ``value``, ``threshold``,
        ``drifted``, ``n_ref``, ``n_detect``, null fractions and ``approx`` (numeric bins
        from sketches). A skew monitor's run has per feature the counts per status (``value``:
        the share not matching) and ``skew``: requests checked and the findings. ``now``
        anchors relative windows (default: the current time)."""
        return monitoring.run(self._ctx, self._spec.name, now=now)

    def last_run(self) -> dict[str, Any] | None:
        """The latest stored run, or None before the first."""
        return monitoring.last_run(self._ctx, self._spec.name)

    def runs(self) -> list[dict[str, Any]]:
        """Every stored run (as returned by :meth:`run`), oldest first."""
        return monitoring.history(self._ctx, self._spec.name)

    def history(self, *, format: str = "pandas") -> Any:
        """One row per run and feature, oldest run first (pandas; ``format="polars"`` or
        ``"arrow"`` on request)."""
        rows = [
            {"run": r["run"], "at": datetime.fromisoformat(r["at"]), **f}
            for r in self.runs()
            for f in r["features"]
        ]
        schema = pa.schema(
            [
                ("run", pa.int64()),
                ("at", pa.timestamp("us", tz="UTC")),
                ("feature", pa.string()),
                ("kind", pa.string()),
                ("metric", pa.string()),
                ("value", pa.float64()),
                ("threshold", pa.float64()),
                ("drifted", pa.bool_()),
                ("n_ref", pa.int64()),
                ("n_detect", pa.int64()),
                ("null_fraction_ref", pa.float64()),
                ("null_fraction_detect", pa.float64()),
            ]
        )
        table = pa.Table.from_pylist(
            [{c: r.get(c) for c in _HISTORY_COLUMNS} for r in rows], schema=schema
        )
        return from_arrow(table, format)
