"""Live model metrics: a model's prediction logs joined to its outcomes, per time bucket.

One DuckDB statement reads the log tables of every feature view version the model's versions
were registered with (rows of this model only), joins the latest outcome of each prediction by
``(request_id, position)``, buckets by ``logged_at`` with ``time_bucket`` and computes, per
bucket, the counts and the metrics of the task:

- classifier (the log has positive-class probabilities): ROC AUC by the Mann-Whitney U
  statistic with average ranks for ties; log loss with probabilities clipped to
  ``[eps, 1 - eps]`` (``eps`` = float64 machine epsilon, as scikit-learn); accuracy of the
  logged prediction (or ``probability >= 0.5`` where none was logged); expected calibration
  error over 10 equal-width probability bins ``[i/10, (i+1)/10)`` (1.0 in the last):
  ``sum_b |sum(y) - sum(p)| / n``. Labels must be 0/1 (or booleans).
- regressor: MAE and RMSE of the logged prediction.

Buckets whose end lies within ``label_delay`` of now are ``pending``: counted, not scored
(their labels cannot all have arrived). The registered metrics of the model version that
served last in a bucket sit next to the live ones as ``test_<metric>`` columns (the registered
``test_<metric>``, else ``<metric>``: the training dataset's test metrics).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from fti._internal.frames import from_arrow
from fti._internal.names import quote
from fti.backends.offline import SEQ
from fti.errors import ValidationError
from fti.services import model_registry, outcomes, prediction_logs
from fti.services.context import StoreContext

__all__ = ["CLASSIFIER_METRICS", "REGRESSOR_METRICS", "parse_every", "performance"]

CLASSIFIER_METRICS = ("auc", "log_loss", "accuracy", "calibration_error")
REGRESSOR_METRICS = ("mae", "rmse")
_EPS = 2.220446049250313e-16  # numpy.finfo(float64).eps, scikit-learn's log_loss clip
_TASKS = ("auto", "classifier", "regressor")


def parse_every(every: str | timedelta) -> timedelta:
    """``"1D"``, ``"7D"``, ``"1W"``, ``"6h"``, ``"30min"`` or a timedelta, > 0."""
    if isinstance(every, timedelta):
        delta = every
    else:
        import pandas as pd

        try:
            delta = pd.Timedelta(str(every)).to_pytimedelta()
        except (ValueError, TypeError):
            delta = timedelta(0)
    if delta <= timedelta(0):
        raise ValidationError(
            f"every={every!r} is not a bucket width: pass e.g. '1D', '7D', '1W', '6h', "
            "'30min' or a positive timedelta."
        )
    return delta


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
        raise ValidationError(
            f"{name}={value!r} must be a timezone-aware datetime, e.g. "
            "datetime(2026, 1, 1, tzinfo=UTC)."
        )


def _sql(log_sql: str, label: str, filters: list[str]) -> str:
    """The statement (named parameters: every, origin, model and the filters' values)."""
    where = " AND ".join(["l.model_name = $model", *filters])
    pred = (
        "CASE l.prediction WHEN 'true' THEN 1.0 WHEN 'false' THEN 0.0 "
        "ELSE TRY_CAST(l.prediction AS DOUBLE) END"
    )
    clip = f"greatest(least(p, {1 - _EPS!r}), {_EPS!r})"
    return f"""
    WITH oc AS (
        SELECT request_id, position, CAST({quote(label)} AS DOUBLE) AS y FROM _outcomes
        QUALIFY row_number() OVER (PARTITION BY request_id, position ORDER BY {quote(SEQ)} DESC) = 1
    ),
    j AS (
        SELECT time_bucket($every, l.logged_at, $origin) AS b, l.model_version AS mv,
               l.probability AS p, coalesce({pred}, CASE WHEN l.probability >= 0.5 THEN 1.0
                   WHEN l.probability < 0.5 THEN 0.0 END) AS yhat, oc.y AS y
        FROM {log_sql} l LEFT JOIN oc USING (request_id, position)
        WHERE {where}
    ),
    agg AS (
        SELECT b, max(mv) AS model_version, count(*) AS predictions, count(y) AS labelled,
            count(p) AS with_probability,
            count_if(y IS NOT NULL AND y <> 0 AND y <> 1) AS non_binary,
            avg(CASE WHEN y IS NOT NULL AND yhat IS NOT NULL THEN (yhat = y)::DOUBLE END)
                AS accuracy,
            -avg(y * ln({clip}) + (1 - y) * ln(1 - {clip})) AS log_loss,
            avg(abs(yhat - y)) AS mae,
            sqrt(avg((yhat - y) * (yhat - y))) AS rmse
        FROM j GROUP BY b
    ),
    scored AS (SELECT b, y, p FROM j WHERE y IS NOT NULL AND p IS NOT NULL),
    ranked AS (
        SELECT b, y, rank() OVER (PARTITION BY b ORDER BY p)
               + (count(*) OVER (PARTITION BY b, p) - 1) / 2.0 AS r
        FROM scored
    ),
    auc AS (
        SELECT b, (sum(CASE WHEN y = 1 THEN r END)
                   - count_if(y = 1)::DOUBLE * (count_if(y = 1) + 1) / 2)
               / nullif(count_if(y = 1)::DOUBLE * count_if(y = 0), 0) AS auc
        FROM ranked GROUP BY b
    ),
    bins AS (
        SELECT b, sum(y) - sum(p) AS gap, count(*) AS n FROM scored
        GROUP BY b, least(floor(p * 10), 9)
    ),
    cal AS (SELECT b, sum(abs(gap)) / sum(n) AS calibration_error FROM bins GROUP BY b)
    SELECT agg.b AS bucket_start, agg.b + $every AS bucket_end, agg.* EXCLUDE (b),
           auc.auc, cal.calibration_error
    FROM agg LEFT JOIN auc USING (b) LEFT JOIN cal USING (b)
    ORDER BY bucket_start
    """


def performance(
    ctx: StoreContext,
    model: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    every: str | timedelta = "1D",
    label_delay: timedelta | None = None,
    version: int | None = None,
    label: str | None = None,
    task: str = "auto",
    format: str = "pandas",
) -> Any:
    """Per bucket of ``logged_at`` (``start <= logged_at < end``; buckets start at ``start``,
    else at 2000-01-03, a Monday): bucket_start, bucket_end, model_version (the latest that
    served in the bucket), predictions, labelled, coverage, pending, the task's metrics and
    ``test_<metric>`` (that model version's registered ``test_<metric>``, else ``<metric>``)."""
    _aware("start", start)
    _aware("end", end)
    if task not in _TASKS:
        raise ValidationError(f"task={task!r} is not understood: use one of {list(_TASKS)}.")
    if label_delay is not None and (
        not isinstance(label_delay, timedelta) or label_delay < timedelta(0)
    ):
        raise ValidationError(
            f"label_delay={label_delay!r} must be a timedelta >= 0, e.g. timedelta(days=1)."
        )
    width = parse_every(every)
    specs = (
        [model_registry.get_spec(ctx, model, version)]
        if version is not None
        else model_registry.list_specs(ctx, model, include_deprecated=True)
    )
    if not specs:
        model_registry.get_spec(ctx, model)  # the "does not exist" error
    logs = prediction_logs.model_logs(ctx, model, version)
    out_spec = outcomes.outcomes_spec(ctx, model)
    labels = outcomes.label_columns(out_spec) if out_spec is not None else []
    if label is None:
        if len(labels) > 1:
            raise ValidationError(
                f"The outcomes of model {model!r} have several label columns {labels}: pick "
                "one with label=..."
            )
        label = labels[0] if labels else "_fti_no_label"
    elif label not in labels:
        raise ValidationError(
            f"Model {model!r} has no outcome column {label!r}. Logged outcome columns: {labels}."
        )
    params: dict[str, Any] = {
        "every": width,
        "origin": start or datetime(2000, 1, 3, tzinfo=UTC),
        "model": model,
    }
    filters = []
    if start is not None:
        filters.append("l.logged_at >= $start")
        params["start"] = start
    if end is not None:
        filters.append("l.logged_at < $end")
        params["end"] = end
    if version is not None:
        filters.append("l.model_version = $version")
        params["version"] = version
    con = ctx.compute.cursor()
    try:
        con.execute("SET TimeZone = 'UTC'")
        log_sql = prediction_logs.register_logs(con, ctx, logs)
        if out_spec is not None and ctx.offline.exists(out_spec.key):
            dataset, _ = ctx.offline.dataset(out_spec.key)
            con.register("_outcomes", dataset)
        else:
            con.execute(
                f"CREATE TEMP TABLE _outcomes (request_id VARCHAR, position INTEGER, "
                f"{quote(label)} DOUBLE, {quote(SEQ)} BIGINT)"
            )
        table = con.sql(_sql(log_sql, label, filters), params=params).to_arrow_table()
    finally:
        con.close()
    return from_arrow(_finish(table, specs, task, label, label_delay), format)


def _finish(
    table: pa.Table,
    specs: list[Any],
    task: str,
    label: str,
    label_delay: timedelta | None,
) -> pa.Table:
    if task == "auto":
        task = "classifier" if pc.sum(table["with_probability"]).as_py() else "regressor"
    if task == "classifier" and pc.sum(table["non_binary"]).as_py():
        raise ValidationError(
            f"Outcome column {label!r} holds values other than 0 and 1, so classifier metrics "
            "cannot be computed; pass task='regressor' for a numeric target."
        )
    metrics = CLASSIFIER_METRICS if task == "classifier" else REGRESSOR_METRICS
    n = table.num_rows
    cutoff = None if label_delay is None else datetime.now(UTC) - label_delay
    ends = table["bucket_end"].to_pylist()
    pending = [cutoff is not None and e > cutoff for e in ends]
    predictions = table["predictions"]
    labelled = table["labelled"]
    coverage = pc.divide(pc.cast(labelled, pa.float64()), pc.cast(predictions, pa.float64()))
    cols: dict[str, Any] = {
        "bucket_start": table["bucket_start"],
        "bucket_end": table["bucket_end"],
        "model_version": table["model_version"],
        "predictions": predictions,
        "labelled": labelled,
        "coverage": coverage,
        "pending": pa.array(pending, pa.bool_()),
    }
    mask = pa.array(pending, pa.bool_())
    for m in metrics:
        values = pc.cast(table[m], pa.float64())
        cols[m] = pc.if_else(mask, pa.scalar(None, pa.float64()), values)
    registered = {s.version: dict(s.metrics) for s in specs}
    versions = table["model_version"].to_pylist()
    for m in metrics:
        # The training dataset's test metric as registered: "test_<m>", else "<m>".
        found = [_registered(r, m) for r in registered.values()]
        if any(v is not None for v in found):
            cols[f"test_{m}"] = pa.array(
                [_registered(registered.get(v, {}), m) for v in versions], pa.float64()
            )
    if n == 0:
        return pa.table({k: pa.array([], v.type) for k, v in cols.items()})
    return pa.table(cols)


def _registered(metrics: dict[str, float], name: str) -> float | None:
    value = metrics.get(f"test_{name}", metrics.get(name))
    return None if value is None else float(value)
