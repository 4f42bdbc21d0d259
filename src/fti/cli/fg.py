"""``fti fg``: list, show and preview feature groups, and their statistics."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from fti.cli.options import console, open_store, parse_key_values, parse_name_version, store_option

__all__ = ["app"]

app = typer.Typer(
    help="Feature groups. Example: fti fg show weather:1",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("list")
def list_(root: store_option = None) -> None:
    """List feature groups with their keys, row counts and online flag.

    Example: fti fg list
    """
    fs = open_store(root)
    table = Table(title="Feature groups")
    for col in ("name", "version", "primary key", "event time", "online", "rows", "description"):
        table.add_column(col)
    for fg in fs.feature_groups():
        s = fg.stats()
        table.add_row(
            fg.name,
            str(fg.version),
            ", ".join(fg.primary_key),
            fg.event_time or "-",
            "yes" if fg.spec.online else "no",
            f"{s['rows']:,}",
            fg.spec.description,
        )
    console.print(table)


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="NAME or NAME:VERSION (default: latest).")],
    root: store_option = None,
) -> None:
    """Schema, row count, latest commit and online rows of a feature group.

    Example: fti fg show weather:1
    """
    fs = open_store(root)
    n, v = parse_name_version(name)
    fg = fs.get_feature_group(n, version=v)
    s = fg.stats()
    spec = fg.spec
    console.print(f"[bold]{spec.name}[/] version {spec.version}  {spec.description}")
    console.print(f"  primary key   {', '.join(spec.primary_key)}")
    console.print(f"  event time    {spec.event_time or '-'}")
    console.print(
        f"  online        {'yes' if spec.online else 'no'}"
        + (f" (ttl {spec.ttl})" if spec.ttl else "")
    )
    console.print(
        f"  rows          {s['rows']:,} in {s['files']} file(s), {s['size_bytes']:,} bytes"
    )
    console.print(
        f"  table version {s['offline_version']}  last commit {s['last_commit']} "
        f"({s['last_operation']})"
    )
    if s["online_rows"] is not None:
        console.print(f"  online rows   {s['online_rows']:,}")
    schema = Table(title="Schema")
    schema.add_column("column")
    schema.add_column("dtype")
    schema.add_column("role")
    for c in spec.columns:
        role = (
            "key"
            if c.name in spec.primary_key
            else "event time"
            if c.name == spec.event_time
            else "feature"
        )
        schema.add_row(c.name, c.dtype, role)
    console.print(schema)


@app.command()
def preview(
    name: Annotated[str, typer.Argument(help="NAME or NAME:VERSION (default: latest).")],
    online: Annotated[
        list[str] | None,
        typer.Option("--online", help="KEY=VALUE (repeat for composite keys): read online."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Rows to show.")] = 10,
    root: store_option = None,
) -> None:
    """Show the latest offline rows, or the online row of one key.

    Examples: fti fg preview weather -n 5 ;  fti fg preview weather:1 --online origin=JFK
    """
    fs = open_store(root)
    n, v = parse_name_version(name)
    fg = fs.get_feature_group(n, version=v)
    if online:
        key = parse_key_values(online, {k: fg.schema[k] for k in fg.primary_key})
        frame = fg.read_online([key], format="pandas")
    else:
        frame = fg.read().tail(limit)
    table = Table(title=f"{fg.name} v{fg.version}" + (" (online)" if online else ""))
    for col in frame.columns:
        table.add_column(str(col))
    for row in frame.itertuples(index=False):
        table.add_row(*("" if x is None else str(x) for x in row))
    console.print(table)


def _parse_time(text: str | None, what: str) -> datetime | None:
    """An ISO 8601 time; a naive one is read as UTC (the CLI's only time zone)."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{what} {text!r} is not an ISO 8601 time; e.g. 2024-01-31 or 2024-01-31T12:00+00:00."
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@app.command()
def stats(
    name: Annotated[str, typer.Argument(help="NAME or NAME:VERSION (default: latest).")],
    start: Annotated[
        str | None, typer.Option("--start", help="Event-time window start (ISO 8601, UTC).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="Event-time window end, exclusive (ISO 8601).")
    ] = None,
    table_version: Annotated[
        int | None,
        typer.Option("--table-version", "--version", help="The table as of this table version."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    root: store_option = None,
) -> None:
    """Statistics of a feature group, merged from the profiles of its commits.

    Windows are rounded out to whole UTC days. Examples: fti fg stats weather:1 ;
    fti fg stats weather --start 2024-01-01 --end 2024-02-01 --json
    """
    fs = open_store(root)
    n, v = parse_name_version(name)
    fg = fs.get_feature_group(n, version=v)
    result = fg.statistics(
        start=_parse_time(start, "--start"), end=_parse_time(end, "--end"), version=table_version
    )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    window = ""
    if result.start or result.end:
        window = f", event time [{result.start or '…'}, {result.end or '…'})" + (
            " rounded out to whole UTC days" if result.rounded else ""
        )
    title = (
        f"{result.feature_group} v{result.version}: {result.rows:,} rows in "
        f"{result.commits} commit(s) up to table version {result.table_version}{window}"
    )
    table = Table(title=title)
    table.add_column("feature", no_wrap=True)
    for col in ("count", "nulls", "min", "max", "mean", "stddev", "p50", "distinct", "top"):
        table.add_column(col)
    for feature, s in result.features.items():
        quantiles = s.get("quantiles") or {}
        distinct = s.get("distinct")
        top = ", ".join(f"{t['value']} ({t['estimate']:,})" for t in (s.get("top") or [])[:3])
        table.add_row(
            feature,
            f"{s['count']:,}",
            f"{s['nulls']:,}",
            _fmt(s.get("min")),
            _fmt(s.get("max")),
            _fmt(s.get("mean")),
            _fmt(s.get("stddev")),
            _fmt(quantiles.get("p50")),
            f"~{distinct['estimate']:,.0f}" if distinct else "",
            top,
        )
    console.print(table)
    if any("quantiles" in s for s in result.features.values()):
        error = next(s["rank_error"] for s in result.features.values() if "rank_error" in s)
        console.print(f"Quantiles are within ±{error:.2%} in rank (KLL sketch).")


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
