"""``fti online``: inspect and rebuild the online store from the offline tables."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from fti.cli.options import (
    console,
    emit_json,
    json_option,
    open_store,
    parse_name_version,
    store_option,
)
from fti.config import mask_url
from fti.errors import ValidationError

__all__ = ["app"]

app = typer.Typer(
    help=(
        "The online store (latest row per key). "
        "Example: FTI_ONLINE=redis://127.0.0.1:6379/0 fti online rebuild weather:1"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command()
def rebuild(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="NAME or NAME:VERSION (default: latest); repeat for several."),
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Rebuild every online feature group version.")
    ] = False,
    root: store_option = None,
) -> None:
    """Rebuild online tables from the offline tables (the system of record).

    Use it after the online store lost its data (e.g. a Redis restarted empty): the result is
    the latest row per key of everything ever inserted, as before the loss.

    Examples: fti online rebuild weather:1 ;  fti online rebuild --all
    """
    from fti.services import feature_groups, materialization

    if bool(names) == all_:
        raise ValidationError(
            "Name the feature groups to rebuild (fti online rebuild weather:1) or pass --all."
        )
    fs = open_store(root)
    ctx = fs._ctx
    if all_:
        specs = [s for s in feature_groups.list_specs(ctx) if s.online]
    else:
        specs = []
        for text in names or []:
            name, version = parse_name_version(text)
            spec = feature_groups.get_spec(ctx, name, version)
            if not spec.online:
                raise ValidationError(
                    f"Feature group {spec.name!r} version {spec.version} is not online; there "
                    "is nothing to rebuild."
                )
            specs.append(spec)
    table = Table(title=f"Online rebuild ({mask_url(fs.config.online)})")
    for col in ("feature group", "version", "keys", "seconds"):
        table.add_column(col)
    for spec in specs:
        if not spec.has_schema or not ctx.offline.exists(spec.key):
            table.add_row(spec.name, str(spec.version), "0 (no data yet)", "-")
            continue
        start = time.perf_counter()
        with console.status(f"Rebuilding {spec.name} v{spec.version} ..."):
            keys = materialization.rebuild(ctx, spec)
        table.add_row(
            spec.name, str(spec.version), f"{keys:,}", f"{time.perf_counter() - start:.2f}"
        )
    console.print(table)


@app.command()
def status(
    name: Annotated[str, typer.Argument(help="NAME or NAME:VERSION (default: latest).")],
    root: store_option = None,
    json_: json_option = False,
) -> None:
    """Keys held online and whether the online table is behind the offline table.

    Examples: fti online status weather:1 ;  fti online status weather --json
    """
    from fti.services import feature_groups

    fs = open_store(root)
    ctx = fs._ctx
    n, v = parse_name_version(name)
    spec = feature_groups.get_spec(ctx, n, v)
    store_url = mask_url(fs.config.online)
    if not spec.online or not spec.has_schema:
        if json_:
            emit_json(
                {
                    "name": spec.name,
                    "version": spec.version,
                    "online_store": store_url,
                    "online": spec.online,
                    "online_keys": None,
                    "offline_version": None,
                    "missing_versions": [],
                }
            )
            return
        console.print(f"{spec.name} v{spec.version}: not online (or no data yet)")
        return
    table = feature_groups.online_table(spec)
    applied = ctx.online.applied_versions(table)
    latest = ctx.offline.version(spec.key) if ctx.offline.exists(spec.key) else -1
    missing = [x for x in range(latest + 1) if x not in applied]
    keys = ctx.online.count(table)
    if json_:
        emit_json(
            {
                "name": spec.name,
                "version": spec.version,
                "online_store": store_url,
                "online": True,
                "online_keys": keys,
                "offline_version": latest if latest >= 0 else None,
                "missing_versions": missing,
            }
        )
        return
    console.print(f"[bold]{spec.name}[/] version {spec.version}  ({store_url})", highlight=False)
    console.print(f"  online keys          {keys:,}")
    console.print(f"  offline version      {latest}")
    console.print(
        "  missing versions     "
        + (f"{missing} (fti online rebuild {spec.name}:{spec.version})" if missing else "none")
    )
