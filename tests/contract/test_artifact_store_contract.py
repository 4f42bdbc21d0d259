"""The contract every artifact store passes: a local folder and an S3 bucket (moto)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fti.backends.artifacts import ArtifactRef, ArtifactStore
from fti.backends.artifacts.local import sha256_file
from fti.backends.resolver import open_artifacts
from fti.errors import IntegrityError, NotFoundError, ValidationError


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return open_artifacts(f"file://{tmp_path / 'artifacts'}")
    server = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    return open_artifacts(server.url(bucket, "team/artifacts"))


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_put_then_fetch_round_trips_with_sha256(store: ArtifactStore, tmp_path: Path) -> None:
    src = _file(tmp_path, "model.bin", b"\x00weights\xff" * 1000)
    ref = store.put("models/churn/1/model.bin", src)
    assert ref == ArtifactRef("models/churn/1/model.bin", sha256_file(src), src.stat().st_size)
    out = store.fetch(ref, tmp_path / "out.bin")
    assert out.read_bytes() == src.read_bytes()


def test_fetch_with_wrong_sha256_raises_and_leaves_no_file(
    store: ArtifactStore, tmp_path: Path
) -> None:
    ref = store.put("a/b.bin", _file(tmp_path, "b.bin", b"original"))
    # What a changed object looks like to a reader: the recorded digest no longer matches.
    store.put("a/b.bin", _file(tmp_path, "c.bin", b"tampered"))
    with pytest.raises(IntegrityError, match="sha256"):
        store.fetch(ref, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()


def test_fetch_missing_raises_not_found(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="missing"):
        store.fetch(ArtifactRef("nope/x.bin", "0" * 64, 1), tmp_path / "out.bin")


def test_delete_removes_and_is_idempotent(store: ArtifactStore, tmp_path: Path) -> None:
    ref = store.put("d/e.bin", _file(tmp_path, "e.bin", b"x"))
    store.delete("d/e.bin")
    store.delete("d/e.bin")
    with pytest.raises(NotFoundError):
        store.fetch(ref, tmp_path / "out.bin")


@pytest.mark.parametrize("key", ["../escape.bin", "/abs.bin", ".hidden/x", ""])
def test_bad_keys_are_rejected(store: ArtifactStore, tmp_path: Path, key: str) -> None:
    with pytest.raises(ValidationError, match="Invalid artifact key"):
        store.put(key, _file(tmp_path, "f.bin", b"x"))


def test_empty_file(store: ArtifactStore, tmp_path: Path) -> None:
    ref = store.put("empty.bin", _file(tmp_path, "empty.bin", b""))
    assert ref.size == 0
    assert store.fetch(ref, tmp_path / "out.bin").read_bytes() == b""


def test_ping_reaches_the_store(store: ArtifactStore, tmp_path: Path) -> None:
    store.ping()
    if store.url.startswith("file://"):
        import shutil

        shutil.rmtree(store.url.removeprefix("file://"))
        with pytest.raises(NotFoundError, match="does not exist"):
            store.ping()
