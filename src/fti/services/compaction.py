"""Compaction and vacuum of a feature group's offline table (the small-files problem).

Every insert is one Delta commit with its own Parquet file(s); after thousands of small
inserts (streams, prediction logs, hourly jobs) a full read opens thousands of files.
Compaction rewrites them into a few big files in one commit that changes no rows: every
version stays readable (time travel is unaffected) and the online store's catch-up skips it
(the commit adds no rows). Compaction runs by itself after an insert once the table has more
than ``FTI_COMPACT_FILES`` files (default 256; 0 turns it off).

Vacuum deletes the files only old versions need. **Retention rule:** it keeps the latest
``retain_versions`` table versions readable (default 10) and every version a training dataset
of any feature view recorded for this group; ``fg.read(version=v)`` of any other version then
fails with an error naming the readable ones. Training datasets stay reproducible either way:
their rows are stored as Parquet artifacts, and the versions they record are kept on top.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from fti.definitions.feature_group import FeatureGroupSpec
from fti.errors import ConfigError, ValidationError
from fti.services import materialization
from fti.services.context import StoreContext

__all__ = [
    "DEFAULT_AUTO_FILES",
    "DEFAULT_RETAIN_VERSIONS",
    "CompactionReport",
    "auto_compact",
    "auto_threshold",
    "compact",
    "pinned_versions",
]

DEFAULT_AUTO_FILES = 256
DEFAULT_RETAIN_VERSIONS = 10
ENV_AUTO_FILES = "FTI_COMPACT_FILES"
_TRAINING_DATASET = "training_dataset"  # services.training_datasets.KIND (not imported: cycle)


@dataclass(frozen=True)
class CompactionReport:
    """What a compaction (and vacuum) did."""

    feature_group: str
    version: int
    files_before: int
    files_after: int
    table_version: int  # the compaction commit (no rows changed)
    vacuumed_files: int | None  # None: no vacuum ran
    kept_versions: list[int]  # readable after the vacuum (empty: no vacuum ran)
    seconds: float

    def __str__(self) -> str:
        text = (
            f"Compacted {self.feature_group} v{self.version}: {self.files_before} -> "
            f"{self.files_after} files (table version {self.table_version})"
        )
        if self.vacuumed_files is not None:
            kept = self.kept_versions
            shown = kept if len(kept) <= 12 else [*kept[:3], "...", *kept[-3:]]
            text += f"; vacuum deleted {self.vacuumed_files} files, readable versions {shown}"
        return text + f" in {self.seconds:.2f}s"


def auto_threshold() -> int:
    """Files after which an insert compacts (``FTI_COMPACT_FILES``; 0 = never)."""
    raw = os.environ.get(ENV_AUTO_FILES, "").strip()
    if not raw:
        return DEFAULT_AUTO_FILES
    if not raw.isdigit():
        raise ConfigError(
            f"{ENV_AUTO_FILES}={raw!r} is not a number of files. Set it to e.g. 256, or 0 to "
            "turn automatic compaction off."
        )
    return int(raw)


def pinned_versions(ctx: StoreContext, spec: FeatureGroupSpec) -> set[int]:
    """Table versions of this group that a training dataset recorded."""
    out = set()
    for record in ctx.registry.records(_TRAINING_DATASET):
        versions = record.body.get("table_versions")
        if isinstance(versions, dict):
            v = versions.get(spec.key)
            if isinstance(v, int):
                out.add(v)
    return out


def compact(
    ctx: StoreContext,
    spec: FeatureGroupSpec,
    *,
    vacuum: bool = False,
    retain_versions: int = DEFAULT_RETAIN_VERSIONS,
) -> CompactionReport:
    """Compact the offline table; with ``vacuum=True`` delete files of versions outside the
    retention rule (module docstring)."""
    if retain_versions < 1:
        raise ValidationError(
            f"retain_versions must be >= 1; got {retain_versions}. It is how many of the latest "
            "table versions stay readable after the vacuum."
        )
    started = time.perf_counter()
    if not ctx.offline.exists(spec.key):
        raise ValidationError(
            f"Feature group {spec.name!r} version {spec.version} has no data yet; nothing to "
            "compact."
        )
    before, after, table_version = ctx.offline.compact(spec.key)
    removed = None
    kept: list[int] = []
    if vacuum:
        latest = ctx.offline.version(spec.key)
        keep = set(range(max(0, latest - retain_versions + 1), latest + 1))
        keep |= pinned_versions(ctx, spec)
        removed = ctx.offline.vacuum(spec.key, sorted(keep))
        kept = sorted(keep)
    # Mark the new commits (which add no rows) applied online, so status shows no gap.
    materialization.catch_up(ctx, spec)
    return CompactionReport(
        spec.name,
        spec.version,
        before,
        after,
        table_version,
        removed,
        kept,
        time.perf_counter() - started,
    )


def auto_compact(ctx: StoreContext, spec: FeatureGroupSpec) -> CompactionReport | None:
    """Compact (no vacuum) if the table passed the file threshold; called after inserts."""
    threshold = auto_threshold()
    if threshold <= 0 or ctx.offline.file_count(spec.key) <= threshold:
        return None
    return compact(ctx, spec)
