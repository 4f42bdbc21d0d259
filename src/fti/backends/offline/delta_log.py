"""Table facts read straight from a Delta table's JSON commit log.

Listing a store (``fti fg list``) needs each table's row count, files and last commit. The log's
``add`` actions carry the row count of each file (``stats.numRecords``), so for tables whose log
is still plain JSON this costs a few small file reads and no Arrow or deltalake at all. Anything
this reader does not understand (a checkpoint, a deletion vector, a file without statistics)
returns None and the caller asks deltalake instead.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from fti.backends.offline import TableStats

__all__ = ["has_commits", "log_stats"]

_COMMIT = re.compile(r"^(\d{20})\.json$")


def has_commits(table_path: str | Path) -> bool:
    """Is there a Delta table at ``table_path``: a log with a commit or a checkpoint? (A commit
    file appears whole: delta-rs writes it under a temporary name and renames it.)"""
    try:
        return any(
            _COMMIT.match(n) or n == "_last_checkpoint" or ".checkpoint." in n
            for n in (p.name for p in (Path(table_path) / "_delta_log").iterdir())
        )
    except (FileNotFoundError, NotADirectoryError):
        return False


def log_stats(table_path: str | Path) -> TableStats | None:
    """Version, rows, files, bytes and last commit of the Delta table at ``table_path``, or
    None when the JSON log alone cannot tell (the caller then opens the table)."""
    log = Path(table_path) / "_delta_log"
    try:
        names = [p.name for p in log.iterdir()]
    except FileNotFoundError:
        return None
    if any("checkpoint" in n for n in names):
        return None  # the state before the checkpoint is in Parquet
    versions = sorted(int(m.group(1)) for n in names if (m := _COMMIT.match(n)))
    if not versions or versions != list(range(versions[-1] + 1)):
        return None
    files: dict[str, tuple[int, int]] = {}
    last: dict[str, object] = {}
    for v in versions:
        last = {}
        for line in (log / f"{v:020d}.json").read_text().splitlines():
            if not line.strip():
                continue
            action = json.loads(line)
            if "add" in action:
                add = action["add"]
                stats = json.loads(add.get("stats") or "{}")
                if add.get("deletionVector") or "numRecords" not in stats:
                    return None
                files[add["path"]] = (int(stats["numRecords"]), int(add.get("size", 0)))
            elif "remove" in action:
                files.pop(action["remove"]["path"], None)
            elif "commitInfo" in action:
                last = action["commitInfo"]
    timestamp = last.get("timestamp")
    if not isinstance(timestamp, int):
        return None
    operation = last.get("operation")
    return TableStats(
        version=versions[-1],
        rows=sum(rows for rows, _ in files.values()),
        files=len(files),
        size_bytes=sum(size for _, size in files.values()),
        last_commit=datetime.fromtimestamp(timestamp / 1000, UTC),
        last_operation=operation if isinstance(operation, str) else None,
    )
