"""Delta Lake offline store (``deltalake``) on a local folder or under an ``s3://`` prefix,
scanned through Arrow datasets.

On S3, delta-rs commits a log entry with a conditional put (``If-None-Match: *``), so of two
writers racing for one version exactly one wins and the other retries; servers without
conditional puts take ``commit_lock=registry`` instead (see ``fti._internal.s3_location``).
Compaction's retention record (``_fti_retention.json``) is kept for local tables only.
"""

from __future__ import annotations

import fcntl
import json
import random
import shutil
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager as ContextManager
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import unquote, urlparse

from fti._internal.error_translation import engine_errors
from fti._internal.s3_location import S3Location, is_s3
from fti.backends.offline import TableStats
from fti.backends.offline.delta_log import has_commits, log_stats
from fti.errors import NotFoundError, ValidationError

if TYPE_CHECKING:  # imported where used: listing tables (fti fg list) needs neither
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs
    from deltalake import DeltaTable

__all__ = ["CommitLock", "DeltaOfflineStore"]

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


class CommitLock(Protocol):
    """Mutual exclusion per table across processes (for object stores without conditional
    puts): every commit to ``name`` runs inside ``hold(name)``."""

    def hold(self, name: str) -> ContextManager[None]:
        """Hold the lock for ``name`` for the duration of the block."""


class DeltaOfflineStore:
    """One Delta table per feature group version under a base folder or ``s3://`` prefix."""

    def __init__(self, url: str, *, commit_lock: CommitLock | None = None) -> None:
        self.url = url
        self.s3 = S3Location.parse(url) if is_s3(url) else None
        # Connection options only; deltalake reads credentials from the AWS chain itself.
        self._options = self.s3.delta_options() if self.s3 is not None else None
        self._commit_lock = commit_lock
        self.base = Path(urlparse(url).path)
        if self.s3 is None:
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
        """The table's location: a local path, or an ``s3://`` URI (see ``storage_options``)."""
        if self.s3 is not None:
            return self.s3.uri(table)
        return str(self.base / table)

    @property
    def storage_options(self) -> dict[str, str] | None:
        """What deltalake (or another Delta reader) needs besides :meth:`path` to open a table;
        None for a local folder. Never holds credentials."""
        return dict(self._options) if self._options is not None else None

    def _where(self) -> str:
        return self.s3.uri() if self.s3 is not None else str(self.base)

    def _open(self, table: str, version: int | None = None) -> DeltaTable:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            return DeltaTable(self.path(table), version=version, storage_options=self._options)
        except TableNotFoundError:
            raise NotFoundError(
                f"Offline table {table!r} does not exist under {self._where()}."
            ) from None

    @engine_errors("looking up offline table {}", name_arg=1)
    def exists(self, table: str) -> bool:
        if table in self._tables:
            return True
        if self.s3 is None:
            return has_commits(self.path(table))  # reads the log folder: no deltalake import
        from deltalake import DeltaTable

        return bool(DeltaTable.is_deltatable(self.path(table), storage_options=self._options))

    def ping(self) -> None:
        """Reach the storage (for ``fti doctor``): on S3 one listing request under the prefix;
        BackendUnavailableError if the bucket, endpoint or credentials are wrong."""
        if self.s3 is not None:
            self.exists(".fti-doctor-probe")

    def _committing(self, table: str) -> ContextManager[None]:
        """Around each commit: the registry lock when configured, else nothing (conditional
        puts or the local file system's atomic create make a lost race a retry)."""
        return self._commit_lock.hold(table) if self._commit_lock is not None else nullcontext()

    @contextmanager
    def _creating(self, table: str) -> Iterator[None]:
        if self.s3 is not None:
            with self._committing(table):
                yield
            return
        # Processes creating the same table at once take turns (a file lock next to it):
        # unlocked, the loser of the race to write version 0 committed its creation again
        # as version 1, one version more than the inserts made.
        lock_path = self.base / f".{table}.create.lock"
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @engine_errors("creating offline table {}", name_arg=1)
    def create(self, table: str, schema: pa.Schema) -> int:
        from deltalake import CommitProperties, DeltaTable
        from deltalake.exceptions import CommitFailedError

        if table in self._tables:
            return int(self._tables[table].version())
        if not self.exists(table):
            with self._creating(table):
                if not self.exists(table):
                    try:
                        DeltaTable.create(
                            self.path(table),
                            schema,
                            mode="ignore",
                            storage_options=self._options,
                            # a creation that lost the race for version 0 must fail, not retry
                            # itself as version 1 (a second creation commit)
                            commit_properties=CommitProperties(max_commit_retries=0),
                        )
                    except CommitFailedError:
                        # On S3 the loser of a creation race fails its conditional put of
                        # version 0: the winner's table is the one we wanted.
                        if not self.exists(table):
                            raise
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
                    with self._committing(table):
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

        with self._committing(table):
            dt = self._open(table)
            dt.alter.add_columns([DeltaField.from_arrow(f) for f in fields])
        return int(dt.version())

    @engine_errors("deleting rows of offline table {}", name_arg=1)
    def delete(self, table: str, predicate: str) -> tuple[int, int]:
        with self._committing(table):
            dt = self._open(table)
            metrics = dt.delete(predicate)
        return int(dt.version()), int(metrics.get("num_deleted_rows", 0) or 0)

    @engine_errors("reading a commit of offline table {}", name_arg=1)
    def added_rows(self, table: str, version: int) -> pa.Table | None:
        """Rows that commit ``version`` added, read from the files its log entry names.

        None when the commit also removed data rows (or its log entry is gone): a caller that
        mirrors the table must then rebuild from a full snapshot.
        """
        if self.s3 is not None:
            return self._added_rows_s3(table, version)
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

    def _table_fs(self, table: str) -> pafs.FileSystem:
        """The table's folder as an Arrow file system (object storage through deltalake)."""
        import pyarrow.fs as pafs
        from deltalake.fs import DeltaStorageHandler

        return pafs.PyFileSystem(DeltaStorageHandler(self.path(table), self._options))

    def _added_rows_s3(self, table: str, version: int) -> pa.Table | None:
        import pyarrow as pa
        import pyarrow.dataset as ds

        fs = self._table_fs(table)
        try:
            with fs.open_input_stream(f"_delta_log/{version:020d}.json") as f:
                lines = f.read().decode().splitlines()
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
                paths.append(unquote(add["path"]))
        schema = pa.schema(self._open(table, version=version).schema().to_arrow())
        if not paths:
            return schema.empty_table()
        try:
            return ds.dataset(paths, format="parquet", schema=schema, filesystem=fs).to_table()
        except FileNotFoundError:
            return None  # removed by a vacuum: the caller rebuilds from the latest snapshot

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
            if self.s3 is None:
                path = Path(self.path(table)) / _RETENTION
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(record))
                tmp.replace(path)
            return len(removed)

    def _retention(self, table: str) -> dict[str, Any]:
        if self.s3 is not None:  # the retention record is kept for local tables only
            return {"since": 0, "kept": [], "vacuumed_at": None}
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

    @engine_errors("reading a preview of offline table {}", name_arg=1)
    def head(self, table: str, rows: int, *, files: int = 8) -> pa.Table:
        import pyarrow as pa
        import pyarrow.dataset as ds

        with self._lock:  # the cached table: its file list is in memory
            dt = self._latest(table)
            paths = dt.get_add_actions(flatten=True).column("path").to_pylist()[: max(1, files)]
            schema = pa.schema(dt.schema().to_arrow())
        if not paths:
            return schema.empty_table()
        if self.s3 is None:
            local = [str(Path(self.path(table)) / unquote(p)) for p in paths]
            return ds.dataset(local, format="parquet", schema=schema).head(max(0, rows))
        found = ds.dataset(
            [unquote(p) for p in paths], format="parquet", schema=schema,
            filesystem=self._table_fs(table),
        )  # fmt: skip
        return found.head(max(0, rows))

    @engine_errors("reading the statistics of offline table {}", name_arg=1)
    def stats(self, table: str) -> TableStats:
        fast = log_stats(self.path(table)) if self.s3 is None else None
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
        if self.s3 is not None:
            import pyarrow.fs as pafs

            fs = self._table_fs(table)
            every = pafs.FileSelector("", recursive=True, allow_not_found=True)
            for info in fs.get_file_info(every):
                if info.type == pafs.FileType.File:
                    fs.delete_file(info.path)
            return
        shutil.rmtree(self.path(table), ignore_errors=True)
        (self.base / f".{table}.create.lock").unlink(missing_ok=True)
