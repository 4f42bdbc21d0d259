"""``fti models``: list, show and alias registered models; check training-serving skew."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from fti.cli.options import (
    console,
    emit_json,
    json_option,
    open_store,
    parse_time,
    store_option,
)
from fti.errors import ValidationError

if TYPE_CHECKING:
    from fti.handles.model import ModelVersion
    from fti.store import FeatureStore

__all__ = ["app", "parse_model_ref", "training_dataset_label"]

app = typer.Typer(
    help="Registered models. Example: fti models show delays@production",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def parse_model_ref(text: str) -> tuple[str, int | None, str | None]:
    """``delays`` -> latest; ``delays:3`` -> version 3; ``delays@production`` -> by alias."""
    if "@" in text:
        name, _, alias = text.partition("@")
        if not name or not alias:
            raise ValidationError(
                f"Invalid model {text!r}: use NAME@ALIAS, e.g. delays@production."
            )
        return name, None, alias
    name, _, version = text.partition(":")
    if not version:
        return name, None, None
    if not version.isdigit():
        raise ValidationError(
            f"Invalid version in {text!r}: use NAME, NAME:VERSION or NAME@ALIAS, e.g. delays:2."
        )
    return name, int(version), None


def _metrics(mv: ModelVersion) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in sorted(mv.metrics.items()))


def training_dataset_label(feature_view: str, fv_version: int, version: int) -> str:
    """A training dataset as ``fti lineage`` names it (``delays_v1 v2``: feature view
    ``delays`` version 1, dataset version 2; ``fti lineage td delays_v1:2`` looks it up)."""
    from fti.services.lineage_graph import training_dataset_name

    return f"{training_dataset_name(feature_view, fv_version)} v{version}"


def _version_json(mv: ModelVersion, aliases: list[str]) -> dict[str, Any]:
    fv, td = mv.feature_view_ref, mv.training_dataset_ref
    return {
        "name": mv.name,
        "version": mv.version,
        "format": mv.format,
        "framework": mv.framework,
        "status": mv.status,
        "metrics": dict(sorted(mv.metrics.items())),
        "aliases": aliases,
        "description": mv.description,
        "created_at": mv.created_at,
        "feature_view": None if fv is None else {"name": fv.name, "version": fv.version},
        "training_dataset": None
        if td is None
        else {
            "feature_view": td.feature_view,
            "feature_view_version": td.fv_version,
            "version": td.version,
            "label": training_dataset_label(td.feature_view, td.fv_version, td.version),
        },
    }


def _resolve(fs: FeatureStore, text: str) -> ModelVersion:
    name, version, alias = parse_model_ref(text)
    return fs.models.get(name, version=version, alias=alias)


@app.command("list")
def list_(
    name: Annotated[str | None, typer.Argument(help="Only this model's versions.")] = None,
    root: store_option = None,
    json_: json_option = False,
) -> None:
    """List registered model versions with their format, metrics and aliases.

    Examples: fti models list ;  fti models list delays --json
    """
    fs = open_store(root)
    versions = fs.models.list(name)
    if name is not None and not versions:
        fs.models.get(name)  # raises NotFoundError listing the registered models
    aliases: dict[str, dict[int, list[str]]] = {}
    for n in sorted({mv.name for mv in versions}):
        by_version: dict[int, list[str]] = {}
        for alias, v in sorted(fs.models.aliases(n).items()):
            by_version.setdefault(v, []).append(alias)
        aliases[n] = by_version
    if json_:
        emit_json([_version_json(mv, aliases[mv.name].get(mv.version, [])) for mv in versions])
        return
    table = Table(title="Models" if name is None else f"Model {name}")
    for col in ("name", "version", "format", "status", "metrics", "aliases", "created"):
        table.add_column(col)
    for mv in versions:
        table.add_row(
            mv.name,
            str(mv.version),
            mv.format,
            mv.status,
            _metrics(mv),
            ", ".join(aliases[mv.name].get(mv.version, [])),
            mv.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    console.print(table)
    if not versions:
        console.print("No models registered yet: fs.models.register(NAME, model, ...).")


@app.command()
def show(
    model: Annotated[
        str, typer.Argument(help="NAME, NAME:VERSION or NAME@ALIAS (default: latest).")
    ],
    root: store_option = None,
    json_: json_option = False,
) -> None:
    """Metrics, signature, lineage and artifact of one model version.

    Examples: fti models show delays ;  fti models show delays:2 ;
    fti models show delays@production --json
    """
    fs = open_store(root)
    mv = _resolve(fs, model)
    if json_:
        a, sig = mv.artifact, mv.signature
        emit_json(
            {
                **_version_json(mv, list(mv.aliases)),
                "artifact": {"key": a.key, "size": a.size, "sha256": a.sha256},
                "libraries": dict(sorted(mv.libraries.items())),
                "tags": dict(mv.tags),
                "signature": {
                    "source": sig.source,
                    "inputs": [{"name": f.name, "dtype": f.dtype} for f in sig.inputs],
                    "outputs": [{"name": f.name, "dtype": f.dtype} for f in sig.outputs],
                },
            }
        )
        return
    console.print(f"[bold]{mv.name}[/] version {mv.version}  {mv.description}")
    console.print(f"  status        {mv.status}")
    console.print(f"  format        {mv.format} ({mv.framework})")
    console.print(f"  aliases       {', '.join(mv.aliases) or '-'}")
    console.print(f"  metrics       {_metrics(mv) or '-'}")
    fv, td = mv.feature_view_ref, mv.training_dataset_ref
    console.print(f"  feature view  {'-' if fv is None else f'{fv.name} v{fv.version}'}")
    td_label = (
        "-"
        if td is None
        else f"{training_dataset_label(td.feature_view, td.fv_version, td.version)} "
        f"(feature view {td.feature_view} v{td.fv_version})"
    )
    console.print(f"  training data {td_label}", highlight=False)
    a = mv.artifact
    console.print(f"  artifact      {a.key} ({a.size:,} bytes, sha256 {a.sha256})")
    console.print(f"  created       {mv.created_at.isoformat()}")
    libs = ", ".join(f"{k} {v}" for k, v in sorted(mv.libraries.items()))
    console.print(f"  libraries     {libs}")
    if mv.tags:
        console.print(f"  tags          {', '.join(f'{k}={v}' for k, v in mv.tags.items())}")
    sig = mv.signature
    table = Table(title=f"Signature (from {sig.source.replace('_', ' ')})")
    for col in ("column", "dtype", "role"):
        table.add_column(col)
    for f in sig.inputs:
        table.add_row(f.name, f.dtype, "input")
    for f in sig.outputs:
        table.add_row(f.name, f.dtype, "output")
    console.print(table)


@app.command()
def alias(
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="Alias, e.g. production.")],
    version: Annotated[int, typer.Argument(help="Version the alias should point to.")],
    root: store_option = None,
) -> None:
    """Point an alias such as production at a model version, moving it if it pointed elsewhere.

    Example: fti models alias delays production 3
    """
    fs = open_store(root)
    before = fs.models.aliases(name).get(alias_name)
    fs.models.set_alias(name, alias_name, version)
    moved = "" if before is None or before == version else f" (was version {before})"
    console.print(f"[green]{name}@{alias_name}[/] -> version {version}{moved}")


@app.command()
def performance(
    name: Annotated[str, typer.Argument(help="Model name.")],
    every: Annotated[str, typer.Option(help="Bucket width: 1D, 7D, 1W, 6h, 30min.")] = "1D",
    start: Annotated[str | None, typer.Option(help="ISO date/time (UTC if naive).")] = None,
    end: Annotated[str | None, typer.Option(help="ISO date/time, exclusive.")] = None,
    label_delay: Annotated[
        str | None,
        typer.Option(help="Buckets ending within this of now are pending (e.g. 1D)."),
    ] = None,
    version: Annotated[int | None, typer.Option(help="Only this model version.")] = None,
    label: Annotated[str | None, typer.Option(help="Outcome column, if several.")] = None,
    root: store_option = None,
    json_: json_option = False,
) -> None:
    """Live metrics of a model: its logged predictions joined to the logged outcomes, per
    time bucket (predictions, labelled, coverage, AUC/log loss/accuracy/calibration error or
    MAE/RMSE, next to the registered training metrics).

    Examples: fti models performance delays --every 7D ;
    fti models performance delays --start 2026-03-01 --label-delay 1D --json
    """
    from fti.services.model_performance import parse_every

    fs = open_store(root)
    frame = fs.models.performance(
        name,
        start=parse_time(start, "--start"),
        end=parse_time(end, "--end"),
        every=every,
        label_delay=None if label_delay is None else parse_every(label_delay),
        version=version,
        label=label,
        format="arrow",
    )
    rows = frame.to_pylist()
    for row in rows:  # NaN (no score) is not JSON: null
        for k, v in row.items():
            if isinstance(v, float) and v != v:
                row[k] = None
    if json_:
        emit_json(rows)
        return
    table = Table(title=f"Model {name}: live metrics per {every}")
    columns = [c for c in frame.column_names if c != "bucket_end"]
    for col in columns:
        table.add_column(col.replace("bucket_start", "bucket"))
    for row in rows:
        table.add_row(*(_cell(row[c]) for c in columns))
    console.print(table)
    if not rows:
        console.print(f"No logged predictions of {name!r} in this range.")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if hasattr(value, "isoformat"):
        return str(value.isoformat(timespec="minutes"))
    return str(value)


@app.command()
def skew(
    model: Annotated[
        str, typer.Argument(help="NAME, or NAME:VERSION to check only that version's requests.")
    ],
    sample: Annotated[
        int, typer.Option(help="Logged rows to check, sampled at random (0: all).", min=0)
    ] = 1_000,
    start: Annotated[
        str | None, typer.Option(help="Only requests logged at or after (ISO 8601, with zone).")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Only requests logged before (ISO 8601, with zone).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample.")] = 0,
    show: Annotated[int, typer.Option(help="Findings to print (the JSON has all).")] = 20,
    root: store_option = None,
    json_: json_option = False,
) -> None:
    """Training-serving skew: recompute logged feature vectors offline, as the store knew them
    at each request's time, and compare every feature. Exits 1 if anything differs.

    Examples: fti models skew delays ;  fti models skew delays:3 --sample 5000 --json ;
    fti models skew delays --start 2026-01-01T00:00:00Z --end 2026-01-02T00:00:00Z
    """
    name, version, alias = parse_model_ref(model)
    if alias is not None:
        raise ValidationError(
            f"fti models skew takes NAME or NAME:VERSION, got {model!r}: the log records model "
            f"versions, not aliases. Use e.g. {name}:2 (fti models list {name})."
        )
    fs = open_store(root)
    report = fs.models.skew_check(
        name,
        version=version,
        sample=sample or None,
        start=parse_time(start, "--start"),
        end=parse_time(end, "--end"),
        seed=seed,
    )
    if json_:
        emit_json(report.to_dict())
    else:
        console.print(str(report), highlight=False)
        table = Table(title="Per feature")
        for col in ("feature", "match", "mismatch", "missing online", "missing offline"):
            table.add_column(col)
        for feature, c in report.by_feature.items():
            table.add_row(feature, *(str(v) for v in c.values()))
        console.print(table)
        if report.findings:
            shown = Table(title=f"Findings (first {min(show, len(report.findings))})")
            for col in ("request_id", "position", "logged_at", "feature", "status", "online",
                        "offline"):  # fmt: skip
                shown.add_column(col)
            for f in report.findings[:show]:
                shown.add_row(
                    f["request_id"], str(f["position"]), f["logged_at"].isoformat(),
                    f["feature"], f["status"], repr(f["online"]), repr(f["offline"]),
                )  # fmt: skip
            console.print(shown)
    if not report.ok:
        raise typer.Exit(1)
