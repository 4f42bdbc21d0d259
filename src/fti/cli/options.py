"""Shared CLI plumbing: the console, the --root option, NAME[:VERSION] and KEY=VALUE parsing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from fti.errors import ValidationError
from fti.store import FeatureStore, connect

__all__ = ["console", "open_store", "parse_name_version", "parse_key_values", "store_option"]

console = Console()

store_option = Annotated[
    Path | None,
    typer.Option("--root", "-r", help="Store folder (default: $FTI_HOME, fti.toml or ./.fti)."),
]


def open_store(root: Path | None) -> FeatureStore:
    return connect(root)


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
