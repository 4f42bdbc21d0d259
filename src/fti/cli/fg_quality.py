"""``fti fg validations`` and ``fti fg quarantine``: a feature group's data-quality history."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from fti.cli.options import console, open_store, parse_name_version, store_option

__all__ = ["quarantine", "validations"]

NameArg = Annotated[str, typer.Argument(help="NAME or NAME:VERSION (default: latest).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", help="Newest rows to show.")]


def _records(frame: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = json.loads(frame.to_json(orient="records", date_format="iso"))
    return out


def validations(name: NameArg, as_json: JsonOpt = False, limit: LimitOpt = 50,
                root: store_option = None) -> None:  # fmt: skip
    """Validation reports: one row per (insert, rule) with table version, rules revision,
    rows evaluated and failed.

    Examples: fti fg validations tx ;  fti fg validations tx:1 --json
    """
    fs = open_store(root)
    n, v = parse_name_version(name)
    fg = fs.get_feature_group(n, version=v)
    frame = fg.validation_reports().tail(limit)
    if as_json:
        typer.echo(json.dumps(_records(frame), indent=2))
        return
    table = Table(title=f"Validation reports of {fg.name} v{fg.version} (policy "
                  f"{fg.spec.on_invalid}, revision {fg.spec.expectations_revision})")  # fmt: skip
    for col in ("time", "table version", "revision", "rule", "evaluated", "failed", "result"):
        table.add_column(col)
    for r in frame.itertuples(index=False):
        version = "-" if r.table_version != r.table_version else str(int(r.table_version))
        result = "pass" if r.passed else ("FAIL" if r.severity == "error" else "warn")
        observed = "" if r.observed is None else f" (observed {r.observed})"
        table.add_row(
            r.at.isoformat(timespec="seconds"), version, str(r.revision), r.description,
            f"{r.evaluated:,}", f"{r.failed:,}", result + observed,
        )  # fmt: skip
    console.print(table)
    if frame.empty:
        console.print("No validation reports yet: they are written by inserts into a feature "
                      "group with expectations.")  # fmt: skip


def quarantine(name: NameArg, as_json: JsonOpt = False, limit: LimitOpt = 50,
               root: store_option = None) -> None:  # fmt: skip
    """Quarantined rows with the rules they failed and the insert they came with.

    Examples: fti fg quarantine tx ;  fti fg quarantine tx:1 --json -n 500
    """
    fs = open_store(root)
    n, v = parse_name_version(name)
    fg = fs.get_feature_group(n, version=v)
    frame = fg.quarantined().tail(limit)
    if as_json:
        typer.echo(json.dumps(_records(frame), indent=2))
        return
    table = Table(title=f"Quarantined rows of {fg.name} v{fg.version} ({len(frame)} shown)")
    for col in frame.columns:
        table.add_column(str(col).removeprefix("_fti_"))
    for row in frame.itertuples(index=False):
        table.add_row(*("" if x is None else str(list(x) if hasattr(x, "tolist") else x)
                        for x in row))  # fmt: skip
    console.print(table)
