"""``fti monitor``: list drift and skew monitors with their alert state, run one (exit 1 on
drift or skew, for CI), show a monitor's history."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from fti.cli.options import console, open_store, store_option
from fti.errors import ValidationError

__all__ = ["app"]

app = typer.Typer(
    help=(
        "Drift and skew monitors (create them in Python with fs.monitor(...)).\n\n"
        "Examples:\n\n"
        "  fti monitor list              # monitors, last run, ALERT / ok\n\n"
        "  fti monitor run amount_drift  # exit code 1 when a feature drifted\n\n"
        "  fti monitor show amount_drift --json\n\n"
        "  fti monitor delete amount_drift --yes"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)

json_option = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
yes_option = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask (required when stdin is not a terminal).")
]


def _state(run: dict[str, Any] | None) -> str:
    if run is None:
        return "never run"
    if run["alert"]:
        return "ALERT: " + ", ".join(run["drifted"])
    return "ok"


def _value(v: Any) -> str:
    return "-" if v is None else f"{v:.4g}"


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, allow_nan=False))


@app.command("list")
def list_(root: store_option = None, as_json: json_option = False) -> None:
    """List monitors with their source, schedule, last run and alert state.

    Example: fti monitor list --json
    """
    fs = open_store(root)
    rows: list[dict[str, Any]] = []
    for mon in fs.monitors():
        s = mon.spec
        last = mon.last_run()
        rows.append(
            {
                "name": s.name,
                "source": _source(s),
                "features": list(s.features),
                "schedule": s.schedule,
                "last_run": last["at"] if last else None,
                "runs": last["run"] if last else 0,
                "alert": bool(last and last["alert"]),
                "state": _state(last),
            }
        )
    if as_json:
        _echo_json(rows)
        return
    table = Table(title="Monitors")
    table.add_column("name", no_wrap=True)
    table.add_column("state", no_wrap=True)  # text, not only colour: ALERT / ok / never run
    for col in ("runs", "last run", "schedule", "source", "features"):
        table.add_column(col)
    for r in rows:
        state = f"[red]{r['state']}[/]" if r["alert"] else r["state"]
        table.add_row(
            r["name"],
            state,
            str(r["runs"]),
            r["last_run"] or "-",
            r["schedule"] or "-",
            r["source"],
            ", ".join(r["features"]),
        )
    console.print(table)


def _source(s: Any) -> str:
    version = "*" if s.source_version is None else s.source_version
    return f"{s.source_kind}:{s.source_name}:{version}"


def _print_skew(run: dict[str, Any]) -> None:
    summary = run["skew"]
    console.print(
        f"  checked {summary['checked']:,} of {summary['logged']:,} logged request row(s): "
        f"{summary['findings_total']:,} finding(s) in {summary['requests']:,} row(s)",
        highlight=False,
    )
    table = Table()
    for col in ("feature", "match", "mismatch", "missing online", "missing offline", "value"):
        table.add_column(col)
    for f in run["features"]:
        table.add_row(
            f["feature"],
            *(f"{f[k]:,}" for k in ("match", "mismatch", "missing_online", "missing_offline")),
            _value(f["value"]),
        )
    console.print(table)
    for f in summary["findings"][:10]:
        console.print(
            f"  {f['status']}: request {f['request_id']}#{f['position']} {f['feature']} "
            f"online={f['online']} offline={f['offline']}",
            highlight=False,
        )


def _print_run(run: dict[str, Any]) -> None:
    console.print(
        f"[bold]{run['monitor']}[/] run {run['run']} at {run['at']}: "
        + (f"[red]{_state(run)}[/]" if run["alert"] else _state(run)),
        highlight=False,
    )
    if "skew" in run:
        _print_skew(run)
        _print_webhook(run)
        return
    table = Table()
    for col in (
        "feature",
        "metric",
        "value",
        "threshold",
        "drifted",
        "n ref",
        "n detect",
        "nulls ref",
        "nulls detect",
    ):
        table.add_column(col)
    for f in run["features"]:
        table.add_row(
            f["feature"],
            f["metric"],
            _value(f["value"]),
            _value(f["threshold"]),
            "DRIFT" if f["drifted"] else "no",
            f"{f['n_ref']:,}",
            f"{f['n_detect']:,}",
            f"{f['null_fraction_ref']:.2%}",
            f"{f['null_fraction_detect']:.2%}",
        )
    console.print(table)
    _print_webhook(run)


def _print_webhook(run: dict[str, Any]) -> None:
    hook = run.get("webhook")
    if hook is not None:
        console.print(
            f"  webhook {hook['host']}: "
            + ("delivered" if hook["delivered"] else f"NOT delivered ({hook.get('error')})")
        )


@app.command("run")
def run_(
    name: Annotated[str, typer.Argument(help="Monitor name.")],
    root: store_option = None,
    as_json: json_option = False,
) -> None:
    """Run a monitor now and store the run. Exits 1 when a feature drifted (for CI), else 0.

    Example: fti monitor run amount_drift || echo "drift!"
    """
    fs = open_store(root)
    result = fs.monitor(name).run()
    if as_json:
        _echo_json(result)
    else:
        _print_run(result)
    if result["alert"]:
        raise typer.Exit(1)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Monitor name.")],
    root: store_option = None,
    as_json: json_option = False,
) -> None:
    """A monitor's definition and every stored run (one line per run and feature).

    Example: fti monitor show amount_drift --json
    """
    fs = open_store(root)
    mon = fs.monitor(name)
    runs = mon.runs()
    if as_json:
        _echo_json({"monitor": mon.spec.public_dict(), "runs": runs})
        return
    s = mon.spec
    ref = s.reference
    version = "(every version)" if s.source_version is None else f"v{s.source_version}"
    console.print(f"[bold]{s.name}[/]  {s.source_kind} {s.source_name!r} {version}")
    console.print(f"  features   {', '.join(s.features)}")
    if ref is not None:
        console.print(
            "  reference  "
            + (f"training dataset version {ref}" if isinstance(ref, int) else ref.describe())
        )
    else:
        console.print(f"  sample     {s.sample or 'all'} logged request(s) per run")
    console.print(f"  detection  {s.detection.describe()}")
    console.print(
        f"  metric     {s.metric} threshold {'default' if s.threshold is None else s.threshold}"
    )
    console.print(f"  schedule   {s.schedule or '-'}   webhook {'set' if s.webhook else '-'}")
    table = Table(title=f"{len(runs)} run(s)")
    for col in ("run", "at", "feature", "metric", "value", "threshold", "drifted"):
        table.add_column(col)
    for r in runs:
        for f in r["features"]:
            table.add_row(
                str(r["run"]),
                r["at"],
                f["feature"],
                f["metric"],
                _value(f["value"]),
                _value(f["threshold"]),
                "DRIFT" if f["drifted"] else "no",
            )
    console.print(table)


@app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="Monitor name.")],
    root: store_option = None,
    yes: yes_option = False,
) -> None:
    """Delete a monitor, its schedule and its stored runs.

    Example: fti monitor delete amount_drift --yes
    """
    fs = open_store(root)
    fs.monitor(name)  # a missing monitor fails before asking
    if not yes:
        if not sys.stdin.isatty():
            raise ValidationError(
                f"Refusing to delete monitor {name!r} without confirmation: stdin is not a "
                "terminal. Pass --yes to delete it."
            )
        if not typer.confirm(f"Delete monitor {name!r} and its runs?"):
            raise typer.Exit(1)
    for item in fs.delete_monitor(name):
        console.print(f"deleted {item}", highlight=False)
