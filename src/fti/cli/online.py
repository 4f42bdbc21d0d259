"""``fti online``: inspect and rebuild the online store from the offline tables."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

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
from fti.errors import BackendUnavailableError, ValidationError

if TYPE_CHECKING:
    from fti.definitions.feature_group import FeatureGroupSpec
    from fti.services.context import StoreContext

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
    from fti.services import feature_groups

    if bool(names) == all_:
        raise ValidationError(
            "Name the feature groups to rebuild (fti online rebuild weather:1) or pass --all."
        )
    fs = open_store(root)
    from fti.store import context_of
    ctx = context_of(fs)
    if all_:
        # deprecated groups still serve: they are rebuilt too
        all_specs = feature_groups.list_specs(ctx, include_deprecated=True)
        specs = [s for s in all_specs if s.online]
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
            keys = _rebuild_locked(ctx, spec)
        table.add_row(
            spec.name, str(spec.version), f"{keys:,}", f"{time.perf_counter() - start:.2f}"
        )
    console.print(table)


_LOCK_WAIT_SECONDS = 600.0


def _rebuild_locked(ctx: StoreContext, spec: FeatureGroupSpec) -> int:
    """Rebuild under the heal lock, so a server restoring the same table is not raced."""
    from fti.services import feature_groups, materialization

    table = feature_groups.online_table(spec)
    deadline = time.monotonic() + _LOCK_WAIT_SECONDS
    while True:
        with ctx.online.exclusive(table, seconds=materialization.HEAL_LOCK_SECONDS) as mine:
            if mine:
                return materialization.rebuild(ctx, spec)
        if time.monotonic() > deadline:
            raise BackendUnavailableError(
                f"Another process has been restoring {spec.name} v{spec.version} online for "
                f"{_LOCK_WAIT_SECONDS:.0f}s; run the rebuild again once it is done."
            )
        time.sleep(0.2)


@app.command()
def status(
    name: Annotated[str, typer.Argument(help="NAME or NAME:VERSION (default: latest).")],
    sample: Annotated[
        int,
        typer.Option(help="Look up this many random offline keys online (0: skip the check)."),
    ] = 1000,
    exact: Annotated[bool, typer.Option("--exact", help="Look up every offline key.")] = False,
    root: store_option = None,
    json_: json_option = False,
) -> None:
    """Keys held online, keys missing online, and offline versions not applied online.

    Missing keys are found by looking offline keys up online: a random sample of --sample
    keys (the size is printed), or every key with --exact.

    Examples: fti online status weather:1 --exact ;  fti online status weather --json
    """
    if sample < 0:
        raise ValidationError(f"--sample must be >= 0; got {sample}. Pass e.g. --sample 1000.")
    from fti.services import feature_groups, online_health

    fs = open_store(root)
    from fti.store import context_of
    ctx = context_of(fs)
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
                    "check": None,
                }
            )
            return
        console.print(f"{spec.name} v{spec.version}: not online (or no data yet)")
        return
    table = feature_groups.online_table(spec)
    applied = ctx.online.applied_versions(table)
    latest = ctx.offline.version(spec.key) if ctx.offline.exists(spec.key) else -1
    missing = [x for x in range(latest + 1) if x not in applied]
    check = None
    if exact or sample > 0:
        with console.status(f"Checking {spec.name} v{spec.version} keys online ..."):
            check = online_health.verify(ctx, spec, sample=None if exact else sample)
    keys = ctx.online.count(table)
    rebuild_hint = f"fti online rebuild {spec.name}:{spec.version}"
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
                "check": None if check is None else check.as_dict(),
            }
        )
        return
    console.print(f"[bold]{spec.name}[/] version {spec.version}  ({store_url})", highlight=False)
    console.print(f"  online keys          {keys:,}")
    console.print(f"  offline version      {latest}")
    console.print(
        "  missing versions     " + (f"{missing} ({rebuild_hint})" if missing else "none")
    )
    if check is None:
        return
    if not check.marker and check.offline_keys:
        console.print(
            f"  [red]marker missing[/]       the store lost this table's data ({rebuild_hint})"
        )
    how = (
        f"exact, all {check.checked:,} offline keys"
        if check.exact
        else f"sampled {check.checked:,} of {check.offline_keys:,} offline keys"
    )
    if check.missing:
        estimate = "" if check.exact else f", about {check.estimated_missing:,} in all"
        console.print(
            f"  [red]missing keys[/]         {check.missing:,} ({how}{estimate}); e.g. "
            f"{check.missing_examples} ({rebuild_hint})"
        )
    else:
        console.print(f"  missing keys         0 ({how})")
    if check.stale:
        console.print(f"  [red]stale keys[/]           {check.stale:,} older than offline ({how})")

