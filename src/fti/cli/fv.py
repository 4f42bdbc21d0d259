"""``fti fv``: list and show feature views."""

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

if TYPE_CHECKING:
    from fti.definitions.feature_view import FeatureViewSpec
    from fti.services.context import StoreContext

__all__ = ["app", "view_json"]

app = typer.Typer(
    help="Feature views. Example: fti fv show delays:1",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def view_json(ctx: StoreContext, spec: FeatureViewSpec) -> dict[str, Any]:
    """The keys of ``fti fv list --json`` / ``fti fv show --json`` for one view version."""
    from fti.services import training_datasets

    q = spec.query
    groups = [
        {
            "name": s.group.name,
            "version": s.group.version,
            "features": list(s.features),
            "prefix": None if i == 0 else q.joins[i - 1].prefix,
        }
        for i, s in enumerate(q.selections)
    ]
    return {
        "name": spec.name,
        "version": spec.version,
        "description": spec.description,
        "created_at": spec.created_at,
        "feature_groups": groups,
        "features": q.selected_features(),
        "labels": list(spec.labels),
        "transformations": {c: t.kind for c, t in sorted(spec.transformations.items())},
        "on_demand": [f.name for f in spec.on_demand],
        "training_datasets": [td.version for td in training_datasets.list_specs(ctx, spec)],
    }


@app.command("list")
def list_(root: store_option = None, json_: json_option = False) -> None:
    """List feature views with their feature groups, labels and training datasets.

    Examples: fti fv list ;  fti fv list --json
    """
    from fti.services import feature_views

    ctx = open_context(root)
    views = [view_json(ctx, s) for s in feature_views.list_specs(ctx)]
    if json_:
        emit_json(views)
        return
    table = Table(title="Feature views")
    for col in ("name", "version", "feature groups", "features", "labels", "training datasets"):
        table.add_column(col)
    for v in views:
        table.add_row(
            escape(v["name"]),
            str(v["version"]),
            ", ".join(f"{g['name']} v{g['version']}" for g in v["feature_groups"]),
            str(len(v["features"])),
            ", ".join(v["labels"]) or "-",
            ", ".join(str(t) for t in v["training_datasets"]) or "-",
        )
    console.print(table)
    if not views:
        console.print("No feature views yet: fs.feature_view(NAME, query=..., labels=[...]).")


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="NAME or NAME:VERSION (default: latest).")],
    root: store_option = None,
    json_: json_option = False,
) -> None:
    """Query, features, labels, transformations and training datasets of a feature view.

    Examples: fti fv show delays:1 ;  fti fv show delays --json
    """
    from fti.services import feature_views

    ctx = open_context(root)
    n, v = parse_name_version(name)
    data = view_json(ctx, feature_views.get_spec(ctx, n, v))
    if json_:
        emit_json(data)
        return
    out = console.print
    out(f"[bold]{escape(data['name'])}[/] version {data['version']}  {escape(data['description'])}")
    out(f"  created            {data['created_at'].isoformat()}", highlight=False)
    for g in data["feature_groups"]:
        prefix = f" (prefix {g['prefix']!r})" if g["prefix"] else ""
        out(
            f"  feature group      {g['name']} v{g['version']}{prefix}: "
            + (", ".join(g["features"]) or "-"),
            highlight=False,
            markup=False,
        )
    out(f"  labels             {', '.join(data['labels']) or '-'}", highlight=False, markup=False)
    tr = ", ".join(f"{c}: {k}" for c, k in data["transformations"].items())
    out(f"  transformations    {tr or '-'}", highlight=False, markup=False)
    out(f"  on-demand          {', '.join(data['on_demand']) or '-'}", highlight=False)
    tds = data["training_datasets"]
    out(
        "  training datasets  "
        + (
            ", ".join(f"{data['name']}_v{data['version']}:{t}" for t in tds)
            + f"  (fti td show {data['name']}_v{data['version']}:{tds[-1]})"
            if tds
            else "-"
        ),
        highlight=False,
    )
