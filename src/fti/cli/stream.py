"""``fti stream``: run streaming feature pipelines and show their progress."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from fti.cli.options import console, emit_json, json_option, open_store, store_option
from fti.config import mask_url
from fti.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from fti.pipelines.streaming import StreamPipeline

__all__ = ["app"]

app = typer.Typer(
    help="Streaming feature pipelines. Example: fti stream run pipelines.py:card_activity",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def load_pipeline(ref: str) -> StreamPipeline:
    """``FILE.py:NAME`` -> the ``StreamPipeline`` object ``NAME`` defined in ``FILE.py``."""
    from fti.pipelines.streaming import StreamPipeline

    file, sep, name = ref.rpartition(":")
    if not sep or not file or not name:
        raise ValidationError(
            f"Invalid pipeline reference {ref!r}: use FILE.py:PIPELINE, e.g. stream.py:cards."
        )
    path = Path(file).resolve()
    if not path.is_file():
        raise NotFoundError(f"Pipeline file {file!r} does not exist (resolved to {path}).")
    spec = importlib.util.spec_from_file_location(f"fti_stream_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ValidationError(f"Cannot import {file!r} as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))  # let the file import its siblings
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    obj = getattr(module, name, None)
    if not isinstance(obj, StreamPipeline):
        found = sorted(k for k, v in vars(module).items() if isinstance(v, StreamPipeline))
        raise NotFoundError(
            f"{file!r} has no stream pipeline {name!r}. Stream pipelines in it: {found}. "
            "Declare one with @fti.stream_pipeline(...)."
        )
    return obj


@app.command("run")
def run_(
    target: Annotated[str, typer.Argument(help="FILE.py:PIPELINE (an @fti.stream_pipeline).")],
    root: store_option = None,
    idle_timeout: Annotated[
        float | None, typer.Option(help="Stop after this many seconds without records.")
    ] = None,
    max_records: Annotated[int | None, typer.Option(help="Stop after this many records.")] = None,
    max_seconds: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
) -> None:
    """Consume the pipeline's source until SIGTERM / Ctrl-C (or a limit), keeping its feature
    group fresh online and offline. Restarts resume from the last checkpoint.

    Example: fti stream run examples/streaming/card_activity.py:card_activity
    """
    pipeline = load_pipeline(target)
    fs = open_store(root)
    console.print(f"Streaming [bold]{pipeline.name}[/] into {fs.config.root} (Ctrl-C stops)")
    report = pipeline.run(
        fs, idle_timeout=idle_timeout, max_records=max_records, max_seconds=max_seconds
    )
    console.print(str(report), highlight=False)


@app.command()
def backfill(
    target: Annotated[str, typer.Argument(help="FILE.py:PIPELINE (an @fti.stream_pipeline).")],
    events: Annotated[
        Path | None,
        typer.Option(help="Parquet/CSV of raw records (default: the pipeline's events table)."),
    ] = None,
    root: store_option = None,
) -> None:
    """Compute the pipeline's aggregates in batch (DuckDB) and write them.

    Example: fti stream backfill stream.py:card_activity --events history.parquet
    """
    data: Any = None
    if events is not None:
        data = read_events(events)
    pipeline = load_pipeline(target)
    fs = open_store(root)
    console.print(str(pipeline.backfill(fs, data)), highlight=False)


def read_events(path: Path) -> Any:
    """A Parquet or CSV file of raw records as an Arrow table; a clear error if it is missing or
    unreadable."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    if not path.is_file():
        where = "" if path.is_absolute() else f" (resolved to {path.resolve()})"
        raise NotFoundError(
            f"Events file {str(path)!r} does not exist{where}. Pass a Parquet or CSV file of "
            "raw records, or leave out --events to use the pipeline's events table."
        )
    try:
        return pcsv.read_csv(path) if path.suffix.lower() == ".csv" else pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        kind = "CSV" if path.suffix.lower() == ".csv" else "Parquet"
        raise ValidationError(
            f"Cannot read events file {str(path)!r} as {kind}: {e}. Pass a .parquet file or a "
            ".csv file with a header row."
        ) from None


def _watermark(wm: int | None) -> str | None:
    if wm is None:
        return None
    return datetime.fromtimestamp(wm / 1e6, UTC).isoformat(timespec="milliseconds")


def status_json(r: dict[str, Any]) -> dict[str, Any]:
    """The keys of ``fti stream status --json``, one object per pipeline."""
    c = r.get("counters", {})
    return {
        "pipeline": r["pipeline"],
        "status": r.get("status"),
        "lag": r.get("lag"),
        "events_per_second": r.get("throughput"),
        "last_checkpoint_at": r.get("last_checkpoint_at"),
        "records": c.get("records", 0),
        "duplicates": c.get("duplicates", 0),
        "late": c.get("late", 0),
        "invalid": c.get("invalid", 0),
        "quarantined": c.get("quarantined", 0),
        "watermark": _watermark(r.get("watermark")),
        "source": None if r.get("source") is None else mask_url(str(r["source"])),
        "last_error": None if not r.get("last_error") else mask_url(str(r["last_error"])),
    }


def _ago(iso: str | None) -> str:
    if not iso:
        return "-"
    seconds = (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds()
    return f"{iso[:19]}Z ({seconds:,.0f}s ago)"


@app.command()
def status(root: store_option = None, json_: json_option = False) -> None:
    """Lag, throughput, last checkpoint, and late, invalid and quarantined counts of every
    stream pipeline (quarantined: rows that failed the feature group's rules and were set aside).

    Examples: fti stream status ;  fti stream status --json
    """
    from fti.pipelines.streaming import statuses

    fs = open_store(root)
    rows = statuses(fs)
    if json_:
        emit_json([status_json(r) for r in rows])
        return
    if not rows:
        console.print("No stream pipelines have run in this store. Start one with fti stream run.")
        return
    table = Table(title="Stream pipelines")
    for col in (
        "pipeline",
        "status",
        "lag",
        "events/s",
        "last checkpoint",
        "records",
        "duplicates",
        "late",
        "invalid",
        "quarantined",
        "watermark",
        "source",
    ):
        table.add_column(col)
    for r in rows:
        c = r.get("counters", {})
        watermark = _watermark(r.get("watermark")) or "-"
        table.add_row(
            r["pipeline"],
            str(r.get("status", "-")),
            "-" if r.get("lag") is None else f"{r['lag']:,}",
            f"{r.get('throughput') or 0:,.0f}",
            _ago(r.get("last_checkpoint_at")),
            f"{c.get('records', 0):,}",
            f"{c.get('duplicates', 0):,}",
            f"{c.get('late', 0):,}",
            f"{c.get('invalid', 0):,}",
            f"{c.get('quarantined', 0):,}",
            watermark,
            mask_url(str(r.get("source", "-"))),
        )
    console.print(table)
    for r in rows:
        if r.get("last_error"):
            error = escape(mask_url(str(r["last_error"])))
            console.print(f"[red]{escape(r['pipeline'])}[/]: {error}", highlight=False)
