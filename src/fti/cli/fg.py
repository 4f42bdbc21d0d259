"""``fti fg``: list, show and preview feature groups, and their statistics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from fti.cli import fg_quality
from fti.cli.options import (
    console,
    emit_json,
    json_option,
    open_context,
    open_store,
    parse_key_values,
    parse_name_version,
    parse_time,
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
        "tags": dict(spec.tags),
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
    ctx = open_context(root, read_only=True)
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
    if spec.tags:
        console.print(f"  tags          {', '.join(f'{k}={v}' for k, v in spec.tags)}")
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
    root: store_option = None,
    json_: json_option = False,
) -> None:
    """Statistics of a feature group, merged from the profiles of its commits.

    Windows are rounded out to whole UTC days. Examples: fti fg stats weather:1 ;
    fti fg stats weather --start 2024-01-01 --end 2024-02-01 --json
    """
    fs = open_store(root)
    n, v = parse_name_version(name)
    fg = fs.get_feature_group(n, version=v)
    result = fg.statistics(
        start=parse_time(start, "--start"), end=parse_time(end, "--end"), version=table_version
    )
    if json_:
        emit_json(result.to_dict())
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


app.command("validations")(fg_quality.validations)
app.command("quarantine")(fg_quality.quarantine)
