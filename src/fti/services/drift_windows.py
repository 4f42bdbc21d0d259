"""The data of a drift run: which rows a window selects (a training dataset's train split, a
time window of the feature groups, a prediction log) and their statistics, computed by DuckDB
over the Delta table's Arrow dataset -- one ``quantile_cont`` pass over the reference for the
bin edges, then one pass per window and table with a ``histogram()`` per feature.

A feature group's window is read from its per-commit profiles where they describe it exactly
(:mod:`fti.services.drift_sketches`): whole UTC days merged from sketches, only the partial days
at the window's edges scanned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from fti._internal.names import quote
from fti.backends.compute.duckdb import DuckDBEngine
from fti.definitions.feature_group import FeatureGroupSpec
from fti.definitions.monitors import CATEGORICAL_ONLY, NUMERIC_ONLY, MonitorSpec, Window
from fti.errors import ValidationError
from fti.services import drift_sketches, feature_groups, feature_views, training_datasets
from fti.services.context import StoreContext

__all__ = [
    "CATEGORICAL",
    "NUMERIC",
    "FeatureCounts",
    "Scan",
    "bin_edges",
    "connect",
    "kinds",
    "moments",
    "scans",
    "training_dataset",
    "values",
    "window_counts",
]

_DECILES = [i / 10 for i in range(1, 10)]
NUMERIC = frozenset({"int8", "int16", "int32", "int64", "float32", "float64"})
CATEGORICAL = frozenset({"string", "bool"})


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
    # the whole-day part of the window from the group's commit profiles (None: scan it all)
    sketch: drift_sketches.Sketched | None = None


def _kind_of(dtype: str, feature: str, where: str) -> str:
    if dtype in NUMERIC:
        return "numeric"
    if dtype in CATEGORICAL:
        return "categorical"
    raise ValidationError(
        f"Feature {feature!r} of {where} has dtype {dtype!r}; drift is measured on numeric "
        "(int/float) and categorical (string/bool) features. Remove it from features=."
    )


def _columns(ctx: StoreContext, spec: MonitorSpec) -> dict[str, tuple[FeatureGroupSpec, str]]:
    """feature -> (feature group it is stored in, column name there)."""
    assert spec.source_version is not None  # drift sources always have one (MonitorSpec)
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


def kinds(ctx: StoreContext, spec: MonitorSpec) -> dict[str, str]:
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


def training_dataset(ctx: StoreContext, spec: MonitorSpec, version: int) -> Any:
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
        td = training_dataset(ctx, spec, target)
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
        return [Scan(connect(ctx.compute, table), values, "", [], label)]
    bounds = target.bounds(now)
    if target.prediction_log:
        from fti.services import prediction_logs

        assert spec.source_version is not None
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
        found = _dataset(ctx, g)
        if found is None:
            return []
        return [Scan(connect(ctx.compute, found[0]), values, where, params, label)]
    out: list[Scan] = []
    by_group: dict[str, list[str]] = {}
    for f, (g, _c) in cols.items():
        by_group.setdefault(g.key, []).append(f)
    for fs_ in by_group.values():
        g = cols[fs_[0]][0]
        label = f"feature group {g.name!r} version {g.version}"
        where, params = _time_filter(g.event_time, bounds, label)
        found = _dataset(ctx, g)
        if found is None:
            continue
        data, version = found
        values = {f: _value_expr(cols[f][1], kinds[f]) for f in fs_}
        sketch = None
        if where:  # a window (a whole table has no days to merge: the scan is one pass anyway)
            columns = {f: cols[f][1] for f in fs_}
            sketch = drift_sketches.plan(ctx, g, version, data.count_rows(), columns, kinds, bounds)
        con = connect(ctx.compute, data)
        if sketch is not None and sketch.partial:
            con.register("part", sketch.partial_of(data))
        out.append(Scan(con, values, where, params, label, sketch))
    return out


def _sql_string(text: str) -> str:
    # JSON paths are built from validated identifiers; quoting keeps it a literal regardless.
    return "'" + text.replace("'", "''") + "'"


def _dataset(ctx: StoreContext, g: FeatureGroupSpec) -> tuple[Any, int] | None:
    if not g.has_schema or not ctx.offline.exists(g.key):
        return None
    data, version = ctx.offline.dataset(g.key)
    return data, version


# ---------------------------------------------------------------------------- statistics
@dataclass
class FeatureCounts:
    """A feature's histogram in one window: rows, nulls, counts per bin (numeric: index into
    the reference's bins) or per category."""

    rows: int = 0
    nulls: int = 0
    counts: dict[Any, int] = field(default_factory=dict)
    approx: bool = False  # numeric bins counted from a KLL sketch (drift_sketches.BIN_ERROR)

    @property
    def present(self) -> int:
        return self.rows - self.nulls


def _run_sql(scan: Scan, sql: str, params: list[Any]) -> pa.Table:
    return scan.con.sql(sql, params=params).to_arrow_table()


def connect(engine: DuckDBEngine, data: Any) -> duckdb.DuckDBPyConnection:
    """A cursor of the store's DuckDB (``ctx.compute``) for one scan, with ``data`` (Arrow)
    registered as ``src`` (the caller closes it)."""
    con = engine.cursor()
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
    if scan.sketch is not None:
        return _sketch_edges(scan, scan.sketch, features)
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


def _sketch_edges(
    scan: Scan, sketch: drift_sketches.Sketched, features: Sequence[str]
) -> dict[str, list[float]]:
    """Deciles of the merged KLL sketches of the whole days and the partial days' values."""
    extra: dict[str, np.ndarray] = {}
    if sketch.partial:  # the partial days' values of every feature, one pass
        items = ", ".join(f"{scan.values[f]} AS v{i}" for i, f in enumerate(features))
        part = _run_sql(scan, f"SELECT {items} FROM part", [])
        for i, f in enumerate(features):
            v = np.asarray(part[f"v{i}"].to_numpy(), dtype=np.float64)
            extra[f] = v[np.isfinite(v)]  # nulls arrive as NaN
    out: dict[str, list[float]] = {}
    for f in features:
        kll = drift_sketches.merged_kll(sketch.profiles.get(f), extra.get(f, np.empty(0)))
        q = [] if kll.is_empty() else kll.get_quantiles(_DECILES)
        out[f] = sorted({float(x) for x in q if math.isfinite(x)})
    return out


def window_counts(scan: Scan, edges: dict[str, list[float]]) -> dict[str, FeatureCounts]:
    """Every feature's histogram: numeric features (those in ``edges``) counted per bin, the
    others per value; nulls (and NaN) apart. One pass over the window, or, where the scan
    carries a sketch, the whole days from it and one pass over the partial days."""
    if scan.sketch is None:
        return _scan_counts(scan, edges, scan.where, scan.params)
    sk = scan.sketch
    out = (
        _scan_counts(scan, edges, "", [], table="part")
        if sk.partial
        else {f: FeatureCounts() for f in scan.values}
    )
    for f, c in out.items():
        numeric = f in edges
        kind = "numeric" if numeric else "categorical"
        present, counts = drift_sketches.bin_counts(sk.profiles.get(f), kind, edges.get(f))
        c.rows += sk.rows
        c.nulls += sk.rows - present
        for k, n in counts.items():
            c.counts[k] = c.counts.get(k, 0) + n
        c.approx = numeric
    return out


def _scan_counts(
    scan: Scan, edges: dict[str, list[float]], where: str, params: list[Any], table: str = "src"
) -> dict[str, FeatureCounts]:
    feats = list(scan.values)
    items = ["count(*) AS n"]
    for i, f in enumerate(feats):
        v = scan.values[f]
        key = _bin_expr(v, edges[f]) if f in edges else v
        items += [f"histogram({key}) AS h{i}", f"count({v}) AS c{i}"]
        if f in edges:
            items.append(f"count(*) FILTER (WHERE isnan({v})) AS nan{i}")
    sql = f"SELECT {', '.join(items)} FROM {table}{where}"
    row = _run_sql(scan, sql, params).to_pylist()[0]
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


def values(scan: Scan, feature: str) -> np.ndarray:
    v = scan.values[feature]
    sql = f"SELECT v FROM (SELECT {v} AS v FROM src{scan.where}) WHERE NOT isnan(v)"
    return np.asarray(_run_sql(scan, sql, scan.params)["v"].to_numpy(), dtype=np.float64)


def moments(scan: Scan, feature: str) -> tuple[float, float]:
    v = scan.values[feature]
    ok = f"FILTER (WHERE NOT isnan({v}))"
    sql = f"SELECT avg({v}) {ok} AS m, stddev_pop({v}) {ok} AS s FROM src{scan.where}"
    row = _run_sql(scan, sql, scan.params).to_pylist()[0]
    return float(row["m"] or 0.0), float(row["s"] or 0.0)
