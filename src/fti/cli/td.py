"""``fti td``: list and show training datasets.

A training dataset is named as ``fti lineage`` names it: ``FEATURE_VIEW_vN:VERSION``
(``delays_v1:2`` is version 2 of the datasets of feature view ``delays`` version 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from fti.cli.options import (
    console,
    emit_json,
    json_option,
    open_context,
    parse_name_version,
    store_option,
)
from fti.errors import ValidationError

if TYPE_CHECKING:
    from fti.definitions.training_dataset import TrainingDatasetSpec

__all__ = ["app", "dataset_json", "parse_dataset_ref"]

app = typer.Typer(
    help="Training datasets. Example: fti td show delays_v1:2",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def parse_dataset_ref(text: str) -> tuple[str, int, int | None]:
    """``delays_v1:2`` -> ("delays", 1, 2); ``delays_v1`` -> ("delays", 1, None)."""
    name, version = parse_name_version(text)
    view, sep, view_version = name.rpartition("_v")
    if not sep or not view or not view_version.isdigit():
        raise ValidationError(
            f"Invalid training dataset {text!r}: use FEATURE_VIEW_vN:VERSION, e.g. delays_v1:2 "
            "(version 2 of the datasets of feature view delays version 1)."
        )
    return view, int(view_version), version


def dataset_json(td: TrainingDatasetSpec) -> dict[str, Any]:
    """The keys of ``fti td list --json`` / ``fti td show --json`` for one dataset."""
    return {
        "name": f"{td.feature_view}_v{td.feature_view_version}:{td.version}",
        "feature_view": td.feature_view,
        "feature_view_version": td.feature_view_version,
        "version": td.version,
        "description": td.description,
        "created_at": td.created_at,
        "split": td.split.to_dict(),
        "seed": td.seed,
        "rows": {split: int(f.get("rows", 0)) for split, f in td.files.items()},
        "start": td.start,
        "end": td.end,
        "spine_rows": td.spine_rows,
        "table_versions": dict(td.table_versions),
    }


def _split_text(split: dict[str, Any]) -> str:
    if split["kind"] == "random":
        return "random: " + ", ".join(f"{k} {v:.0%}" for k, v in split["fractions"].items())
    if split["kind"] == "time":
        return "by time: " + ", ".join(f"{k} [{s}, {e})" for k, (s, e) in split["ranges"].items())
    return "none"


@app.command("list")
def list_(
    feature_view: Annotated[
        str | None, typer.Argument(help="Only this feature view: NAME or NAME:VERSION.")
    ] = None,
    root: store_option = None,
    json_: json_option = False,
) -> None:
    """List training datasets with their split and rows per split.

    Examples: fti td list ;  fti td list delays:1 --json
    """
    from fti.services import feature_views, training_datasets

    ctx = open_context(root)
    if feature_view is None:
        views = feature_views.list_specs(ctx)
    else:
        n, v = parse_name_version(feature_view)
        views = (
            [feature_views.get_spec(ctx, n, v)]
            if v is not None
            else [s for s in feature_views.list_specs(ctx) if s.name == n]
            or [feature_views.get_spec(ctx, n)]  # raises NotFoundError naming the known views
        )
    rows = [dataset_json(td) for fv in views for td in training_datasets.list_specs(ctx, fv)]
    if json_:
        emit_json(rows)
        return
    table = Table(title="Training datasets")
    for col in ("name", "feature view", "split", "rows", "created"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            escape(r["name"]),
            f"{r['feature_view']} v{r['feature_view_version']}",
            r["split"]["kind"],
            ", ".join(f"{k}={v:,}" for k, v in r["rows"].items()),
            r["created_at"].isoformat(timespec="seconds"),
        )
    console.print(table)
    if not rows:
        console.print("No training datasets yet: fv.create_training_dataset(...).")


@app.command()
def show(
    dataset: Annotated[
        str, typer.Argument(help="FEATURE_VIEW_vN:VERSION, e.g. delays_v1:2 (default: latest).")
    ],
    root: store_option = None,
    json_: json_option = False,
) -> None:
    """Split, rows, time range and the feature group table versions a training dataset read.

    Examples: fti td show delays_v1:2 ;  fti td show delays_v1 --json
    """
    from fti.services import feature_views, training_datasets

    ctx = open_context(root)
    view, view_version, version = parse_dataset_ref(dataset)
    fv = feature_views.get_spec(ctx, view, view_version)
    if version is None:
        latest = training_datasets.latest(ctx, fv)
        if latest is None:
            raise ValidationError(
                f"Feature view {view!r} version {view_version} has no training datasets yet. "
                "Create one with fv.create_training_dataset(...)."
            )
        version = latest.version
    data = dataset_json(training_datasets.get(ctx, fv, version))
    if json_:
        emit_json(data)
        return
    out = console.print
    out(f"[bold]{escape(data['name'])}[/]  {escape(data['description'])}", highlight=False)
    out(f"  feature view    {data['feature_view']} v{data['feature_view_version']}")
    out(f"  created         {data['created_at'].isoformat()}", highlight=False)
    out(f"  split           {_split_text(data['split'])}", highlight=False, markup=False)
    if data["seed"] is not None:
        out(f"  seed            {data['seed']}", highlight=False)
    rows = ", ".join(f"{k}={v:,}" for k, v in data["rows"].items())
    out(f"  rows            {rows}", highlight=False)
    if data["start"] or data["end"]:
        out(f"  range           {data['start']} .. {data['end']}", highlight=False)
    if data["spine_rows"] is not None:
        out(f"  spine rows      {data['spine_rows']:,}", highlight=False)
    for table, tv in data["table_versions"].items():
        out(f"  read            {table} @ table version {tv}", highlight=False)
