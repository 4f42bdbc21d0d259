"""Offline stores: the full, versioned history of every feature group (the system of record).

Tables hold the user's columns plus ``_fti_seq`` (int64 ingestion order). Every write is one
atomic commit that returns the new table version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

from fti._internal.names import SEQ

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds

__all__ = ["SEQ", "OfflineStore", "TableStats", "local_files"]



@dataclass(frozen=True)
class TableStats:
    """Cheap facts about an offline table, read from its metadata."""

    version: int
    rows: int
    files: int
    size_bytes: int
    last_commit: datetime | None
    last_operation: str | None


class OfflineStore(Protocol):
    """Versioned, append-mostly tables addressed by name (``<fg>_v<version>``)."""

    url: str

    def exists(self, table: str) -> bool:
        """True if the table has been created."""

    def create(self, table: str, schema: pa.Schema) -> int:
        """Create an empty table (idempotent); returns its version."""

    def append(
        self, table: str, data: pa.Table, *, metadata: Mapping[str, str] | None = None
    ) -> int:
        """Append atomically; returns the version this commit created. ``metadata`` is stored
        with the commit (e.g. the insert id), readable with ``commit_metadata``."""

    def commit_metadata(self, table: str, key: str) -> dict[str, int]:
        """``{value: version}`` of the commits whose metadata carries ``key``."""

    def add_columns(self, table: str, fields: Sequence[pa.Field]) -> int:
        """Add nullable columns; returns the new version."""

    def delete(self, table: str, predicate: str) -> tuple[int, int]:
        """Delete rows matching a SQL predicate; returns (new version, rows deleted)."""

    def added_rows(self, table: str, version: int) -> pa.Table | None:
        """The rows commit ``version`` added; None if it also removed rows."""

    def file_count(self, table: str) -> int:
        """Data files of the latest version."""

    def compact(self, table: str) -> tuple[int, int, int]:
        """Rewrite small files into big ones in a commit that changes no rows; returns
        (files before, files after, new version)."""

    def vacuum(self, table: str, keep_versions: Sequence[int]) -> int:
        """Delete files only versions outside ``keep_versions`` need (the latest version is
        always kept); reading such a version afterwards raises NotFoundError."""

    def version(self, table: str) -> int:
        """The latest committed version."""

    def dataset(
        self, table: str, *, version: int | None = None, as_of: datetime | None = None
    ) -> tuple[ds.Dataset, int]:
        """A lazily scanned Arrow dataset of one table version, and that version."""

    def stats(self, table: str) -> TableStats:
        """Row count, files and last commit, from metadata only."""

    def head(self, table: str, rows: int, *, files: int = 8) -> pa.Table:
        """Up to ``rows`` rows of the latest version read from at most ``files`` of its data
        files: a preview that costs the same after 10 or 10,000 commits."""

    def history(self, table: str, *, limit: int = 20) -> list[dict[str, Any]]:
        """The newest ``limit`` commits, newest first: ``version``, ``timestamp`` (datetime),
        ``operation``, ``rows_added`` (None when the engine does not say) and ``metadata``
        (the commit's own keys, e.g. an insert id)."""

    def drop(self, table: str) -> None:
        """Delete the table and its files."""

    def path(self, table: str) -> str:
        """Where the table lives, for engines that read its format themselves (DuckDB over
        local Parquet files, Spark over Delta): a local folder path, or an ``s3://`` URI."""

    @property
    def storage_options(self) -> dict[str, str] | None:
        """What such an engine needs besides :meth:`path` to open a table in object storage
        (endpoint, region; never credentials); None for a local folder."""

    def ping(self) -> None:
        """Reach the service (for ``fti doctor``): one cheap request; BackendUnavailableError
        (or the driver's error) if it cannot be reached."""


def local_files(store: OfflineStore, table: str, dataset: object) -> list[str] | None:
    """The files of ``dataset`` (a Delta table version of ``store``) as local paths, or None if
    it is not a file dataset in a local folder (object storage, an in-memory table): DuckDB's
    own Parquet reader over local files is several times faster than scanning the dataset."""
    import pyarrow.dataset as ds  # not at import: it imports pandas (~0.3 s)

    if not isinstance(dataset, ds.FileSystemDataset):
        return None
    base = Path(store.path(table))
    out = []
    for name in dataset.files:
        path = base / name
        if not path.is_file():
            path = base / unquote(name)  # a partition value quoted in the file name
            if not path.is_file():
                return None
        out.append(str(path))
    return out
