"""``fti fg``: list, show and preview feature groups."""

from __future__ import annotations

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
        f"  rows written  {s['rows']:,} in {s['files']} file(s), {s['size_bytes']:,} bytes "
        "(corrections included)"
    )
    console.print(f"  history rows  {s['history_rows']:,} (one per key and event time)")
    console.print(f"  current rows  {s['current_rows']:,} (one per key)")
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
    latest: Annotated[
        bool, typer.Option("--latest", help="The current state: one row per key.")
    ] = False,
    include_superseded: Annotated[
        bool,
        typer.Option(
            "--all",
            "--include-superseded",
            help="Every row ever written, corrections and their superseded rows included.",
        ),
    ] = False,
    root: store_option = None,
) -> None:
    """Show the last rows of the corrected history (one row per key and event time), the
    current state (--latest), every row written (--all), or the online row of one key.

    Examples: fti fg preview weather -n 5 ;  fti fg preview weather --latest ;
    fti fg preview weather --all ;  fti fg preview weather:1 --online origin=JFK
    """
    if latest and include_superseded:
        raise typer.BadParameter("--latest and --all exclude each other; pass one of them.")
    fs = open_store(root)
    n, v = parse_name_version(name)
    fg = fs.get_feature_group(n, version=v)
    if online:
        key = parse_key_values(online, {k: fg.schema[k] for k in fg.primary_key})
        frame = fg.read_online([key], format="pandas")
        mode, caption = " (online)", None
    else:
        rows = fg.read(latest=latest, include_superseded=include_superseded)
        frame = rows.tail(limit)
        if latest:
            mode, what = " (current)", "current rows (one per key)"
        elif include_superseded:
            mode, what = " (all rows)", "rows written"
        else:
            mode, what = "", "rows of the corrected history (one per key and event time)"
        caption = f"last {len(frame):,} of {len(rows):,} {what}"
    table = Table(title=f"{fg.name} v{fg.version}{mode}", caption=caption)
    for col in frame.columns:
        table.add_column(str(col))
    for row in frame.itertuples(index=False):
        table.add_row(*("" if x is None else str(x) for x in row))
    console.print(table)


@app.command()
def compact(
    name: Annotated[str, typer.Argument(help="NAME or NAME:VERSION (default: latest).")],
    vacuum: Annotated[
        bool,
        typer.Option(
            "--vacuum",
            help="Then delete files only old versions need (see --retain-versions).",
        ),
    ] = False,
    retain_versions: Annotated[
        int,
        typer.Option(
            help="With --vacuum: how many latest table versions stay readable (versions "
            "recorded by training datasets are always kept).",
        ),
    ] = 10,
    root: store_option = None,
) -> None:
    """Rewrite a feature group's small offline files into big ones (no rows change).

    Inserts compact by themselves past FTI_COMPACT_FILES files (default 256; 0: never).

    Example: fti fg compact weather:1 --vacuum --retain-versions 20
    """
    fs = open_store(root)
    n, v = parse_name_version(name)
    fg = fs.get_feature_group(n, version=v)
    with console.status(f"Compacting {fg.name} v{fg.version} ..."):
        report = fg.compact(vacuum=vacuum, retain_versions=retain_versions)
    console.print(str(report))
