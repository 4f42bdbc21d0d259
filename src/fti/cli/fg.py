"""``fti fg``: list, show and preview feature groups."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from fti.cli import fg_quality
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


app.command("validations")(fg_quality.validations)
app.command("quarantine")(fg_quality.quarantine)
