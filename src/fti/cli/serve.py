"""``fti serve``: the model server (FastAPI under uvicorn)."""

from __future__ import annotations

import gc
import ipaddress
import json
import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from fti.cli.options import console, open_store, store_option
from fti.errors import ConfigError, MissingDependencyError

__all__ = ["is_loopback", "register", "serve"]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    model: Annotated[str, typer.Option("--model", "-m", help="NAME, NAME@ALIAS or NAME:VERSION.")],
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    auth: Annotated[
        bool,
        typer.Option(
            "--auth/--no-auth",
            help="Require 'Authorization: Bearer <token>' (tokens: fti token create).",
        ),
    ] = False,
    allow_missing: Annotated[
        bool,
        typer.Option(
            help="Unknown entity keys give null features instead of 404 (a model that cannot "
            "take missing values answers 422 for them)."
        ),
    ] = False,
    log_predictions: Annotated[
        bool, typer.Option("--log/--no-log", help="Write prediction logs.")
    ] = True,
    read_timeout: Annotated[
        float,
        typer.Option(
            min=0.1,
            help="Seconds a request's headers, and then its body, may take to arrive; slower "
            "clients get 408 and are disconnected.",
        ),
    ] = 10.0,
    max_connections: Annotated[
        int,
        typer.Option(
            min=1,
            help="Open connections per worker; a request on a connection beyond them gets 503.",
        ),
    ] = 512,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    with_ui: Annotated[
        bool, typer.Option("--ui", help="Also serve the web UI under /ui (same auth).")
    ] = False,
    root: store_option = None,
) -> None:
    """Serve a registered model over HTTP: predictions, feature vectors, metrics.

    Binds 127.0.0.1 unless --host says otherwise; any other address needs --auth.
    SIGTERM (or Ctrl-C) finishes requests in flight and flushes the prediction log; workers
    also stop when this process is killed.

    Example: fti serve --model delays@production --port 8000 --ui
    """
    if not is_loopback(host) and not auth:
        raise ConfigError(
            f"Refusing to bind {host!r} without authentication: anyone who can reach it could "
            "read features and predictions. Add --auth (and create a token with: fti token "
            "create --scope predict), or bind 127.0.0.1."
        )
    if workers == 1:
        # No garbage collection while the server loads: app_from_env (in this process) turns it
        # back on, with what was loaded frozen out of its sight (fti.serving.app).
        gc.disable()
    # One request predicts a few rows: an OpenMP pool per worker only adds contention.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import uvicorn  # noqa: F401 - fail here with the install hint, not in a worker
    except ImportError:
        raise MissingDependencyError("uvicorn", "serve", "fti serve") from None
    fs = open_store(root)
    # Resolve the model here so a bad reference fails before any worker starts.
    from fti.serving.runtime import ModelRef

    ref = ModelRef.parse(model)
    mv = fs.models.get(ref.name, version=ref.version, alias=ref.alias)
    if auth:
        from fti.services.tokens import list_tokens
        from fti.store import context_of

        if not [t for t in list_tokens(context_of(fs)) if not t.revoked]:
            console.print(
                "[yellow]warning:[/] --auth is on but no token exists; create one with: "
                "fti token create --scope predict"
            )
    os.environ["FTI_SERVE_CONFIG"] = json.dumps(
        {
            "root": str(fs.config.root) if root is None else str(Path(root)),
            "model": str(ref),
            "auth": auth,
            "allow_missing": allow_missing,
            "log_predictions": log_predictions,
            "read_timeout": read_timeout,
            # workers (other processes) exit when this one dies, even by SIGKILL
            "supervisor_pid": os.getpid() if workers > 1 else None,
        }
    )
    console.print(
        f"Serving model [bold]{mv.name}[/] version {mv.version} on http://{host}:{port} "
        f"({workers} worker{'s' if workers > 1 else ''}, auth {'on' if auth else 'off'})"
        + (f"; web UI on http://{host}:{port}/ui/" if with_ui else "")
    )
    fs.close()
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it to the previous handler: make
    # that handler exit 0, so supervisors see a clean stop.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    from fti.serving.launch import run_uvicorn
    from fti.serving.timeouts import PROTOCOL

    run_uvicorn(
        # the UI sits above the serving layer: its factory builds the model app and mounts /ui
        "fti.ui.app:served_with_ui" if with_ui else "fti.serving.app:app_from_env",
        factory=True,
        http=PROTOCOL,  # uvicorn's HTTP protocol with a deadline for request headers
        # uvicorn answers 503 once open connections (the asking one included) reach the limit.
        limit_concurrency=max_connections + 1,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=30,
    )


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def register(app: typer.Typer) -> None:
    """Add ``fti serve`` to the CLI."""
    app.command("serve")(serve)
