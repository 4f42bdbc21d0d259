"""Point-in-time-correct training data: validate the spine, pin table versions, run the join.

The join is planned once (:mod:`fti.planner.pit_plan`) and rendered by
:mod:`fti.planner.duckdb_pit` into one DuckDB statement over the Delta tables' files (scanned
lazily, never loaded whole into Python) that the store's DuckDB (``ctx.compute``) runs, or with
``engine="spark"`` by :mod:`fti.planner.spark_pit` into Spark SQL over the same table versions,
run by :class:`~fti.backends.compute.spark.SparkEngine`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fti._internal.error_translation import engine_errors
from fti._internal.frames import to_arrow
from fti._internal.names import RESERVED_PREFIX, quote
from fti.backends.compute.duckdb import DuckDBEngine, ParquetFiles
from fti.backends.compute.spark import SparkEngine, spark_schema, spark_session
from fti.backends.offline import SEQ, local_files
from fti.definitions.feature_group import FeatureGroupSpec
from fti.definitions.feature_view import LabelSource
from fti.definitions.fields import arrow_type
from fti.definitions.on_demand import OnDemandFeature, compute_on_demand
from fti.definitions.query import Query
from fti.errors import ValidationError
from fti.planner.duckdb_pit import compile_pit
from fti.planner.pit_plan import ROW, PitStatement
from fti.planner.predicates import time_bounds, where_clause
from fti.planner.spark_pit import compile_pit_spark
from fti.services.context import StoreContext
from fti.services.pit_execution import execute_pit

if TYPE_CHECKING:
    import pyarrow.dataset as ds

__all__ = [
    "KNOWN",
    "PointInTimeResult",
    "known_ns",
    "normalize_spine",
    "pin_versions",
    "point_in_time",
    "spark_corrected",
]

_UTC_US = pa.timestamp("us", tz="UTC")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KNOWN = "_fti_known"  # per-row ingestion cut-off (int64 UTC ns) added to a normalized spine


def known_ns(value: datetime) -> int:
    """A ``known_at=`` datetime as the ingestion cut-off compared with ``_fti_seq``: UTC
    nanoseconds (a row stamped within the microsecond after ``value`` is not yet known)."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(
            f"known_at={value!r} must be a timezone-aware datetime (e.g. "
            "datetime(2024, 1, 1, tzinfo=timezone.utc)) or the name of a spine column of "
            "timezone-aware timestamps."
        )
    return ((value - _EPOCH) // timedelta(microseconds=1)) * 1000


def _known_column(spine: pa.Table, name: str) -> pa.Table:
    """The spine with ``_fti_known``: the cut-offs of column ``name`` in UTC nanoseconds."""
    if name not in spine.column_names:
        raise ValidationError(
            f"known_at={name!r} is not a column of the spine (it has {spine.column_names}). "
            "Pass a datetime, or the name of a spine column of per-row cut-offs."
        )
    us = _utc_microseconds(spine.column(name), name).cast(pa.int64())
    return spine.append_column(KNOWN, pc.multiply(us, 1000))


@dataclass(frozen=True)
class PointInTimeResult:
    """The joined rows and the offline table version read for each feature group key."""

    table: pa.Table
    table_versions: dict[str, int | None]


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
        raise ValidationError(
            f"{name}={value!r} must be a timezone-aware datetime, e.g. "
            "datetime(2013, 1, 1, tzinfo=timezone.utc)."
        )


def _utc_microseconds(column: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
    """Any timezone-aware timestamp -> timestamp[us, UTC], flooring sub-microsecond parts."""
    t = column.type
    if not pa.types.is_timestamp(t):
        raise ValidationError(
            f"Spine column {name!r} must hold timezone-aware timestamps, got {t}. Convert it, "
            f"e.g. spine[{name!r}] = pd.to_datetime(spine[{name!r}], utc=True)."
        )
    if t.tz is None:
        raise ValidationError(
            f"Spine column {name!r} holds naive timestamps (no time zone). fti compares times "
            f"in UTC and cannot guess the zone: localize it first, e.g. "
            f"spine[{name!r}] = spine[{name!r}].dt.tz_localize('UTC')."
        )
    if column.null_count:
        raise ValidationError(
            f"Spine column {name!r} has {column.null_count} null time(s); every spine row needs "
            "a time. Drop or fill those rows."
        )
    if t.unit == "ns":
        ns = column.cast(pa.int64()).to_numpy()
        return pa.chunked_array([pa.array(np.floor_divide(ns, 1000), pa.int64()).cast(_UTC_US)])
    return column.cast(_UTC_US)


def normalize_spine(
    query: Query, spine: Any, *, reserved: Sequence[str] = ()
) -> tuple[pa.Table, list[str]]:
    """Validate a user spine; returns it with UTC microsecond times, typed keys and a row number.

    The spine needs the left-most feature group's primary key and (if it has one) event time
    columns; other columns (labels, request parameters) are passed through. ``reserved`` are the
    output names of the query's features, which the spine must not also carry.
    """
    table = to_arrow(spine, what="the spine")
    left = query.left.group
    need = [*left.primary_key, *([left.event_time] if left.event_time else [])]
    missing = [c for c in need if c not in table.column_names]
    if missing:
        raise ValidationError(
            f"The spine lacks column(s) {missing}. A spine needs the join keys and event time of "
            f"the left-most feature group {left.name!r}: {need}. It has: {table.column_names}."
        )
    clash = [c for c in table.column_names if c in set(reserved)]
    if clash:
        raise ValidationError(
            f"Spine column(s) {clash} clash with features of the query. Drop or rename them in "
            "the spine."
        )
    for name in table.column_names:
        if name.lower().startswith(RESERVED_PREFIX):
            raise ValidationError(
                f"Spine column {name!r} uses the reserved prefix {RESERVED_PREFIX!r}; rename it."
            )
    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        if name == left.event_time:
            column = _utc_microseconds(column, name)
        elif name in left.primary_key:
            target = arrow_type(left.column(name).dtype)
            try:
                column = column.cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise ValidationError(
                    f"Spine key column {name!r} has type {column.type}, which does not convert "
                    f"to the feature group's {left.column(name).dtype}: {e}. Convert it first."
                ) from None
        elif pa.types.is_timestamp(column.type) and column.type.tz is not None:
            column = column.cast(pa.timestamp(column.type.unit, tz="UTC"))
        columns.append(column)
    rows = pa.array(np.arange(table.num_rows, dtype=np.int64))
    names = [*table.column_names, ROW]
    return pa.Table.from_arrays([*columns, rows], names=names), table.column_names


def _key_ranges(query: Query, spine: pa.Table) -> dict[str, tuple[int, int]]:
    """(min, max) of the spine's row number and integer join-key columns (see ``compile_pit``)."""
    keys = [*query.left.group.primary_key, *(c for j in query.joins for c in j.left_on)]
    out: dict[str, tuple[int, int]] = {ROW: (0, spine.num_rows - 1)} if spine.num_rows else {}
    for name in dict.fromkeys(keys):
        if name not in spine.column_names or not pa.types.is_integer(spine.schema.field(name).type):
            continue
        bounds = pc.min_max(spine.column(name)).as_py()
        if bounds["min"] is not None:
            out[name] = (int(bounds["min"]), int(bounds["max"]))
    return out


def _time_range(query: Query, spine: pa.Table) -> tuple[datetime, datetime] | None:
    """(first, last) time of a normalized spine, None without rows or an event time."""
    et = query.left.group.event_time
    if et is None or not spine.num_rows:
        return None
    bounds = pc.min_max(spine.column(et).cast(pa.int64())).as_py()
    try:
        first = _EPOCH + timedelta(microseconds=bounds["min"])
        last = _EPOCH + timedelta(microseconds=bounds["max"])
    except OverflowError:  # beyond Python's datetimes (years 1-9999): no pruning
        return None
    return first, last


def pin_versions(ctx: StoreContext, query: Query) -> dict[str, int | None]:
    """The latest offline table version of every feature group in the query (None: no table)."""
    out: dict[str, int | None] = {}
    for g in query.groups:
        out[g.key] = ctx.offline.version(g.key) if ctx.offline.exists(g.key) else None
    return out


def _relation(
    ctx: StoreContext, spec: FeatureGroupSpec, version: int | None, *, latest: bool
) -> tuple[ds.Dataset | pa.Table | ParquetFiles, int | None]:
    """The relation to scan for one feature group and the table version it holds."""
    schema = pa.schema(
        [pa.field(c.name, arrow_type(c.dtype)) for c in spec.columns] + [pa.field(SEQ, pa.int64())]
    )
    if latest:
        if not ctx.offline.exists(spec.key):
            return schema.empty_table(), None
        dataset, version = ctx.offline.dataset(spec.key)
    elif version is None:
        return schema.empty_table(), None
    else:
        dataset, _ = ctx.offline.dataset(spec.key, version=version)
    missing = [f for f in schema if f.name not in dataset.schema.names]
    if missing:
        return _with_null_columns(dataset, missing), version
    files = local_files(ctx.offline, spec.key, dataset)
    if files:
        return ParquetFiles(tuple(files), dataset), version
    return dataset, version


def _with_null_columns(dataset: ds.Dataset, missing: Sequence[pa.Field]) -> pa.Table:
    """Rare path (a declared column absent from every file): read and pad with nulls."""
    table = dataset.to_table()
    for f in missing:
        table = table.append_column(f, pa.nulls(table.num_rows, f.type))
    return table


def _restore_types(
    query: Query,
    table: pa.Table,
    spine_schema: pa.Schema | None,
    columns: Sequence[tuple[int, str, str]] | None = None,
) -> pa.Table:
    """DuckDB may return other Arrow flavours (large strings, other tz); cast to fti's types."""
    types: dict[str, pa.DataType] = {}
    groups = query.groups
    for g in groups:
        for c in g.columns:
            types.setdefault(c.name, arrow_type(c.dtype))
    for i, src, out in query.feature_columns() if columns is None else columns:
        types[out] = arrow_type(groups[i].column(src).dtype)
    if spine_schema is not None:
        for f in spine_schema:
            types[f.name] = f.type
    fields = [
        pa.field(n, types.get(n, t))
        for n, t in zip(table.column_names, table.schema.types, strict=True)
    ]
    schema = pa.schema(fields)
    return table if table.schema == schema else table.cast(schema)


@engine_errors("computing a point-in-time join")
def point_in_time(
    ctx: StoreContext,
    query: Query,
    *,
    spine: Any = None,
    start: datetime | None = None,
    end: datetime | None = None,
    columns: Sequence[tuple[int, str, str]] | None = None,
    labels: Sequence[LabelSource] = (),
    on_demand: Sequence[OnDemandFeature] = (),
    table_versions: Mapping[str, int | None] | None = None,
    engine: Any = "duckdb",
    known_at: datetime | str | None = None,
) -> PointInTimeResult:
    """One row per spine row (or per left-group row without a spine), point-in-time correct.

    ``columns``: ``(selection, column, output name)`` of the features to return (default: every
    selected column, ``query.feature_columns()``). ``labels``: where each label comes from; a
    spine column with the label's name wins, else the label is joined point-in-time from its
    feature group exactly like a feature. ``table_versions`` pins the offline table version
    read per feature group key (None = the latest); the versions actually read are returned
    with the rows. ``engine`` is "duckdb" (default), "spark" (the active SparkSession, else a
    local one) or a SparkSession. ``known_at``: only rows ingested at or before this time are
    visible (``_fti_seq <= known_at`` in UTC ns); a datetime, or the name of a spine column of
    per-row cut-offs.
    """
    spark = spark_session(engine)
    if known_at is not None and spark is not None:
        raise ValidationError(
            'known_at= is not supported with engine="spark" yet; use the default engine '
            '"duckdb" for bitemporal reads.'
        )
    if isinstance(known_at, str) and spine is None:
        raise ValidationError(
            f"known_at={known_at!r} names a spine column, but no spine was given. Pass a spine "
            "with that column, or a datetime."
        )
    cutoff = None if known_at is None or isinstance(known_at, str) else known_ns(known_at)
    _aware("start", start)
    _aware("end", end)
    if (start is not None or end is not None) and query.left.group.event_time is None:
        raise ValidationError(
            f"Feature group {query.left.group.name!r} has no event time, so start/end cannot "
            "filter the training data."
        )
    relations = []
    versions: dict[str, int | None] = {}
    pinned = dict(table_versions or {})
    for g in query.groups:
        relation, versions[g.key] = _relation(ctx, g, pinned.get(g.key), latest=g.key not in pinned)
        relations.append(relation)
    features = query.feature_columns() if columns is None else list(columns)
    spine_table: pa.Table | None = None
    spine_names: list[str] | None = None
    if spine is not None:
        reserved = [out for _i, _src, out in features] + [f.name for f in on_demand]
        spine_table, spine_names = normalize_spine(query, spine, reserved=reserved)
    wanted = features + _label_columns(query, labels, spine_names)
    per_row = None
    if isinstance(known_at, str) and spine_table is not None:
        spine_table = _known_column(spine_table, known_at)
        per_row = KNOWN
        top = pc.max(spine_table.column(KNOWN)).as_py()
        cutoff = None if top is None else int(top)
    spine_columns = None if spine_table is None else spine_table.column_names
    if spine_table is None and spark is None:
        relations[0] = _corrected_left(
            ctx.compute, query.left.group, relations[0], start, end, cutoff
        )
    if spark is None:
        statement = compile_pit(
            query,
            spine_columns=spine_columns,
            columns=wanted,
            start=start,
            end=end,
            key_ranges=None if spine_table is None else _key_ranges(query, spine_table),
            spine_times=None if spine_table is None else _time_range(query, spine_table),
            known_at=cutoff,
            known_column=per_row if cutoff is not None else None,
        )
    else:
        statement = compile_pit_spark(
            query, spine_columns=spine_columns, columns=wanted, start=start, end=end
        )
    if spark is None:
        table = execute_pit(ctx.compute, statement, spine=spine_table, groups=relations)
    else:
        table = _run_on_spark(ctx, spark, query, statement, spine_table, versions)
    table = _restore_types(
        query,
        table,
        None if spine_table is None else spine_table.select(spine_names or []).schema,
        wanted,
    )
    if on_demand:
        table = compute_on_demand(list(on_demand), table)
    return PointInTimeResult(table, versions)


def _label_columns(
    query: Query, labels: Sequence[LabelSource], spine_names: Sequence[str] | None
) -> list[tuple[int, str, str]]:
    """The labels to join from feature groups (those the spine does not carry)."""
    out = []
    for label in labels:
        if spine_names is not None and label.name in spine_names:
            continue  # the spine's own column is the label
        if label.selection is None or label.column is None:
            groups = [g.key for g in query.groups]
            raise ValidationError(
                f"Label {label.name!r} is neither a column of a feature group in the query "
                f"({groups}; key and event time columns are never labels) nor of the spine"
                f"{'' if spine_names is not None else ' (none given)'}. Pass a spine with a "
                f"{label.name!r} column, or name a column of one of the feature groups."
            )
        out.append((label.selection, label.column, label.name))
    return out


def _corrected_left(
    engine: DuckDBEngine,
    spec: FeatureGroupSpec,
    relation: ds.Dataset | pa.Table | ParquetFiles,
    start: datetime | None,
    end: datetime | None,
    known_at: int | None = None,
) -> ds.Dataset | pa.Table | ParquetFiles:
    """Without a spine the left group's rows are the spine, so they must be its corrected
    history (one row per key and event time, the last ingested), as ``fg.read()`` returns it.

    The join scans the table lazily; only a table that holds corrections in ``[start, end)``
    is replaced by its corrected rows (computed by DuckDB, handed over as Arrow). With
    ``known_at`` (ns) the correction is chosen among the rows ingested by then.
    """
    if spec.event_time is None:
        return relation  # the join already takes the last row per key of a snapshot group
    source = relation.fallback if isinstance(relation, ParquetFiles) else relation
    keys = ", ".join(quote(c) for c in (*spec.primary_key, spec.event_time))
    params: list[Any] = []
    terms = time_bounds(quote(spec.event_time), start, end, params)
    if known_at is not None:
        terms.append(f"{quote(SEQ)} <= ?")
        params.append(known_at)
    where = where_clause(terms)
    with engine.cursor() as con:
        con.register("g", source)
        (superseded,) = con.sql(
            f"SELECT count(*) - count(DISTINCT row({keys})) FROM g{where}", params=params
        ).fetchall()[0]
        if not superseded:
            return relation
        corrected: pa.Table = con.sql(
            f"SELECT * FROM g{where} QUALIFY row_number() OVER (PARTITION BY {keys} "
            f"ORDER BY {quote(SEQ)} DESC) = 1",
            params=params,
        ).to_arrow_table()
    return corrected


def _run_on_spark(
    ctx: StoreContext,
    spark: Any,
    query: Query,
    statement: PitStatement,
    spine: pa.Table | None,
    versions: Mapping[str, int | None],
) -> pa.Table:
    """Run a Spark-compiled join over the same Delta table versions the DuckDB path reads."""
    engine = SparkEngine(spark)
    options = ctx.offline.storage_options
    frames = []
    for group in query.groups:
        key = group.key
        if versions.get(key) is None:
            schema = pa.schema(
                [pa.field(c.name, arrow_type(c.dtype)) for c in group.columns]
                + [pa.field(SEQ, pa.int64())]
            )
            frames.append(spark.createDataFrame([], spark_schema(schema)))
        else:
            frames.append(
                engine.read_table(
                    ctx.offline.path(key), version=versions[key], storage_options=options
                )
            )
    if spine is None:
        frames[0] = spark_corrected(frames[0], query.left.group)
    return execute_pit(engine, statement, spine=spine, groups=frames)


def spark_corrected(frame: Any, spec: FeatureGroupSpec) -> Any:
    """The Spark twin of ``_corrected_left``: a Spark DataFrame of a group's rows -> its
    corrected history (one row per key and event time, the last ingested)."""
    if spec.event_time is None:
        return frame
    keys = ", ".join(f"`{c}`" for c in (*spec.primary_key, spec.event_time))
    rank = f"row_number() OVER (PARTITION BY {keys} ORDER BY `{SEQ}` DESC) AS _fti_rn"
    return frame.selectExpr("*", rank).where("_fti_rn = 1").drop("_fti_rn")

