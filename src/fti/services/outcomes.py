"""Outcomes (delayed labels) of a model's predictions: the ``<model>_outcomes`` feature group.

One group per model (version 1, all model versions share it), written by ``log_outcomes``:

- primary key: the entity keys of the logged prediction (as the view's serving keys);
- event time ``predicted_at``: the time of the prediction the outcome belongs to (its
  ``logged_at``), so a feature view that joins this group by the entity keys gets, for a spine
  row ``(key, predicted_at)``, exactly that prediction's outcome with an ordinary
  point-in-time join (the feedback loop: logged requests + outcomes -> training data);
- ``request_id``, ``position``: the logged prediction (``performance`` joins on them);
- ``outcome_time``: when the outcome became known (default: now);
- the label column(s) the caller passed.

Two ways to attach outcomes:

- by ``request_id`` (and ``position`` when a request predicted several entities): exact;
- by the entity keys and ``outcome_time``: a prediction for key ``k`` logged at ``p`` is
  labelled by the *earliest* outcome for ``k`` with ``outcome_time >= p``, among the outcomes
  of this call and those stored before (so each outcome labels the predictions made since the
  previous outcome of its key, up to its own time, like a churn or default event closing the
  predictions that preceded it). A later call with an earlier outcome relabels the predictions
  it now closes (a correction: the latest ingested row wins).

Outcomes that match no logged prediction (unknown request ids; a key without a prediction
before its time) are an error by default, with nothing written; ``on_unknown="skip"`` writes
the matched ones and reports the others in :class:`OutcomeReport`. Request ids must have been
logged first: the model server writes its log every few seconds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from fti._internal.frames import to_arrow
from fti._internal.names import check_identifier, quote
from fti.definitions.feature_group import FeatureGroupSpec
from fti.errors import NotFoundError, ValidationError
from fti.services import feature_groups, ingestion, model_registry, prediction_logs
from fti.services.context import StoreContext

__all__ = ["FIXED", "OutcomeReport", "group_name", "label_columns", "log", "outcomes_spec"]

FIXED = ("predicted_at", "request_id", "position", "outcome_time")
_UNKNOWN = ("error", "skip")


@dataclass(frozen=True)
class OutcomeReport:
    """What ``log_outcomes`` did: rows written to the outcomes group, and the outcomes that
    matched no logged prediction (request ids, or ``{key: value}`` of entity-key outcomes)."""

    model: str
    rows: int
    table_version: int | None
    unknown: list[Any] = field(default_factory=list)

    def __str__(self) -> str:
        skipped = f"; {len(self.unknown)} matched no prediction" if self.unknown else ""
        return f"{self.rows} outcome row(s) written for model {self.model!r}{skipped}"


def group_name(model: str) -> str:
    return f"{model}_outcomes"


def outcomes_spec(ctx: StoreContext, model: str) -> FeatureGroupSpec | None:
    """The outcomes group of a model (None until outcomes were logged)."""
    try:
        return feature_groups.get_spec(ctx, group_name(model), 1, warn=False)
    except NotFoundError:
        return None


def label_columns(spec: FeatureGroupSpec) -> list[str]:
    """The label columns of an outcomes group (every column but keys and fixed ones)."""
    return [n for n in spec.column_names if n not in FIXED and n not in spec.primary_key]


def log(
    ctx: StoreContext,
    model: str,
    data: Any,
    *,
    on_unknown: str = "error",
    outcome_time: datetime | None = None,
) -> OutcomeReport:
    """Attach outcomes to logged predictions of ``model`` (see the module docstring)."""
    model_registry.get_spec(ctx, model)  # a clear error for an unknown model
    if on_unknown not in _UNKNOWN:
        raise ValidationError(
            f"on_unknown={on_unknown!r} is not understood: use 'error' (default: nothing is "
            "written if an outcome matches no logged prediction) or 'skip'."
        )
    table = to_arrow(data, what="the outcomes")
    if table.num_rows == 0:
        raise ValidationError("The outcomes frame is empty: nothing to log. Nothing was written.")
    for n in table.column_names:
        check_identifier(n)
    logs = prediction_logs.model_logs(ctx, model)
    if not logs:
        raise ValidationError(
            f"Model {model!r} has no logged predictions yet, so outcomes cannot be attached "
            "(`fti serve --model` logs online predictions, fs.models.log_predictions batch ones). "
            "Nothing was written."
        )
    now = outcome_time or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValidationError(
            f"outcome_time={now!r} must be timezone-aware, e.g. datetime(..., tzinfo=UTC)."
        )
    con = ctx.compute.cursor()
    try:
        con.execute("SET TimeZone = 'UTC'")
        log_sql = prediction_logs.register_logs(con, ctx, logs)
        if "request_id" in table.column_names:
            matched, unknown = _by_request(con, log_sql, model, table, now)
        else:
            matched, unknown = _by_key(ctx, con, log_sql, model, table)
    finally:
        con.close()
    if unknown and on_unknown == "error":
        raise ValidationError(
            f"{len(unknown)} outcome(s) match no logged prediction of model {model!r}, e.g. "
            f"{unknown[:5]}. Check the ids/keys, wait for the log to be written (the server "
            "flushes every few seconds), or pass on_unknown='skip'. Nothing was written."
        )
    if matched.num_rows == 0:
        return OutcomeReport(model, 0, None, unknown)
    spec = outcomes_spec(ctx, model)
    if spec is None:
        spec = feature_groups.get_or_create(
            ctx,
            group_name(model),
            version=1,
            primary_key=matched.column_names[: _n_keys(matched)],
            event_time="predicted_at",
            online=False,
            ttl=feature_groups._UNSET,
            description=f"Outcomes (delayed labels) of model {model!r}",
            features=feature_groups._UNSET,
            generated=True,
        )
    else:
        _check_compatible(spec, matched)
    report, _ = ingestion.insert(ctx, spec, matched.drop_columns(["_fti_nkeys"]))
    return OutcomeReport(model, report.rows, report.offline_version, unknown)


def _n_keys(table: pa.Table) -> int:
    return int(table["_fti_nkeys"][0].as_py())


def _check_compatible(spec: FeatureGroupSpec, table: pa.Table) -> None:
    keys = table.column_names[: _n_keys(table)]
    if list(spec.primary_key) != keys:
        raise ValidationError(
            f"These outcomes belong to predictions keyed by {keys}, but {spec.name!r} is keyed "
            f"by {list(spec.primary_key)}. Nothing was written."
        )
    stored = label_columns(spec)
    given = [n for n in table.column_names if n not in FIXED and n not in [*keys, "_fti_nkeys"]]
    if sorted(stored) != sorted(given):
        raise ValidationError(
            f"Outcomes of this model carry the label column(s) {stored}; got {given}. Pass the "
            "same label columns every time. Nothing was written."
        )


def _labels(table: pa.Table, exclude: Sequence[str]) -> list[str]:
    labels = [n for n in table.column_names if n not in exclude]
    if not labels:
        raise ValidationError(
            f"The outcomes have no label column: got only {table.column_names}. Add the "
            "outcome, e.g. a 'delayed' column. Nothing was written."
        )
    clash = [n for n in labels if n in FIXED]
    if clash:
        raise ValidationError(
            f"Column(s) {clash} of the outcomes are set by fti ({list(FIXED)}); rename them. "
            "Nothing was written."
        )
    return labels


def _aware_column(table: pa.Table, name: str) -> None:
    t = table.schema.field(name).type
    if not pa.types.is_timestamp(t) or t.tz is None:
        raise ValidationError(
            f"Column {name!r} of the outcomes must hold timezone-aware timestamps; got {t}. "
            "Localize it, e.g. df[col].dt.tz_localize('UTC'). Nothing was written."
        )
    if table[name].null_count:
        raise ValidationError(
            f"Column {name!r} of the outcomes has null values. Nothing was written."
        )


def _by_request(
    con: duckdb.DuckDBPyConnection, log_sql: str, model: str, table: pa.Table, now: datetime
) -> tuple[pa.Table, list[Any]]:
    has_pos = "position" in table.column_names
    has_time = "outcome_time" in table.column_names
    labels = _labels(table, ["request_id", "position", "outcome_time"])
    if table["request_id"].null_count:
        raise ValidationError(
            "Column 'request_id' of the outcomes has null values. Nothing was written."
        )
    if has_time:
        _aware_column(table, "outcome_time")
    ids = pc.cast(table["request_id"], pa.string())
    given = pa.table(
        {
            "_rid": ids,
            "_pos": pc.cast(table["position"], pa.int32())
            if has_pos
            else pa.nulls(len(ids), pa.int32()),
            "_row": pa.array(range(table.num_rows), pa.int64()),
        }
    )
    con.register("_given", given)
    rows = con.sql(
        f"SELECT g._row, l.request_id, l.position, l.logged_at, l.entity, "
        f"count(*) OVER (PARTITION BY g._row) AS _n FROM _given g JOIN {log_sql} l "
        "ON l.request_id = g._rid AND (g._pos IS NULL OR l.position = g._pos) "
        "WHERE l.model_name = ? ORDER BY g._row",
        params=[model],
    ).to_arrow_table()
    many = pc.filter(rows, pc.greater(rows["_n"], 1))
    if many.num_rows:
        rid = many["request_id"][0].as_py()
        raise ValidationError(
            f"Request {rid!r} logged {many['_n'][0].as_py()} predictions (one per entity): add a "
            "'position' column saying which one each outcome belongs to. Nothing was written."
        )
    found = set(rows["_row"].to_pylist())
    unknown = [
        r if not has_pos else {"request_id": r, "position": p}
        for i, (r, p) in enumerate(zip(ids.to_pylist(), given["_pos"].to_pylist(), strict=True))
        if i not in found
    ]
    pick = rows["_row"]
    times = (
        table["outcome_time"].take(pick)
        if has_time
        else pa.array([now] * rows.num_rows, pa.timestamp("us", tz="UTC"))
    )
    return _assemble(rows, {n: table[n].take(pick) for n in labels}, times), unknown


def _assemble(rows: pa.Table, labels: dict[str, Any], times: Any) -> pa.Table:
    """Outcome rows: entity keys (decoded from the log), fixed columns, labels; the number of
    key columns rides along in ``_fti_nkeys`` (dropped before the insert)."""
    entities = [json.loads(e) for e in rows["entity"].to_pylist()]
    keys = list(entities[0]) if entities else []
    if any(list(e) != keys for e in entities):
        raise ValidationError(
            "These outcomes belong to predictions with different entity keys "
            f"({sorted({tuple(e) for e in entities})}); log the outcomes of each feature view's "
            "predictions separately. Nothing was written."
        )
    cols: dict[str, Any] = {k: pa.array([e[k] for e in entities]) for k in keys}
    cols["predicted_at"] = rows["logged_at"]
    cols["request_id"] = rows["request_id"]
    cols["position"] = rows["position"]
    cols["outcome_time"] = pc.cast(times, pa.timestamp("us", tz="UTC"))
    cols.update(labels)
    cols["_fti_nkeys"] = pa.array([len(keys)] * rows.num_rows, pa.int32())
    return pa.table(cols)


def _by_key(
    ctx: StoreContext,
    con: duckdb.DuckDBPyConnection,
    log_sql: str,
    model: str,
    table: pa.Table,
) -> tuple[pa.Table, list[Any]]:
    found = con.execute(
        f"SELECT entity FROM {log_sql} WHERE model_name = ? LIMIT 1", [model]
    ).fetchall()
    first = found[0] if found else None
    if first is None:
        raise ValidationError(
            f"Model {model!r} has no logged predictions yet, so outcomes cannot be attached. "
            "Nothing was written."
        )
    keys = list(json.loads(first[0]))
    missing = [k for k in [*keys, "outcome_time"] if k not in table.column_names]
    if missing:
        raise ValidationError(
            f"The outcomes of model {model!r} need either a 'request_id' column, or the entity "
            f"keys {keys} and 'outcome_time' (when the outcome happened); missing {missing}. "
            "Nothing was written."
        )
    _aware_column(table, "outcome_time")
    labels = _labels(table, [*keys, "outcome_time", "position"])
    for k in keys:
        if table[k].null_count:
            raise ValidationError(
                f"Key column {k!r} of the outcomes has null values. Nothing was written."
            )
    given = table.select(keys).append_column("_t", table["outcome_time"])
    given = given.append_column("_row", pa.array(range(table.num_rows), pa.int64()))
    con.register("_given", given)
    kq = [quote(k) for k in keys]
    dups = con.execute(
        f"SELECT {', '.join(kq)}, _t FROM _given GROUP BY ALL HAVING count(*) > 1 LIMIT 1"
    ).fetchall()
    dup = dups[0] if dups else None
    if dup:
        raise ValidationError(
            f"Two outcomes for the same key and outcome_time: "
            f"{dict(zip(keys, dup[:-1], strict=True))} at {dup[-1]}. Keep one. Nothing was "
            "written."
        )
    # Outcome times stored before bound the predictions a new outcome labels.
    nulls = ", ".join(f"NULL::VARCHAR AS _k{i}" for i in range(len(keys)))
    stored_sql = f"SELECT {nulls}, NULL::TIMESTAMPTZ AS _t WHERE false"
    spec = outcomes_spec(ctx, model)
    if spec is not None and ctx.offline.exists(spec.key) and list(spec.primary_key) == keys:
        dataset, _ = ctx.offline.dataset(spec.key)
        con.register("_stored", dataset)
        stored_sql = f"SELECT DISTINCT {_key_text(keys, '')}, outcome_time AS _t FROM _stored"
    sql = f"""
        WITH o AS (
            SELECT {_key_text(keys, "")}, _t, _row FROM _given
            UNION ALL
            SELECT s.*, NULL::BIGINT FROM ({stored_sql}) s
            WHERE NOT EXISTS (SELECT 1 FROM _given g WHERE g._t = s._t AND
                {" AND ".join(f"CAST(g.{q} AS VARCHAR) = s._k{i}" for i, q in enumerate(kq))})
        ),
        p AS (
            SELECT request_id, position, logged_at, entity,
                {", ".join(f"entity->>'$.{k}' AS _k{i}" for i, k in enumerate(keys))}
            FROM {log_sql} l WHERE model_name = ?
        )
        SELECT o._row, p.request_id, p.position, p.logged_at, p.entity
        FROM p ASOF JOIN o ON {" AND ".join(f"p._k{i} = o._k{i}" for i in range(len(keys)))}
            AND p.logged_at <= o._t
        WHERE o._row IS NOT NULL
        ORDER BY o._row, p.logged_at, p.request_id, p.position
    """
    rows = con.sql(sql, params=[model]).to_arrow_table()
    matched = set(rows["_row"].to_pylist())
    unknown = [
        {k: table[k][i].as_py() for k in keys} | {"outcome_time": table["outcome_time"][i].as_py()}
        for i in range(table.num_rows)
        if i not in matched
    ]
    pick = rows["_row"]
    labelled = {n: table[n].take(pick) for n in labels}
    return _assemble(rows, labelled, table["outcome_time"].take(pick)), unknown


def _key_text(keys: Sequence[str], prefix: str) -> str:
    """Keys compared as text: the log holds them in JSON (``entity->>'$.k'`` is text)."""
    return ", ".join(f"CAST({prefix}{quote(k)} AS VARCHAR) AS _k{i}" for i, k in enumerate(keys))
