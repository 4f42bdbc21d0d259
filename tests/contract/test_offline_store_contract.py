"""The contract every offline store passes: Delta on a local folder, on S3 (moto) with the
server's conditional puts, and on S3 with the registry-held commit lock."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from fti.backends.offline import SEQ, OfflineStore
from fti.backends.resolver import open_offline
from fti.errors import NotFoundError

SCHEMA = pa.schema([("id", pa.int64()), ("x", pa.float64()), (SEQ, pa.int64())])


@pytest.fixture(params=["local", "s3", "s3-registry-lock"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> OfflineStore:
    registry = f"sqlite:///{tmp_path / 'registry.db'}"
    if request.param == "local":
        return open_offline(f"file://{tmp_path / 'offline'}", registry_url=registry)
    server = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    options = {"commit_lock": "registry"} if request.param == "s3-registry-lock" else {}
    return open_offline(server.url(bucket, "team/offline", **options), registry_url=registry)


def _batch(ids: list[int], seq0: int = 0) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "x": pa.array([float(i) / 2 for i in ids], pa.float64()),
            SEQ: pa.array(range(seq0, seq0 + len(ids)), pa.int64()),
        }
    )


def _rows(store: OfflineStore, table: str, **at: int) -> list[int]:
    dataset, _ = store.dataset(table, **at)  # type: ignore[arg-type]
    return sorted(dataset.to_table().column("id").to_pylist())


def test_create_is_idempotent_and_starts_empty(store: OfflineStore) -> None:
    assert not store.exists("t_v1")
    assert store.create("t_v1", SCHEMA) == 0
    assert store.create("t_v1", SCHEMA) == 0
    assert store.exists("t_v1")
    assert _rows(store, "t_v1") == []


def test_appends_make_versions_and_old_versions_stay_readable(store: OfflineStore) -> None:
    store.create("t_v1", SCHEMA)
    assert store.append("t_v1", _batch([1, 2])) == 1
    assert store.append("t_v1", _batch([3], seq0=2)) == 2
    assert store.version("t_v1") == 2
    assert _rows(store, "t_v1") == [1, 2, 3]
    assert _rows(store, "t_v1", version=1) == [1, 2]
    with pytest.raises(NotFoundError, match="no version 9"):
        store.dataset("t_v1", version=9)


def test_added_rows_are_the_rows_of_one_commit(store: OfflineStore) -> None:
    store.create("t_v1", SCHEMA)
    store.append("t_v1", _batch([1, 2]))
    store.append("t_v1", _batch([3], seq0=2))
    added = store.added_rows("t_v1", 2)
    assert added is not None
    assert added.column("id").to_pylist() == [3]
    assert store.added_rows("t_v1", 0) is not None
    assert store.added_rows("t_v1", 7) is None


def test_add_columns_and_delete(store: OfflineStore) -> None:
    store.create("t_v1", SCHEMA)
    store.append("t_v1", _batch([1, 2, 3]))
    version = store.add_columns("t_v1", [pa.field("y", pa.string())])
    assert version == 2
    dataset, _ = store.dataset("t_v1")
    assert "y" in dataset.schema.names
    version, deleted = store.delete("t_v1", "id = 2")
    assert (version, deleted) == (3, 1)
    assert _rows(store, "t_v1") == [1, 3]
    # The delete removed rows: a mirror must rebuild rather than replay it.
    assert store.added_rows("t_v1", 3) is None


def test_stats_from_metadata(store: OfflineStore) -> None:
    store.create("t_v1", SCHEMA)
    store.append("t_v1", _batch([1, 2, 3]))
    stats = store.stats("t_v1")
    assert (stats.version, stats.rows, stats.files) == (1, 3, 1)
    assert stats.size_bytes > 0


def test_drop_removes_the_table(store: OfflineStore) -> None:
    store.create("t_v1", SCHEMA)
    store.append("t_v1", _batch([1]))
    store.create("other_v1", SCHEMA)
    store.drop("t_v1")
    assert not store.exists("t_v1")
    assert store.exists("other_v1")
    store.drop("never_made_v1")  # dropping a missing table is a no-op
    # A table of the same name starts again from version 0.
    assert store.create("t_v1", SCHEMA) == 0
    assert _rows(store, "t_v1") == []


def test_missing_table_is_not_found(store: OfflineStore) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        store.dataset("ghost_v1")


def test_a_commit_never_overwrites_another_writers_log_entry(store: OfflineStore) -> None:
    """What makes concurrent writers safe: the next log entry is created only if absent
    (a conditional put on S3, an atomic no-replace rename locally). Another writer's entry
    squatting on the next version stays, and this commit lands after it."""
    store.create("t_v1", SCHEMA)
    store.append("t_v1", _batch([1]))
    squat = b'{"commitInfo":{"operation":"WRITE","squatter":true}}\n'
    entry = "_delta_log/00000000000000000002.json"
    if store.url.startswith("s3://"):
        import boto3

        from fti._internal.s3_location import S3Location

        loc = S3Location.parse(store.url)
        client = boto3.client("s3", endpoint_url=loc.endpoint, region_name=loc.region)
        client.put_object(Bucket=loc.bucket, Key=loc.key("t_v1", entry), Body=squat)

        def read() -> bytes:
            return bytes(
                client.get_object(Bucket=loc.bucket, Key=loc.key("t_v1", entry))["Body"].read()
            )
    else:
        path = Path(store.path("t_v1")) / entry  # type: ignore[attr-defined]
        path.write_bytes(squat)

        def read() -> bytes:
            return path.read_bytes()

    assert store.append("t_v1", _batch([2], seq0=1)) == 3
    assert read() == squat
    assert _rows(store, "t_v1") == [1, 2]


def test_path_and_storage_options_open_the_table_for_other_readers(store: OfflineStore) -> None:
    """What DuckDB (local Parquet files) and Spark (Delta) are handed to read a table
    themselves: the location and the options, never credentials."""
    from deltalake import DeltaTable

    store.create("t_v1", SCHEMA)
    version = store.append("t_v1", _batch([3, 1, 2]))
    path, options = store.path("t_v1"), store.storage_options
    if store.url.startswith("s3://"):
        assert path.startswith("s3://")
        assert options is not None
        assert not [k for k in options if "secret" in k.lower() or "token" in k.lower()]
    else:
        assert options is None
        assert (Path(path) / "_delta_log").is_dir()
    table = DeltaTable(path, version=version, storage_options=options).to_pyarrow_table()
    assert sorted(table.column("id").to_pylist()) == [1, 2, 3]
    store.ping()
