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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from fti._internal.frames import from_arrow
from fti.definitions.feature_group import FeatureGroupSpec
from fti.definitions.fields import Field
from fti.services import feature_groups, ingestion, offline_reads
from fti.services.context import StoreContext

__all__ = [
    "JSON_COLUMNS",
    "LOG_FIELDS",
    "LogRow",
    "append",
    "append_records",
    "encode",
    "epoch_micros",
    "log_spec",
    "read",
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
