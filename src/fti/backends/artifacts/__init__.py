"""Artifact stores: immutable files (models, reports) addressed by key, verified by sha256."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["ArtifactRef", "ArtifactStore", "sha256_file"]


@dataclass(frozen=True)
class ArtifactRef:
    """Where an artifact is and what it must hash to."""

    key: str
    sha256: str
    size: int


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks: the digest every store records and
    checks, so a reference written by one store verifies against any other."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ArtifactStore(Protocol):
    """Write-once files with integrity checks."""

    url: str

    def put(self, key: str, source: Path) -> ArtifactRef:
        """Copy a file in; returns its reference (sha256 and size)."""

    def fetch(self, ref: ArtifactRef, dest: Path) -> Path:
        """Copy the artifact to ``dest`` after verifying its sha256; IntegrityError if not."""

    def delete(self, key: str) -> None:
        """Remove an artifact."""

    def ping(self) -> None:
        """Reach the service (for ``fti doctor``): one cheap request; BackendUnavailableError
        (or the driver's error) if it cannot be reached."""
