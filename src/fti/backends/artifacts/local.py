"""Artifacts in a local folder."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from fti.backends.artifacts import ArtifactRef
from fti.errors import IntegrityError, NotFoundError, ValidationError

__all__ = ["LocalArtifactStore", "sha256_file"]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class LocalArtifactStore:
    """Artifacts as files under a base folder; writes are atomic renames."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.base = Path(urlparse(url).path)
        self.base.mkdir(parents=True, exist_ok=True)

    def ping(self) -> None:
        """The base folder is there (a local folder needs no request)."""
        if not self.base.is_dir():
            raise NotFoundError(f"The artifact folder {self.base} does not exist any more.")

    def _path(self, key: str) -> Path:
        parts = PurePosixPath(key).parts
        if not parts or any(p in ("..", "/") or p.startswith(".") for p in parts):
            raise ValidationError(f"Invalid artifact key {key!r}: use a relative path.")
        return self.base.joinpath(*parts)

    def put(self, key: str, source: Path) -> ArtifactRef:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
        shutil.copyfile(source, tmp)
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        tmp.replace(dest)
        return ArtifactRef(key=key, sha256=sha256_file(dest), size=dest.stat().st_size)

    def fetch(self, ref: ArtifactRef, dest: Path) -> Path:
        src = self._path(ref.key)
        if not src.is_file():
            raise NotFoundError(f"Artifact {ref.key!r} is missing from {self.base}.")
        shutil.copyfile(src, dest)
        digest = sha256_file(dest)
        if digest != ref.sha256:
            dest.unlink(missing_ok=True)
            raise IntegrityError(
                f"Artifact {ref.key!r} failed its integrity check: sha256 {digest} != recorded "
                f"{ref.sha256}. The file was changed or corrupted; re-register it."
            )
        return dest

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        # Folders the key made (e.g. training_datasets/<view>/<id>/) go once empty; rmdir
        # refuses a folder another writer has just put a file into.
        for parent in path.parents:
            if parent == self.base or self.base not in parent.parents:
                break
            try:
                parent.rmdir()
            except OSError:
                break
