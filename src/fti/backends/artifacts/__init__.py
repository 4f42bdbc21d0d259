"""Artifact stores: immutable files (models, reports) addressed by key, verified by sha256."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["ArtifactRef", "ArtifactStore"]


@dataclass(frozen=True)
class ArtifactRef:
    """Where an artifact is and what it must hash to."""

    key: str
    sha256: str
    size: int


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
