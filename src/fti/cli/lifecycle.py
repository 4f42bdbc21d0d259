"""``delete`` and ``deprecate`` for every noun: ``fti fg|fv|td|models delete|deprecate``.

The commands are added to each noun's Typer app by :func:`add_commands`.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from fti.cli.options import console, open_store, parse_name_version, store_option
from fti.errors import ValidationError

if TYPE_CHECKING:
    from fti.store import FeatureStore

__all__ = ["add_commands"]

_NOUNS = {
    "fg": ("feature group", "weather:1"),
    "fv": ("feature view", "delays:1"),
    "td": ("training dataset", "delays:1 2"),
    "models": ("model version", "delays:3"),
}

force_option = Annotated[
    bool,
    typer.Option("--force", help="Also delete everything that depends on it (listed first)."),
]
yes_option = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask (required when stdin is not a terminal).")
]
json_option = Annotated[bool, typer.Option("--json", help="Print what was deleted as JSON.")]
undo_option = Annotated[bool, typer.Option("--undo", help="Undeprecate it.")]
reason_option = Annotated[str, typer.Option("--reason", help="Why (shown in the warning).")]
td_version_arg = Annotated[int, typer.Argument(help="Training dataset version.")]
ref_arg = Annotated[str, typer.Argument(metavar="NAME:VERSION", help="Name and exact version.")]
view_arg = Annotated[str, typer.Argument(metavar="VIEW:VERSION", help="The feature view version.")]


def _exact(text: str, example: str) -> tuple[str, int]:
    name, version = parse_name_version(text)
    if version is None:
        raise ValidationError(
            f"Give the exact version to delete or deprecate as NAME:VERSION, e.g. {example} "
            f"(got {text!r})."
        )
    return name, version


def _confirm(what: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise ValidationError(
            f"Refusing to delete the {what} without confirmation: stdin is not a terminal. "
            "Pass --yes to delete it."
        )
    if not typer.confirm(f"Delete the {what}?"):
        raise typer.Exit(1)


def _report(deleted: list[str], as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps({"deleted": deleted}))
        return
    for label in deleted:
        console.print(f"[green]deleted[/] {label}", highlight=False)


def _delete_call(noun: str, fs: FeatureStore) -> Callable[..., list[str]]:
    return {
        "fg": fs.delete_feature_group,
        "fv": fs.delete_feature_view,
        "models": fs.models.delete,
    }[noun]


def _set_deprecated(
    fs: FeatureStore, noun: str, name: str, version: int, td: int | None, flag: bool, why: str
) -> None:
    with warnings.catch_warnings():  # undeprecating opens a deprecated object
        warnings.simplefilter("ignore")
        if noun == "fg":
            fs.get_feature_group(name, version=version).deprecate(flag, reason=why)
        elif noun == "fv":
            fs.get_feature_view(name, version=version).deprecate(flag, reason=why)
        elif noun == "td":
            assert td is not None
            fv = fs.get_feature_view(name, version=version)
            fv.get_training_dataset(td).deprecate(flag, reason=why)
        else:
            fs.models.deprecate(name, version=version, deprecated=flag, reason=why)


def add_commands(noun_app: typer.Typer, noun: str) -> None:
    """Add ``delete`` and ``deprecate`` to the Typer app of ``noun`` (fg, fv, td, models)."""
    what, example = _NOUNS[noun]
    if noun == "td":
        _add_td_commands(noun_app)
        return

    def delete(
        ref: ref_arg,
        force: force_option = False,
        yes: yes_option = False,
        as_json: json_option = False,
        root: store_option = None,
    ) -> None:
        name, version = _exact(ref, example)
        fs = open_store(root)
        _confirm(f"{what} {name}:{version}", yes)
        _report(_delete_call(noun, fs)(name, version=version, force=force), as_json)

    delete.__doc__ = (
        f"Delete a {what} with its data and records. Refused, listing them, while other "
        f"objects depend on it; --force deletes those too.\n\n"
        f"Examples: fti {noun} delete {example} ;  fti {noun} delete {example} --force --yes"
    )

    def deprecate(
        ref: ref_arg,
        undo: undo_option = False,
        reason: reason_option = "",
        root: store_option = None,
    ) -> None:
        name, version = _exact(ref, example)
        _set_deprecated(open_store(root), noun, name, version, None, not undo, reason)
        state = "undeprecated" if undo else "deprecated"
        console.print(f"[green]{state}[/] {what} {name}:{version}", highlight=False)

    deprecate.__doc__ = (
        f"Deprecate a {what}: kept and working, hidden from lists, a warning when used.\n\n"
        f"Examples: fti {noun} deprecate {example} --reason 'use v2' ;  "
        f"fti {noun} deprecate {example} --undo"
    )
    noun_app.command("delete")(delete)
    noun_app.command("deprecate")(deprecate)


def _add_td_commands(noun_app: typer.Typer) -> None:
    @noun_app.command("delete")
    def delete(
        view: view_arg,
        td_version: td_version_arg,
        force: force_option = False,
        yes: yes_option = False,
        as_json: json_option = False,
        root: store_option = None,
    ) -> None:
        """Delete a training dataset version with its split files. Refused, listing them, while
        models were trained on it; --force deletes those too.

        Examples: fti td delete delays:1 2 ;  fti td delete delays:1 2 --force --yes
        """
        name, version = _exact(view, "delays:1")
        fs = open_store(root)
        _confirm(f"training dataset {td_version} of feature view {name}:{version}", yes)
        deleted = fs.delete_training_dataset(
            name, version=version, training_dataset_version=td_version, force=force
        )
        _report(deleted, as_json)

    @noun_app.command("deprecate")
    def deprecate(
        view: view_arg,
        td_version: td_version_arg,
        undo: undo_option = False,
        reason: reason_option = "",
        root: store_option = None,
    ) -> None:
        """Deprecate a training dataset version: kept and readable, hidden from lists, a
        warning when used.

        Examples: fti td deprecate delays:1 2 ;  fti td deprecate delays:1 2 --undo
        """
        name, version = _exact(view, "delays:1")
        _set_deprecated(open_store(root), "td", name, version, td_version, not undo, reason)
        state = "undeprecated" if undo else "deprecated"
        console.print(
            f"[green]{state}[/] training dataset {td_version} of {name}:{version}",
            highlight=False,
        )
