"""Shared CLI plumbing: the console, the --root and --json options, NAME[:VERSION] and
KEY=VALUE parsing.

Commands import the store (and with it pandas, Arrow, DuckDB) inside their bodies, so ``fti
--help`` and light commands start fast; ``benchmarks/cli_startup.py`` measures it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from fti.errors import ValidationError

if TYPE_CHECKING:
    from datetime import datetime

    from fti.services.context import StoreContext
    from fti.store import FeatureStore

__all__ = [
    "console",
    "emit_json",
    "json_option",
    "open_context",
    "open_store",
    "parse_key_values",
    "parse_name_version",
    "store_option",
]


def _width() -> int | None:
    # Piped or redirected output gets whole lines: at Rich's default of 80 columns, tables would
    # wrap and cut cells. A terminal (or an explicit COLUMNS) keeps Rich's own sizing.
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return None
    return 10_000


console = Console(width=_width())

store_option = Annotated[
    Path | None,
    typer.Option("--root", "-r", help="Store folder (default: $FTI_HOME, fti.toml or ./.fti)."),
]
json_option = Annotated[
    bool,
    typer.Option(
        "--json", help="Print JSON on stdout instead of a table (keys: see README, CLI section)."
    ),
]


def emit_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout, and nothing else (datetimes as ISO 8601 text)."""
    typer.echo(json.dumps(data, indent=2, default=_default, ensure_ascii=False))


def _default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "total_seconds"):
        return value.total_seconds()
    return str(value)


def open_store(root: Path | None) -> FeatureStore:
    """The store at ``root`` (or configured by env / fti.toml), as ``fti.connect`` opens it."""
    from fti.store import connect

    return connect(root)


def open_context(root: Path | None, *, read_only: bool = False) -> StoreContext:
    """The store's backends without the facade: for listings that must not pay for importing
    pandas and Arrow (``fti fg list``). ``read_only``: the command never writes, so an embedded
    registry is read without SQLAlchemy too (see ``StoreContext``)."""
    from fti.config import resolve_config
    from fti.services.context import StoreContext

    return StoreContext(resolve_config(root), read_only=read_only)


def parse_name_version(text: str) -> tuple[str, int | None]:
    """``weather`` -> (weather, None); ``weather:2`` -> (weather, 2)."""
    name, _, version = text.partition(":")
    if not version:
        return name, None
    if not version.isdigit():
        raise ValidationError(
            f"Invalid version in {text!r}: use NAME or NAME:VERSION, e.g. weather:1."
        )
    return name, int(version)


def parse_key_values(pairs: list[str], dtypes: dict[str, str]) -> dict[str, Any]:
    """``["origin=JFK", "id=3"]`` -> {"origin": "JFK", "id": 3}, typed by the key dtypes."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValidationError(f"Invalid key {pair!r}: use KEY=VALUE, e.g. origin=JFK.")
        dtype = dtypes.get(key)
        if dtype is None:
            raise ValidationError(f"Unknown key column {key!r}. Key columns: {sorted(dtypes)}.")
        if dtype.startswith("int"):
            try:
                out[key] = int(value)
            except ValueError:
                raise ValidationError(
                    f"Key {key!r} is {dtype}; {value!r} is not an integer."
                ) from None
        elif dtype == "bool":
            out[key] = value.lower() in ("1", "true", "yes")
        else:
            out[key] = value
    return out


def parse_time(text: str | None, option: str) -> datetime | None:
    """An ISO date or time given on the command line; a naive one is read as UTC (the CLI's
    only time zone). A bad one is a one-line ValidationError naming the option."""
    from datetime import UTC, datetime

    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            f"{option} {text!r} is not an ISO date or time: use e.g. 2026-03-01 or "
            "2026-03-01T12:00+00:00."
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
