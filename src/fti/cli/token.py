"""``fti token``: create, list and revoke API tokens for ``fti serve --auth``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fti.cli.options import console, emit_json, json_option, open_store, store_option

__all__ = ["app"]

app = typer.Typer(
    help="API tokens for the model server. Example: fti token create --scope predict",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command()
def create(
    scope: Annotated[
        list[str] | None,
        typer.Option(
            help="predict (predictions), read (vectors, metrics) or admin; repeat for several "
            "(default: predict)."
        ),
    ] = None,
    description: Annotated[str, typer.Option(help="What the token is for.")] = "",
    root: store_option = None,
) -> None:
    """Create a token and print it once (only its sha256 is stored).

    Only the token goes to stdout (the explanation goes to stderr), so a script can capture
    it: TOKEN=$(fti token create --scope predict).

    Examples: fti token create --scope predict --description "checkout service" ;
    fti token create --scope predict --scope read
    """
    from fti.services.tokens import create_token
    from fti.store import context_of

    fs = open_store(root)
    token, info = create_token(context_of(fs), scope or ["predict"], description=description)
    Console(stderr=True).print(
        f"Token {info.id} (scope {info.scope}). It is shown only now; store it safely:",
        highlight=False,
    )
    # Plain print: no Rich markup or wrapping may touch the secret.
    typer.echo(token)


@app.command("list")
def list_(root: store_option = None, json_: json_option = False) -> None:
    """List tokens (ids, scopes, dates; never the tokens).

    Examples: fti token list ;  fti token list --json
    """
    from fti.services.tokens import list_tokens
    from fti.store import context_of

    fs = open_store(root)
    tokens = list_tokens(context_of(fs))
    if json_:
        emit_json(
            [
                {
                    "id": t.id,
                    "scopes": t.scope.split(),
                    "created_at": t.created_at,
                    "revoked": t.revoked,
                    "description": t.description,
                }
                for t in tokens
            ]
        )
        return
    table = Table(title="API tokens")
    for col in ("id", "scope", "created", "revoked", "description"):
        table.add_column(col)
    for t in tokens:
        table.add_row(t.id, t.scope, t.created_at, "yes" if t.revoked else "no", t.description)
    console.print(table)


@app.command()
def revoke(
    token_id: Annotated[str, typer.Argument(help="The id shown by fti token list.")],
    root: store_option = None,
) -> None:
    """Revoke a token; running servers stop accepting it within seconds.

    Example: fti token revoke 3f2a9c1b7d0e
    """
    from fti.services.tokens import revoke_token
    from fti.store import context_of

    fs = open_store(root)
    revoke_token(context_of(fs), token_id)
    console.print(f"Token {token_id} revoked.")
