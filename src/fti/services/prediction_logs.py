"""Prediction logs: one offline feature group per feature view version, ``<fv>_log`` at the
feature view's version (table ``<fv>_log_v<version>``).

One row per predicted entity: request id and position, time, the entity keys, the request
parameters, the untransformed and transformed features (JSON objects, so every transformation
set fits one schema), the prediction (JSON), the model name and version and the training dataset
version. ``read`` returns them with keys and features expanded back into columns, ready to be
joined with labels that arrive later.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from fti._internal.frames import from_arrow, to_arrow
from fti._internal.names import quote
from fti.definitions.feature_group import FeatureGroupSpec
from fti.definitions.fields import Field
from fti.errors import NotFoundError, ValidationError
from fti.services import feature_groups, feature_views, ingestion, model_registry, offline_reads
from fti.services.context import StoreContext

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "JSON_COLUMNS",
    "LOG_FIELDS",
    "LogRow",
    "append",
    "append_records",
    "encode",
    "epoch_micros",
    "log_batch",
    "log_spec",
    "model_logs",
    "read",
    "read_versions",
    "register_logs",
    "to_json",
]

_UNSET: Any = feature_groups._UNSET

LOG_FIELDS = (
    Field("request_id", "string"),
    Field("position", "int32"),
    Field("logged_at", "timestamp"),
    Field("entity", "string", "entity keys (JSON object)"),
    Field("request", "string", "request parameters (JSON object)"),
    Field("features", "string", "untransformed features (JSON object)"),
    Field("transformed", "string", "features after model-dependent transformations (JSON)"),
    Field("prediction", "string", "model output (JSON)"),
    Field("probability", "float64", "positive-class probability (binary classifiers)"),
    Field("model_name", "string"),
    Field("model_version", "int64"),
    Field("training_dataset_version", "int64"),
)
_JSON = ("entity", "request", "features", "transformed", "prediction")


@dataclass(frozen=True)
class LogRow:
    """One logged prediction (values as the server had them)."""

    request_id: str
    position: int
    logged_at: datetime
    entity: Mapping[str, Any]
    request: Mapping[str, Any]
    features: Mapping[str, Any]
    transformed: Mapping[str, Any] | Sequence[Any] | None
    prediction: Any
    model_name: str
    model_version: int
    training_dataset_version: int | None
    probability: float | None = None


# NaN and infinities are written as JSON's non-standard tokens, which json.loads reads back, so
# a NaN feature stays NaN and never turns into null. One encoder for every row (json.dumps with
# options builds a new one per call).
_to_json = json.JSONEncoder(default=str, allow_nan=True, separators=(",", ":")).encode
JSON_COLUMNS = _JSON
to_json = _to_json  # the encoding of the JSON columns (text as the log stores it)


def log_spec(ctx: StoreContext, fv_name: str, fv_version: int) -> FeatureGroupSpec:
    """The log feature group of a feature view version (created on first use)."""
    return feature_groups.get_or_create(
        ctx,
        f"{fv_name}_log",
        version=fv_version,
        primary_key=["request_id", "position"],
        event_time="logged_at",
        online=False,
        ttl=_UNSET,
        description=f"Prediction log of feature view {fv_name!r} version {fv_version}",
        features=LOG_FIELDS,
        generated=True,
    )


def encode(row: LogRow) -> dict[str, Any]:
    """One row as a JSON-ready record: the JSON columns as text, ``logged_at`` in microseconds
    since the epoch (what :func:`append_records` takes; the spool of ``fti serve`` holds them)."""
    t = row.transformed
    return {
        "request_id": row.request_id,
        "position": row.position,
        "logged_at": epoch_micros(row.logged_at),
        "entity": _to_json(dict(row.entity)),
        "request": _to_json(dict(row.request)),
        "features": _to_json(dict(row.features)),
        "transformed": _to_json(
            None if t is None else dict(t) if isinstance(t, Mapping) else list(t)
        ),
        "prediction": _to_json(row.prediction),
        "probability": row.probability,
        "model_name": row.model_name,
        "model_version": row.model_version,
        "training_dataset_version": row.training_dataset_version,
    }


def epoch_micros(t: datetime) -> int:
    """Microseconds since the epoch (a naive time is taken as UTC)."""
    delta = (t if t.tzinfo is not None else t.replace(tzinfo=UTC)) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def append(ctx: StoreContext, spec: FeatureGroupSpec, rows: Sequence[LogRow]) -> int:
    """Write rows in one atomic insert; returns the number written."""
    return append_records(ctx, spec, [encode(r) for r in rows])


def append_records(
    ctx: StoreContext, spec: FeatureGroupSpec, records: Sequence[Mapping[str, Any]]
) -> int:
    """Write :func:`encode`'d rows in one atomic insert; returns the number written."""
    if not records:
        return 0
    table = pa.table(
        {
            f.name: pa.array(
                [r[f.name] for r in records],
                type=pa.timestamp("us", tz="UTC") if f.dtype == "timestamp" else _arrow(f.dtype),
            )
            for f in LOG_FIELDS
        }
    )
    report, _ = ingestion.insert(ctx, spec, table)
    return report.rows


def _arrow(dtype: str) -> pa.DataType:
    return {
        "string": pa.string(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float64": pa.float64(),
    }[dtype]


def read(
    ctx: StoreContext,
    fv_name: str,
    fv_version: int,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    model: str | None = None,
    model_version: int | None = None,
    expand: bool = True,
    format: str = "pandas",
) -> Any:
    """Logged predictions with ``start <= logged_at < end``, oldest first.

    With ``expand`` (default) the keys, request parameters and untransformed features become
    columns (``prediction`` is decoded too); ``transformed`` stays JSON text.
    """
    spec = log_spec(ctx, fv_name, fv_version)
    table: pa.Table = offline_reads.read(ctx, spec, start=start, end=end, format="arrow")
    if model is not None:
        table = table.filter(pc.equal(table["model_name"], model))
    if model_version is not None:
        table = table.filter(pc.equal(table["model_version"], model_version))
    if not expand:
        return from_arrow(table, format)
    return from_arrow(_expand(table), format)


def _expand(table: pa.Table) -> pa.Table:
    fixed = ["request_id", "position", "logged_at"]
    out: dict[str, Any] = {n: table[n] for n in fixed}
    for source in ("entity", "request", "features"):
        decoded = [json.loads(s) for s in table[source].to_pylist()]
        names: list[str] = []
        for d in decoded:
            names.extend(k for k in d if k not in names)
        for n in names:
            if n in out:
                continue  # a key repeated in features: the entity's value is the same
            out[n] = pa.array([d.get(n) for d in decoded], from_pandas=False)
    preds = [json.loads(s) for s in table["prediction"].to_pylist()]
    scalar = all(p is None or isinstance(p, int | float) for p in preds)
    out["prediction"] = (
        pa.array([float(p) if p is not None else None for p in preds], pa.float64())
        if scalar
        else pa.array([_to_json(p) for p in preds], pa.string())
    )
    for n in (
        "probability",
        "transformed",
        "model_name",
        "model_version",
        "training_dataset_version",
    ):
        out[n] = table[n]
    return pa.table(out)


def read_versions(
    ctx: StoreContext,
    fv_name: str,
    versions: str | Sequence[int],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    model: str | None = None,
    model_version: int | None = None,
    format: str = "pandas",
) -> Any:
    """The logs of several versions of a view as one timeline (oldest first), with a
    ``view_version`` column; ``versions="all"`` reads every version of the view. Columns a
    version does not have (features added or removed) are null in its rows."""
    if isinstance(versions, str):
        if versions != "all":
            raise ValidationError(
                f"versions={versions!r} is not understood: pass 'all' or a list of view "
                "versions, e.g. versions=[1, 2]."
            )
        wanted = sorted(
            s.version
            for s in feature_views.list_specs(ctx, include_deprecated=True)
            if s.name.lower() == fv_name.lower()
        )
    else:
        wanted = sorted({int(v) for v in versions})
    parts: list[pa.Table] = []
    for v in wanted:
        if _existing_log(ctx, fv_name, v) is None:
            continue
        t: pa.Table = read(
            ctx,
            fv_name,
            v,
            start=start,
            end=end,
            model=model,
            model_version=model_version,
            format="arrow",
        )
        parts.append(t.add_column(0, "view_version", pa.array([v] * t.num_rows, pa.int64())))
    if not parts:
        empty = pa.schema([pa.field("view_version", pa.int64())]).empty_table()
        return from_arrow(empty, format)
    table = pa.concat_tables(parts, promote_options="permissive")
    order = pc.sort_indices(table, [("logged_at", "ascending"), ("view_version", "ascending")])
    return from_arrow(table.take(order), format)


def _existing_log(ctx: StoreContext, fv_name: str, fv_version: int) -> FeatureGroupSpec | None:
    try:
        spec = feature_groups.get_spec(ctx, f"{fv_name}_log", fv_version, warn=False)
    except NotFoundError:
        return None
    return spec if spec.has_schema and ctx.offline.exists(spec.key) else None


def model_logs(ctx: StoreContext, model: str, version: int | None = None) -> list[FeatureGroupSpec]:
    """The existing log groups the versions of ``model`` (or one version) can have written
    to: one per feature view version they were registered with."""
    specs = (
        [model_registry.get_spec(ctx, model, version)]
        if version is not None
        else model_registry.list_specs(ctx, model, include_deprecated=True)
    )
    if not specs:
        model_registry.get_spec(ctx, model)  # raises the "does not exist" error
    refs = sorted({(s.feature_view.name, s.feature_view.version) for s in specs if s.feature_view})
    out = []
    for name, v in refs:
        log = _existing_log(ctx, name, v)
        if log is not None:
            out.append(log)
    return out


def register_logs(
    con: duckdb.DuckDBPyConnection, ctx: StoreContext, logs: Sequence[FeatureGroupSpec]
) -> str:
    """Register the log tables on ``con``; returns SQL naming their union (every log column,
    rows as written: request ids are unique, so no de-duplication is needed)."""
    selects = []
    for i, spec in enumerate(logs):
        dataset, _ = ctx.offline.dataset(spec.key)
        con.register(f"_log{i}", dataset)
        # A log written before a column existed (``probability``) reads it as null.
        cols = ", ".join(_column(f, set(dataset.schema.names)) for f in LOG_FIELDS)
        selects.append(f"SELECT {cols} FROM _log{i}")
    if not selects:
        types = ", ".join(_column(f, set()) for f in LOG_FIELDS)
        return f"(SELECT {types} WHERE false)"
    return "(" + " UNION ALL ".join(selects) + ")"


def _column(field: Field, available: set[str]) -> str:
    name = quote(field.name)
    return name if field.name in available else f"NULL::{_DUCK[field.dtype]} AS {name}"


_DUCK = {
    "string": "VARCHAR",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "float64": "DOUBLE",
    "timestamp": "TIMESTAMPTZ",
}


_BATCH_FIXED = ("request_id", "position", "logged_at", "prediction", "probability")


def log_batch(
    ctx: StoreContext,
    model: str,
    data: Any,
    *,
    keys: Sequence[str],
    version: int | None = None,
) -> int:
    """Log predictions made outside the model server (batch inference) into the same log the
    server writes: ``data`` holds the entity ``keys``, ``prediction``, optionally
    ``probability``, ``logged_at`` (default now), ``request_id`` (default: a new id per row)
    and ``position`` (default 0); every other column is logged as a feature."""
    mv = model_registry.get_spec(ctx, model, version)
    if mv.feature_view is None:
        raise ValidationError(
            f"Model {model!r} version {mv.version} was registered without a feature view, so "
            "its predictions have no log; register it with feature_view=fv."
        )
    table = to_arrow(data, what="the predictions")
    missing = [c for c in [*keys, "prediction"] if c not in table.column_names]
    if missing or not keys:
        raise ValidationError(
            f"The predictions to log lack the column(s) {missing or ['keys=']}: pass the entity "
            "keys (keys=[...], columns of the frame) and a 'prediction' column. Nothing was "
            "written."
        )
    if "logged_at" in table.column_names:
        t = table.schema.field("logged_at").type
        if not pa.types.is_timestamp(t) or t.tz is None or table["logged_at"].null_count:
            raise ValidationError(
                f"Column 'logged_at' must hold timezone-aware timestamps without nulls; got "
                f"{t}. Nothing was written."
            )
    features = [c for c in table.column_names if c not in (*keys, *_BATCH_FIXED)]
    now = datetime.now(UTC)
    td = mv.training_dataset.version if mv.training_dataset else None
    rows = [
        LogRow(
            request_id=str(r.get("request_id") or uuid.uuid4().hex),
            position=int(r.get("position") or 0),
            logged_at=r.get("logged_at") or now,
            entity={k: r[k] for k in keys},
            request={},
            features={f: r[f] for f in features},
            transformed=None,
            prediction=r["prediction"],
            model_name=model,
            model_version=mv.version,
            training_dataset_version=td,
            probability=r.get("probability"),
        )
        for r in table.to_pylist()
    ]
    spec = log_spec(ctx, mv.feature_view.name, mv.feature_view.version)
    return append(ctx, spec, rows)
