"""Delta Lake offline store on a local folder (``deltalake``), scanned through Arrow datasets."""

from __future__ import annotations

import fcntl
import json
import random
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote, urlparse

from fti._internal.error_translation import engine_errors
from fti.backends.offline import TableStats
from fti.backends.offline.delta_log import has_commits, log_stats
from fti.errors import NotFoundError, ValidationError

if TYPE_CHECKING:  # imported where used: listing tables (fti fg list) needs neither
    import pyarrow as pa
    import pyarrow.dataset as ds
    from deltalake import DeltaTable

__all__ = ["DeltaOfflineStore"]

# Big row groups keep scans fast. Snappy (the Delta and Spark default) rather than zstd: the
# point-in-time join decodes these files on its critical path, and measured on
# benchmarks/training_data.py zstd made the same query 1.05-1.18x slower; its 1M-row activity
# table is 52 MB instead of 49 MB.
_COMPRESSION: Final = "SNAPPY"
# Appends are blind (they read nothing), so a commit that lost a race is simply retried at the
# next version: delta-rs retries internally, and we retry the whole write on top of that.
_COMMIT_RETRIES = 50
_WRITE_ATTEMPTS = 5
# Written next to the table by vacuum: which versions still have their files. Delta's vacuum
# never deletes files whose name starts with an underscore.
_RETENTION = "_fti_retention.json"


class DeltaOfflineStore:
    """One Delta table per feature group version under a base folder."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.base = Path(urlparse(url).path)
        self.base.mkdir(parents=True, exist_ok=True)
        # One DeltaTable per table, brought up to date incrementally (reading only new log
        # entries) instead of re-opened for every write; the lock keeps its version consistent
        # between threads.
        self._tables: dict[str, DeltaTable] = {}
        self._lock = threading.RLock()

    def _latest(self, table: str) -> DeltaTable:
        dt = self._tables.get(table)
        if dt is None:
            dt = self._tables[table] = self._open(table)
        else:
            dt.update_incremental()
        return dt

    def path(self, table: str) -> str:
        return str(self.base / table)

    def _open(self, table: str, version: int | None = None) -> DeltaTable:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            return DeltaTable(self.path(table), version=version)
        except TableNotFoundError:
            raise NotFoundError(
                f"Offline table {table!r} does not exist under {self.base}."
            ) from None

    def exists(self, table: str) -> bool:
        return table in self._tables or has_commits(self.path(table))

    @engine_errors("creating offline table {}", name_arg=1)
    def create(self, table: str, schema: pa.Schema) -> int:
        from deltalake import DeltaTable

        if table in self._tables:
            return int(self._tables[table].version())
        if not self.exists(table):
            # Processes creating the same table at once take turns (a file lock next to it):
            # unlocked, the loser of the race to write version 0 committed its creation again
            # as version 1, one version more than the inserts made.
            lock_path = self.base / f".{table}.create.lock"
            with lock_path.open("a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    if not self.exists(table):
                        DeltaTable.create(self.path(table), schema, mode="ignore")
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
        return self.version(table)

    @engine_errors("appending to offline table {}", name_arg=1)
    def append(
        self, table: str, data: pa.Table, *, metadata: Mapping[str, str] | None = None
    ) -> int:
        from deltalake import CommitProperties, WriterProperties, write_deltalake
        from deltalake.exceptions import CommitFailedError

        writer = WriterProperties(compression=_COMPRESSION)
        commit = CommitProperties(
            max_commit_retries=_COMMIT_RETRIES,
            custom_metadata=dict(metadata) if metadata else None,
        )
        with self._lock:
            for attempt in range(_WRITE_ATTEMPTS):
                dt = self._latest(table)
                try:
                    write_deltalake(
                        dt,
                        data,
                        mode="append",
                        schema_mode="merge",
                        writer_properties=writer,
                        commit_properties=commit,
                    )
                except CommitFailedError:
                    if attempt == _WRITE_ATTEMPTS - 1:
                        raise
                    time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))  # noqa: S311
                    continue
                # Writing through the DeltaTable object leaves it at the version this commit
                # created, even when another writer committed in between.
                return int(dt.version())
        raise AssertionError("unreachable")

    @engine_errors("adding columns to offline table {}", name_arg=1)
    def add_columns(self, table: str, fields: Sequence[pa.Field]) -> int:
        from deltalake.schema import Field as DeltaField

        dt = self._open(table)
        dt.alter.add_columns([DeltaField.from_arrow(f) for f in fields])
        return int(dt.version())

    @engine_errors("deleting rows of offline table {}", name_arg=1)
    def delete(self, table: str, predicate: str) -> tuple[int, int]:
        dt = self._open(table)
        metrics = dt.delete(predicate)
        return int(dt.version()), int(metrics.get("num_deleted_rows", 0) or 0)

    @engine_errors("reading a commit of offline table {}", name_arg=1)
    def added_rows(self, table: str, version: int) -> pa.Table | None:
        """Rows that commit ``version`` added, read from the files its log entry names.

        None when the commit also removed data rows (or its log entry is gone): a caller that
        mirrors the table must then rebuild from a full snapshot.
        """
        log = Path(self.path(table)) / "_delta_log" / f"{version:020d}.json"
        try:
            lines = log.read_text().splitlines()
        except FileNotFoundError:
            return None
        paths: list[str] = []
        for line in lines:
            if not line.strip():
                continue
            action = json.loads(line)
            if "remove" in action and action["remove"].get("dataChange", True):
                return None
            add = action.get("add")
            if add is not None and add.get("dataChange", True):
                paths.append(str(Path(self.path(table)) / unquote(add["path"])))
        if not all(Path(p).exists() for p in paths):
            return None  # removed by a vacuum: the caller rebuilds from the latest snapshot
        import pyarrow as pa
        import pyarrow.dataset as ds

        schema = self._open(table, version=version).schema().to_arrow()
        schema = pa.schema(schema)
        if not paths:
            return schema.empty_table()
        return ds.dataset(paths, format="parquet", schema=schema).to_table()

    def file_count(self, table: str) -> int:
        """Data files of the latest version (what a full read opens)."""
        with self._lock:
            return len(self._latest(table).file_uris())

    def compact(self, table: str) -> tuple[int, int, int]:
        """Rewrite small files into big ones, one commit that changes no rows (its actions
        say ``dataChange: false``); returns (files before, files after, new version)."""
        from deltalake import CommitProperties, WriterProperties
        from deltalake.exceptions import CommitFailedError

        with self._lock:
            for attempt in range(_WRITE_ATTEMPTS):
                dt = self._latest(table)
                before = len(dt.file_uris())
                try:
                    dt.optimize.compact(
                        writer_properties=WriterProperties(compression=_COMPRESSION),
                        commit_properties=CommitProperties(max_commit_retries=_COMMIT_RETRIES),
                    )
                except CommitFailedError:  # a conflicting commit (e.g. a delete): retry
                    if attempt == _WRITE_ATTEMPTS - 1:
                        raise
                    time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))  # noqa: S311
                    continue
                dt.update_incremental()
                # A checkpoint at the compaction: opening the table then reads one small
                # Parquet file instead of replaying the log of every small commit (with its
                # thousands of add and remove actions).
                dt.create_checkpoint()
                return before, len(dt.file_uris()), int(dt.version())
        raise AssertionError("unreachable")

    def vacuum(self, table: str, keep_versions: Sequence[int]) -> int:
        """Delete files no version in ``keep_versions`` (nor any later one) needs; returns
        how many. Reading any other version afterwards raises NotFoundError."""
        from deltalake import CommitProperties

        with self._lock:
            dt = self._latest(table)
            latest = int(dt.version())
            keep = sorted({v for v in keep_versions if 0 <= v <= latest} | {latest})
            # Not a "full" vacuum: files no log entry names (an insert's new files, before its
            # commit lands) are left alone; only files the log removed are deleted.
            removed = dt.vacuum(
                retention_hours=0,
                dry_run=False,
                enforce_retention_duration=False,
                full=False,
                commit_properties=CommitProperties(max_commit_retries=_COMMIT_RETRIES),
                keep_versions=keep,
            )
            old = self._retention(table)
            readable = sorted(set(keep) & (set(old["kept"]) | set(range(old["since"], latest + 1))))
            record = {
                "since": latest,
                "kept": readable,
                "vacuumed_at": datetime.now(UTC).isoformat(),
            }
            path = Path(self.path(table)) / _RETENTION
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(record))
            tmp.replace(path)
            return len(removed)

    def _retention(self, table: str) -> dict[str, Any]:
        try:
            record: dict[str, Any] = json.loads((Path(self.path(table)) / _RETENTION).read_text())
        except FileNotFoundError:
            return {"since": 0, "kept": [], "vacuumed_at": None}
        return record

    def _check_readable(self, table: str, version: int) -> None:
        r = self._retention(table)
        if version >= r["since"] or version in r["kept"]:
            return
        raise NotFoundError(
            f"Version {version} of table {table!r} was removed by a vacuum on "
            f"{r['vacuumed_at']}; readable versions: {r['kept']} and {r['since']} or later. "
            "Read one of those, or keep more versions next time (fg.compact(vacuum=True, "
            "retain_versions=N))."
        )

    def commit_metadata(self, table: str, key: str) -> dict[str, int]:
        """``{value: version}`` of the commits whose metadata carries ``key``."""
        if not self.exists(table):
            return {}
        out: dict[str, int] = {}
        for entry in self._open(table).history():
            value = entry.get(key)
            if value is not None:
                out[str(value)] = int(entry["version"])
        return out

    @engine_errors("reading the history of offline table {}", name_arg=1)
    def history(self, table: str, *, limit: int = 20) -> list[dict[str, Any]]:
        out = []
        skip = {"version", "timestamp", "operation", "operationParameters", "operationMetrics"}
        with self._lock:  # the cached table, brought up to date (no replay of the whole log)
            entries = self._latest(table).history(max(1, limit))
        for entry in entries:
            metrics = entry.get("operationMetrics") or {}
            added = metrics.get("num_added_rows", metrics.get("numOutputRows"))
            out.append(
                {
                    "version": int(entry["version"]),
                    "timestamp": datetime.fromtimestamp(entry["timestamp"] / 1000, UTC),
                    "operation": entry.get("operation"),
                    "rows_added": None if added is None else int(added),
                    "metadata": {
                        k: v for k, v in entry.items() if k not in skip and not isinstance(v, dict)
                    },
                }
            )
        return out

    @engine_errors("reading the version of offline table {}", name_arg=1)
    def version(self, table: str) -> int:
        with self._lock:
            return int(self._latest(table).version())

    @engine_errors("reading offline table {}", name_arg=1)
    def dataset(
        self, table: str, *, version: int | None = None, as_of: datetime | None = None
    ) -> tuple[ds.Dataset, int]:
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise ValidationError(f"The 'version' parameter must be an int. Got {version!r}.")
        if version is None and as_of is None:
            with self._lock:  # the cached table, brought up to date from the new log entries
                dt = self._latest(table)
                return dt.to_pyarrow_dataset(), int(dt.version())
        # Check the bounds against the latest version before loading: deltalake replays the log
        # up to the version asked for (a huge one hangs) and overflows on a negative one.
        dt = self._open(table)
        if version is not None and not 0 <= version <= dt.version():
            raise NotFoundError(
                f"Table {table!r} has no version {version}; versions are 0 to {dt.version()}."
            )
        if version is not None:
            self._check_readable(table, version)
            if version != dt.version():
                dt.load_as_version(version)
        if as_of is not None:
            if as_of.tzinfo is None:
                raise ValidationError(
                    f"as_of={as_of!r} is naive; pass a timezone-aware datetime, e.g. "
                    "datetime(..., tzinfo=timezone.utc)."
                )
            first = dt.history()[-1]
            if as_of.timestamp() * 1000 < first["timestamp"]:
                raise NotFoundError(
                    f"Table {table!r} did not exist at {as_of.isoformat()}; it was created at "
                    f"{datetime.fromtimestamp(first['timestamp'] / 1000, UTC).isoformat()}."
                )
            dt.load_as_version(as_of)
            self._check_readable(table, int(dt.version()))
        return dt.to_pyarrow_dataset(), int(dt.version())

    @engine_errors("reading the statistics of offline table {}", name_arg=1)
    def stats(self, table: str) -> TableStats:
        fast = log_stats(self.path(table))
        if fast is not None:
            return fast
        dt = self._open(table)
        actions = dt.get_add_actions(flatten=True)
        rows = sum(n or 0 for n in actions.column("num_records").to_pylist())
        size = sum(n or 0 for n in actions.column("size_bytes").to_pylist())
        last = dt.history(1)[0]
        return TableStats(
            version=int(dt.version()),
            rows=int(rows),
            files=actions.num_rows,
            size_bytes=size,
            last_commit=datetime.fromtimestamp(last["timestamp"] / 1000, UTC),
            last_operation=last.get("operation"),
        )

    def drop(self, table: str) -> None:
        with self._lock:
            self._tables.pop(table, None)
        shutil.rmtree(self.path(table), ignore_errors=True)
        (self.base / f".{table}.create.lock").unlink(missing_ok=True)
