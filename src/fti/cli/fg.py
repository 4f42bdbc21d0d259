"""``fti fg``: list, show and preview feature groups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from fti.cli.options import (
    console,
    emit_json,
    json_option,
    open_context,
    open_store,
    parse_key_values,
    parse_name_version,
    store_option,
)

if TYPE_CHECKING:
    from fti.definitions.feature_group import FeatureGroupSpec
    from fti.services.context import StoreContext

__all__ = ["app", "list_rows"]

app = typer.Typer(
    help="Feature groups. Example: fti fg show weather:1",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _spec_json(spec: FeatureGroupSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "version": spec.version,
        "primary_key": list(spec.primary_key),
        "event_time": spec.event_time,
        "online": spec.online,
        "ttl_seconds": None if spec.ttl is None else spec.ttl.total_seconds(),
        "description": spec.description,
    }


def list_rows(ctx: StoreContext) -> list[dict[str, Any]]:
    """One dict per feature group version (the keys of ``fti fg list --json``): read from the
    registry and the offline tables' metadata, without loading any data."""
    from fti.services import feature_groups

    rows = []
    for spec in feature_groups.list_specs(ctx):
        count = ctx.offline.stats(spec.key).rows if ctx.offline.exists(spec.key) else 0
        rows.append({**_spec_json(spec), "rows": count})
    return rows


@app.command("list")
def list_(root: store_option = None, json_: json_option = False) -> None:
    """List feature groups with their keys, row counts and online flag.

    Examples: fti fg list ;  fti fg list --json
    """
    ctx = open_context(root)
    try:
        rows = list_rows(ctx)
    finally:
        ctx.close()
    if json_:
        emit_json(rows)
        return
    table = Table(title="Feature groups")
    for col in ("name", "version", "primary key", "event time", "online", "rows", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["name"],
            str(r["version"]),
            ", ".join(r["primary_key"]),
            r["event_time"] or "-",
            "yes" if r["online"] else "no",
            f"{r['rows']:,}",
            r["description"],
        )
    console.print(table)


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="NAME or NAME:VERSION (default: latest).")],
    root: store_option = None,
    json_: json_option = False,
) -> None:
    """Schema, row count, latest commit and online rows of a feature group.

    Examples: fti fg show weather:1 ;  fti fg show weather --json
    """
    fs = open_store(root)
    n, v = parse_name_version(name)
    fg = fs.get_feature_group(n, version=v)
    s = fg.stats()
    spec = fg.spec
    if json_:
        emit_json(
            {
                **_spec_json(spec),
                **{k: s[k] for k in ("rows", "files", "size_bytes", "online_rows")},
                "offline_version": s["offline_version"],
                "last_commit": s["last_commit"],
                "last_operation": s["last_operation"],
                "columns": [
                    {"name": c.name, "dtype": c.dtype, "role": _role(spec, c.name)}
                    for c in spec.columns
                ],
            }
        )
        return
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
        schema.add_row(c.name, c.dtype, _role(spec, c.name))
    console.print(schema)


def _role(spec: FeatureGroupSpec, column: str) -> str:
    if column in spec.primary_key:
        return "key"
    return "event time" if column == spec.event_time else "feature"


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
