"""A whole store with offline tables and artifacts on S3 (moto): every write path works there.

The write-path tests of the embedded store run again here, unchanged, with ``fs`` overridden to
an S3-backed store: inserts and corrections, add_features, delete_rows, read modes, training
dataset splits, model artifacts, prediction-log groups. The tests below them check what only S3
has: nothing lands in the local root, ``fti doctor`` names the credential source only.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

import fti
from s3_server import S3Server

sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))

# The embedded store's tests, collected again in this module with the S3 ``fs`` below.
from test_feature_groups import (
    test_add_features_in_place,
    test_correction_wins_and_older_never_overwrites,
    test_delete_rows_offline_and_online,
    test_empty_insert_writes_nothing,
    test_insert_read_and_online,
    test_rebuild_online_equals_before,
    test_start_end_filter,
    test_time_travel_by_version,
)
from test_lifecycle import (
    test_deleting_a_view_keeps_its_groups_and_takes_its_prediction_log,
)
from test_model_registry import test_versions_latest_and_unknown
from test_training_datasets import fv, test_time_split_fits_on_train_only

pytestmark = pytest.mark.integration

__all__ = [
    "fv",
    "test_add_features_in_place",
    "test_correction_wins_and_older_never_overwrites",
    "test_delete_rows_offline_and_online",
    "test_deleting_a_view_keeps_its_groups_and_takes_its_prediction_log",
    "test_empty_insert_writes_nothing",
    "test_insert_read_and_online",
    "test_rebuild_online_equals_before",
    "test_start_end_filter",
    "test_time_split_fits_on_train_only",
    "test_time_travel_by_version",
    "test_versions_latest_and_unknown",
]


def s3_urls(server: S3Server, bucket: str) -> dict[str, str]:
    return {
        "offline": server.url(bucket, "team/offline"),
        "artifacts": server.url(bucket, "team/artifacts"),
    }


@pytest.fixture
def fs(tmp_path: Path, s3_server: S3Server, s3_bucket: str) -> Iterator[fti.FeatureStore]:
    """A store whose offline tables and artifacts live in a fresh S3 bucket."""
    store = fti.connect(tmp_path / "store", **s3_urls(s3_server, s3_bucket))
    yield store
    store.close()


def _objects(server: S3Server, bucket: str, prefix: str) -> list[str]:
    import boto3

    client = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1")
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_offline_tables_and_artifacts_land_in_the_bucket_not_the_root(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lifecycle_world import build

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fti-unique-secret-4711")
    fs = fti.connect(tmp_path / "store", **s3_urls(s3_server, s3_bucket))
    world = build(fs)
    assert len(world.flights.read()) == 40
    world.mv.load()  # the artifact comes back from the bucket, sha256-verified
    local = sorted(p.name for p in fs.config.root.iterdir())
    assert "offline" not in local
    assert "artifacts" not in local
    offline = _objects(s3_server, s3_bucket, "team/offline/")
    artifacts = _objects(s3_server, s3_bucket, "team/artifacts/")
    assert any(k.startswith("team/offline/flights_v1/_delta_log/") for k in offline)
    assert any(k.endswith(".parquet") for k in offline)
    assert any(k.startswith("team/artifacts/models/") for k in artifacts), artifacts
    # The registry (records, run records, lineage) never holds a credential.
    fs.close()
    assert b"fti-unique-secret-4711" not in (fs.config.root / "registry.db").read_bytes()
    fs = fti.connect(tmp_path / "store", **s3_urls(s3_server, s3_bucket))

    # Deleting a group removes its table from the bucket.
    fs.delete_feature_group("other", version=1)
    assert _objects(s3_server, s3_bucket, "team/offline/other_v1/") == []
    fs.close()


def test_doctor_names_the_credential_source_not_the_values(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from fti.cli.app import app

    monkeypatch.setenv("FTI_HOME", str(tmp_path / "store"))
    monkeypatch.setenv("FTI_OFFLINE", s3_server.url(s3_bucket, "o"))
    monkeypatch.setenv("FTI_ARTIFACTS", s3_server.url(s3_bucket, "a"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFTITESTKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fti-test-secret-value")
    monkeypatch.setenv("COLUMNS", "300")
    out = CliRunner().invoke(app, ["doctor"])
    assert out.exit_code == 0, out.output
    assert "S3ArtifactStore" in out.output
    assert "credentials: environment" in out.output
    assert "AKIAFTITESTKEY" not in out.output
    assert "fti-test-secret-value" not in out.output


@fti.feature_pipeline
def load_from_s3(fs: fti.FeatureStore, url: str) -> None:
    fti.record_input_file(url)
    fs.feature_group("raw_counts", primary_key=["k"]).insert(
        pa.table({"k": pa.array([1, 2], pa.int64()), "n": pa.array([3, 4], pa.int64())})
    )


def test_lineage_records_an_s3_input_file_by_etag_and_size(
    fs: fti.FeatureStore, s3_server: S3Server, s3_bucket: str
) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1")
    client.put_object(Bucket=s3_bucket, Key="raw/counts.csv", Body=b"k,n\n1,3\n2,4\n")
    etag = client.head_object(Bucket=s3_bucket, Key="raw/counts.csv")["ETag"].strip('"')
    url = s3_server.url(s3_bucket, "raw/counts.csv")
    assert fti.record_input_file(url) == etag  # outside a run: just the digest
    fti.run_pipeline(load_from_s3, fs=fs, params={"url": url})
    files = fs.lineage(fs.get_feature_group("raw_counts", version=1)).upstream("file")
    assert [f.name for f in files] == [f"s3://{s3_bucket}/raw/counts.csv"]  # no options
    assert files[0].info()["etag"] == etag
    assert files[0].info()["size"] == 12
    assert "etag" in files[0].label()
    with pytest.raises(fti.NotFoundError, match="does not exist"):
        fti.record_input_file(s3_server.url(s3_bucket, "raw/missing.csv"))


def test_stream_events_and_checkpoint_on_s3(
    fs: fti.FeatureStore, s3_server: S3Server, s3_bucket: str
) -> None:
    from datetime import UTC, datetime, timedelta
    from typing import Any

    from fti.backends.streams.memory import ListSource

    t0 = datetime(2024, 1, 1, tzinfo=UTC)

    @fti.stream_pipeline(
        feature_group="taps",
        key=["user"],
        event_time="ts",
        event_id="id",
        schema={"user": "string", "id": "int64", "ts": "timestamp", "ms": "int64"},
        aggregations=[fti.Aggregation("ms", "sum", window=timedelta(minutes=1), name="total")],
    )
    def taps(event: dict[str, Any]) -> dict[str, Any]:
        return event

    events = [{"user": "a", "id": i, "ts": (t0 + i * timedelta(seconds=1)).isoformat(), "ms": "1"}
              for i in range(5)]  # fmt: skip
    taps.run(fs, source=ListSource(events), idle_timeout=0.05)
    assert fs.get_feature_group("taps", version=1).read_online([{"user": "a"}])[0]["total"] == 5
    keys = _objects(s3_server, s3_bucket, "team/offline/")
    assert any(k.startswith("team/offline/taps_events_v1/_delta_log/") for k in keys)
    assert any(k.startswith("team/offline/taps_v1/") and k.endswith(".parquet") for k in keys)
    # The same events again: deduplicated by event id, the checkpoint says where it was.
    taps.run(fs, source=ListSource(events), idle_timeout=0.05)
    assert fs.get_feature_group("taps", version=1).read_online([{"user": "a"}])[0]["total"] == 5
    assert not (fs.config.root / "offline").exists()


def test_a_missing_bucket_is_a_readable_backend_error(
    tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from fti.backends.resolver import open_artifacts
    from fti.cli.app import app

    urls = s3_urls(s3_server, "no-such-bucket-fti")
    fs = fti.connect(tmp_path / "store", **urls)
    fg = fs.feature_group("g", primary_key=["k"])
    with pytest.raises(fti.BackendUnavailableError, match=r"NoSuchBucket.*credentials"):
        fg.insert(pa.table({"k": pa.array([1], pa.int64())}))
    fs.close()
    src = tmp_path / "a.bin"
    src.write_bytes(b"x")
    with pytest.raises(fti.BackendUnavailableError, match="NoSuchBucket"):
        open_artifacts(urls["artifacts"]).put("a.bin", src)

    monkeypatch.setenv("FTI_HOME", str(tmp_path / "store"))
    monkeypatch.setenv("FTI_OFFLINE", urls["offline"])
    monkeypatch.setenv("FTI_ARTIFACTS", urls["artifacts"])
    monkeypatch.setenv("COLUMNS", "300")
    out = CliRunner().invoke(app, ["doctor"])
    assert out.exit_code == 1
    assert out.output.count("FAIL") == 2  # offline and artifacts
    assert "Traceback" not in out.output
