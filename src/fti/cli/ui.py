"""``fti ui``: the web UI (server-rendered pages under uvicorn)."""

from __future__ import annotations

from typing import Annotated

import typer

from fti.cli.options import console, open_store, store_option
from fti.cli.serve import is_loopback
from fti.errors import ConfigError, MissingDependencyError

__all__ = ["register", "ui"]


def ui(
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    auth: Annotated[
        bool,
        typer.Option(
            "--auth/--no-auth",
            help="Require a token (fti token create --scope read; admin to move aliases).",
        ),
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
    root: store_option = None,
) -> None:
    """Browse the store in a web browser: feature groups, views, models, runs, lineage, streams.

    Binds 127.0.0.1 unless --host says otherwise; any other address needs --auth. With --auth
    the browser asks for a token once and keeps it in a cookie.

    Example: fti ui --root .fti --port 8080
    """
    if not is_loopback(host) and not auth:
        raise ConfigError(
            f"Refusing to bind {host!r} without authentication: anyone who can reach it could "
            "read the whole catalog. Add --auth (and create a token with: fti token create "
            "--scope read), or bind 127.0.0.1."
        )
    try:
        import uvicorn

        from fti.ui.app import create_ui_app
    except ImportError:
        raise MissingDependencyError("uvicorn, jinja2", "serve", "fti ui") from None
    fs = open_store(root)
    if auth:
        from fti.services.tokens import list_tokens
        from fti.store import context_of

        if not [t for t in list_tokens(context_of(fs)) if not t.revoked]:
            console.print(
                "[yellow]warning:[/] --auth is on but no token exists; create one with: "
                "fti token create --scope read"
            )
    app = create_ui_app(fs, auth=auth)
    console.print(f"fti ui on http://{host}:{port}/ (auth {'on' if auth else 'off'}); Ctrl-C stops")
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
    finally:
        fs.close()


def register(app: typer.Typer) -> None:
    """Add ``fti ui`` to the CLI."""
    app.command("ui")(ui)
