"""Spark on S3 tables: the engine builds ``s3a://`` file URIs and S3A session options.

Spark's S3 connector jars (hadoop-aws) cannot be installed here, so no Spark session reads from
the bucket: a stand-in session records what the engine asks Spark to read, and the tables are
real Delta tables on the test S3 server (moto).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import fti
from fti.backends.compute.spark import SparkEngine, delta_files, s3a_options
from fti.backends.offline.delta import DeltaOfflineStore
from s3_server import S3Server

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a Spark session

pytest.importorskip("pyspark")


class _Reader:
    def __init__(self, calls: list[tuple[Any, tuple[str, ...]]]) -> None:
        self.calls = calls
        self._schema: Any = None

    def schema(self, struct: Any) -> _Reader:
        self._schema = struct
        return self

    def parquet(self, *paths: str) -> str:
        self.calls.append((self._schema, paths))
        return "frame"


class _Session:
    """Records ``spark.read.schema(...).parquet(*files)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, tuple[str, ...]]] = []

    @property
    def read(self) -> _Reader:
        return _Reader(self.calls)


def test_engine_reads_s3_tables_through_s3a_uris(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    fs = fti.connect(tmp_path / "store", offline=s3_server.url(s3_bucket, "team/offline"))
    fg = fs.feature_group("trips", primary_key=["id"])
    fg.insert(pa.table({"id": pa.array([1, 2], pa.int64()), "km": [1.5, 2.5]}))
    fg.insert(pa.table({"id": pa.array([3], pa.int64()), "km": [3.5]}))
    store = fs._ctx.offline
    assert isinstance(store, DeltaOfflineStore)
    path, options = store.path("trips_v1"), store.storage_options
    assert path == f"s3://{s3_bucket}/team/offline/trips_v1"
    assert options is not None
    assert options["AWS_ENDPOINT_URL"] == s3_server.endpoint
    assert not any("SECRET" in k or "ACCESS_KEY" in k for k in options)

    files, schema, version = delta_files(path, storage_options=options)
    assert version == 2
    assert len(files) == 2
    assert all(f.startswith(f"s3a://{s3_bucket}/team/offline/trips_v1/") for f in files)
    assert all(f.endswith(".parquet") for f in files)
    assert schema.names[:2] == ["id", "km"]
    older, _, _ = delta_files(path, version=1, storage_options=options)
    assert len(older) == 1

    session = _Session()
    SparkEngine(session).read_table(path, version=1, storage_options=options)  # type: ignore[arg-type]
    ((struct, read),) = session.calls
    assert list(read) == older
    assert [f.name for f in struct.fields][:2] == ["id", "km"]
    fs.close()


def test_s3a_session_options_follow_the_offline_url(monkeypatch: pytest.MonkeyPatch) -> None:
    # only the URL speaks here: CI exports FTI_S3_ENDPOINT for the test server
    for var in ("FTI_S3_ENDPOINT", "FTI_S3_PATH_STYLE", "FTI_S3_ALLOW_HTTP", "FTI_S3_REGION"):
        monkeypatch.delenv(var, raising=False)
    opts = s3a_options("s3://bkt/o?endpoint=http://127.0.0.1:9000&path_style=true&region=eu-west-1")
    assert opts["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    assert opts["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert opts["spark.hadoop.fs.s3a.endpoint.region"] == "eu-west-1"
    assert opts["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert "DefaultCredentialsProvider" in opts["spark.hadoop.fs.s3a.aws.credentials.provider"]
    aws = s3a_options("s3://bkt/o?region=us-west-2")
    assert "spark.hadoop.fs.s3a.endpoint" not in aws
    assert aws["spark.hadoop.fs.s3a.path.style.access"] == "false"
    assert not any("secret" in k.lower() or "access.key" in k for k in aws)
