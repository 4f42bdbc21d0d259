"""Spark as a compute engine (extra ``fti[spark]``): Spark computes, deltalake commits.

Spark reads a Delta table version as the Parquet files ``deltalake`` lists for it, and Spark
results come back to fti as Arrow for the normal, atomic insert path (see
:mod:`fti.backends.compute`). ``pyspark`` is imported only when a Spark frame is handled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from fti._internal.s3_location import S3Location, is_s3
from fti.errors import MissingDependencyError, NotFoundError, ValidationError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

__all__ = [
    "SparkEngine",
    "delta_files",
    "is_spark_frame",
    "s3a_options",
    "spark_schema",
    "spark_session",
    "spark_to_arrow",
]


def is_spark_frame(obj: object) -> bool:
    """True for a ``pyspark.sql.DataFrame`` (classic or Spark Connect), without importing it."""
    return type(obj).__module__.startswith("pyspark.sql") and hasattr(obj, "toArrow")


def spark_to_arrow(frame: DataFrame) -> pa.Table:
    """Collect a Spark DataFrame to this process as an Arrow table (Spark >= 4: ``toArrow``)."""
    table: pa.Table = frame.toArrow()
    return table


def s3a_options(offline_url: str) -> dict[str, str]:
    """Spark session settings (``spark.hadoop.fs.s3a.*``) to read an ``s3://`` offline store
    with Hadoop's S3A connector: endpoint, region, path style, TLS. Credentials are left to
    the AWS default chain (environment, profile, instance role), as for fti itself.

    >>> builder = SparkSession.builder                                       # doctest: +SKIP
    >>> for k, v in s3a_options("s3://bucket/offline?endpoint=http://minio:9000").items():
    ...     builder = builder.config(k, v)                                    # doctest: +SKIP
    """
    return S3Location.parse(offline_url).spark_options()


def delta_files(
    path: str, *, version: int | None = None, storage_options: dict[str, str] | None = None
) -> tuple[list[str], pa.Schema, int]:
    """The data files, Arrow schema and version of a Delta table (latest or ``version``).

    For a table on S3 (``s3://``, opened with ``storage_options``) the files come back as
    ``s3a://`` URIs, the scheme Spark's S3A connector reads.
    """
    try:
        dt = DeltaTable(path, version=version, storage_options=storage_options)
    except TableNotFoundError:
        raise NotFoundError(f"No Delta table at {path!r}.") from None
    features = dt.protocol().writer_features or []
    if "deletionVectors" in features:
        # Deleted rows would live in side files that a plain Parquet read does not apply.
        raise ValidationError(
            f"The Delta table at {path!r} uses deletion vectors, which Spark cannot apply "
            "without Delta Lake's jars. Rewrite it without them (fti never writes them)."
        )
    schema = pa.schema(dt.schema().to_arrow())
    files = list(dt.file_uris())
    if is_s3(path):
        files = ["s3a" + f[2:] if f.startswith("s3://") else f for f in files]
    return files, schema, int(dt.version())


def _spark_type(t: pa.DataType) -> DataType:
    from pyspark.sql import types as st

    if pa.types.is_boolean(t):
        return st.BooleanType()
    if pa.types.is_int8(t):
        return st.ByteType()
    if pa.types.is_int16(t):
        return st.ShortType()
    if pa.types.is_int32(t):
        return st.IntegerType()
    if pa.types.is_int64(t):
        return st.LongType()
    if pa.types.is_float32(t):
        return st.FloatType()
    if pa.types.is_float64(t):
        return st.DoubleType()
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return st.StringType()
    if pa.types.is_timestamp(t):
        return st.TimestampType() if t.tz is not None else st.TimestampNTZType()
    if pa.types.is_date(t):
        return st.DateType()
    raise ValidationError(f"Arrow type {t} has no Spark equivalent in fti.")


def spark_schema(schema: pa.Schema) -> StructType:
    """The Spark schema of an fti table (fti's dtypes only)."""
    from pyspark.sql import types as st

    return st.StructType([st.StructField(f.name, _spark_type(f.type), True) for f in schema])


class SparkEngine:
    """Reads Delta tables into Spark and brings Spark frames back as Arrow."""

    name = "spark"

    def __init__(self, session: SparkSession) -> None:
        self.spark = session

    def to_arrow(self, frame: Any) -> pa.Table:
        return spark_to_arrow(frame)

    def read_table(
        self,
        path: str,
        *,
        version: int | None = None,
        storage_options: dict[str, str] | None = None,
    ) -> DataFrame:
        """A Delta table version as a Spark DataFrame: its current files, read as Parquet with
        the table's schema (so files from before a column was added read that column as null).
        A table on S3 is read through ``s3a://`` (the session needs :func:`s3a_options`).
        """
        files, schema, _ = delta_files(path, version=version, storage_options=storage_options)
        struct = spark_schema(schema)
        if not files:
            return self.spark.createDataFrame([], struct)
        return self.spark.read.schema(struct).parquet(*files)

    def query(
        self,
        sql: str,
        *,
        params: Sequence[Any] = (),
        relations: Mapping[str, Any] | None = None,
    ) -> pa.Table:
        """Run Spark SQL over named relations (Spark DataFrames, or Arrow tables sent to Spark)
        registered as temporary views for this statement; the result comes back as Arrow.
        View names must be unique per concurrent statement (Spark's temp views are
        session-wide). The session's time zone should be UTC
        (``spark.sql.session.timeZone``)."""
        views: list[str] = []
        try:
            for name, relation in (relations or {}).items():
                frame = (
                    self.spark.createDataFrame(relation)
                    if isinstance(relation, pa.Table)
                    else relation
                )
                frame.createOrReplaceTempView(name)
                views.append(name)
            return spark_to_arrow(self.spark.sql(sql, args=list(params)))
        finally:
            for name in views:
                self.spark.catalog.dropTempView(name)


def spark_session(engine: Any) -> Any:
    """None for DuckDB; the SparkSession to use for ``engine="spark"`` or a session given."""
    if engine is None or engine == "duckdb":
        return None
    if engine == "spark":
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise MissingDependencyError("pyspark", "spark", 'engine="spark"') from None
        active = SparkSession.getActiveSession()
        if active is not None:
            return active
        return (
            SparkSession.builder.master("local[*]")
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate()
        )
    if hasattr(engine, "sql") and hasattr(engine, "createDataFrame"):
        return engine
    raise ValidationError(
        f"Unknown engine {engine!r}: use 'duckdb' (default), 'spark' or a SparkSession."
    )
