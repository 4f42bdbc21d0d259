"""``fti``: the command line. Each noun is a sub-app (``fti fg list``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fti.cli import fg as fg_cli
from fti.cli import fv as fv_cli
from fti.cli import lifecycle as lifecycle_cli
from fti.cli import models as models_cli
from fti.cli import monitor as monitor_cli
from fti.cli import online as online_cli
from fti.cli import pipelines as pipelines_cli
from fti.cli import serve as serve_cli
from fti.cli import stream as stream_cli
from fti.cli import td as td_cli
from fti.cli import token as token_cli
from fti.cli import ui as ui_cli
from fti.cli.options import console, emit_json, json_option, open_store, store_option
from fti.config import mask_url
from fti.errors import FtiError

__all__ = ["app", "main"]

app = typer.Typer(
    name="fti",
    help=(
        "fti: feature, training and inference pipelines around a feature store.\n\n"
        "Examples:\n\n"
        "  fti init                      # create ./.fti (embedded store, no servers)\n\n"
        "  fti fg list                   # feature groups\n\n"
        "  fti fg show weather:1         # schema, rows, latest commit\n\n"
        "  fti doctor                    # what is configured and reachable"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
app.add_typer(fg_cli.app, name="fg")
app.add_typer(fv_cli.app, name="fv")
app.add_typer(td_cli.app, name="td")
app.add_typer(models_cli.app, name="models")
for _noun, _noun_app in [
    ("fg", fg_cli.app),
    ("fv", fv_cli.app),
    ("td", td_cli.app),
    ("models", models_cli.app),
]:
    lifecycle_cli.add_commands(_noun_app, _noun)
app.add_typer(online_cli.app, name="online")
app.add_typer(monitor_cli.app, name="monitor")
pipelines_cli.register(app)
serve_cli.register(app)
ui_cli.register(app)
app.add_typer(token_cli.app, name="token")
app.add_typer(stream_cli.app, name="stream")


@app.command()
def init(root: Annotated[Path | None, typer.Argument(help="Folder for the store.")] = None) -> None:
    """Create an embedded store (default ./.fti, or $FTI_HOME).

    Example: fti init ./my-store
    """
    from fti.cli.doctor import checks

    fs = open_store(root)
    results = checks(fs)  # opening each part creates it (tables, files, folders)
    for part, url, _, good, detail in results:
        failure = "" if good else f"  [red]FAIL[/] {escape(detail)}"
        console.print(f"  {part:<9} {escape(url)}" + failure, highlight=False)
    if not all(good for *_, good, _ in results):
        raise typer.Exit(1)
    console.print(f"[green]Feature store ready[/] at {fs.config.root}")


@app.command()
def doctor(root: store_option = None, json_: json_option = False) -> None:
    """Show what is configured, where each setting came from, and whether it is reachable.
    Passwords in URLs are shown as ***.

    Examples: FTI_ONLINE=redis://127.0.0.1:6379/0 fti doctor ;  fti doctor --json
    """
    from fti.cli.doctor import checks

    fs = open_store(root)
    results = checks(fs)
    ok = all(good for *_, good, _ in results)
    if json_:
        emit_json(
            {
                "root": str(fs.config.root),
                "ok": ok,
                "parts": [
                    {"part": p, "url": u, "source": s, "ok": g, "detail": d}
                    for p, u, s, g, d in results
                ],
            }
        )
    else:
        table = Table(title=f"fti store at {escape(str(fs.config.root))}")
        for col in ("part", "url", "from", "status"):
            table.add_column(col)
        for part, url, source, good, detail in results:
            status = ("[green]ok[/] " if good else "[red]FAIL[/] ") + escape(detail)
            table.add_row(part, escape(url), source, status)
        console.print(table)
    if not ok:
        raise typer.Exit(1)


def main() -> None:
    """Entry point: run the app, printing fti errors without a traceback."""
    try:
        app()
    except FtiError as e:
        message = escape(mask_url(str(e)))
        # soft_wrap: one error is one line, also when stderr is a pipe (Rich wraps at 80)
        Console(stderr=True).print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
        sys.exit(2)
