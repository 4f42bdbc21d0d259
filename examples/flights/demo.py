"""The end-to-end flights example (what `make demo` runs) on the embedded store.

1. feature pipelines backfill 2013 in monthly chunks (flights, weather, ops) + the planes snapshot
2. a monolithic run: refresh planes, then the training pipeline (time split, LightGBM, registry)
3. the batch inference pipeline scores the test months and writes predictions
4. monitoring: the scored flights are logged, their outcomes arrive a day later through
   `fs.models.log_outcomes`, and `fs.models.performance` gives the live AUC per week; a weather
   drift monitor compares each month with the training months (the skew check of served
   requests is added to the report by serve_demo.py)
5. a summary with the model's lineage, and an HTML report with plots
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

import fti

sys.path.insert(0, str(Path(__file__).parent))

import pipelines as p
from monitoring import live_metrics, weather_drift
from report import quality_section, write_report

console = Console()


def print_lineage(graph: fti.LineageGraph) -> None:
    """A compact view: what the model was built from, and what was built from it."""
    up: dict[str, set[str]] = {}
    for node in graph.upstream():
        if node.kind == "run":
            label = dict(node.detail).get("pipeline", node.name)
        elif node.kind == "file":
            label = Path(node.name).name + f" (sha256 {dict(node.detail)['sha256'][:12]}…)"
        else:
            label = f"{node.name} v{node.version}" if node.version is not None else node.name
        up.setdefault(node.kind, set()).add(label)
    for kind in ("training_dataset", "feature_group", "run", "file"):
        if kind in up:
            console.print(f"  <- {kind}: {', '.join(sorted(up[kind]))}")
    for node in graph.downstream():
        if node.kind != "run":
            console.print(f"  -> {node.kind}: {node.name} v{node.version}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", default=".fti-demo", help="store folder (recreated)")
    parser.add_argument("--months", type=int, default=12, help="months of 2013 to use (>= 4)")
    parser.add_argument("--estimators", type=int, default=300)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    root = Path(args.root)
    shutil.rmtree(root, ignore_errors=True)
    fs = fti.connect(root)
    end = datetime(2013 + args.months // 12, args.months % 12 + 1, 1, tzinfo=UTC)
    console.rule("[bold]fti: the flights ML system, end to end (embedded store)")

    # 1. feature pipelines -------------------------------------------------------------------
    for pipeline in (p.flights_features, p.weather_features, p.ops_features):
        console.print(
            f"[bold]Feature pipeline[/] {pipeline.name}: backfill {p.YEAR_START:%Y-%m-%d}"
            f" .. {end:%Y-%m-%d} in 30-day chunks"
        )
        fti.backfill(pipeline, fs=fs, start=p.YEAR_START, end=end, chunk="30d")

    # 2. monolithic: planes snapshot + training -------------------------------------------
    console.print("[bold]Monolithic pipeline[/]: planes_features -> train")
    # train on the first ~2/3 of the months, validate on the next ~1/6, test on the rest
    train_end = datetime(2013, max(2, args.months * 8 // 12) + 1, 1, tzinfo=UTC)
    validation_end = datetime(2013, max(3, args.months * 10 // 12) + 1, 1, tzinfo=UTC)
    run = fti.run_monolithic(
        p.planes_features,
        p.train,
        fs=fs,
        params={
            "train_end": train_end,
            "validation_end": validation_end,
            "test_end": end,
            "n_estimators": args.estimators,
        },
    )
    console.print(f"  run {run.id}: {run.status}")
    mv = fs.models.get(p.MODEL, alias="production")

    # 3. batch inference -----------------------------------------------------------------
    console.print(f"[bold]Inference pipeline[/] score: {validation_end:%Y-%m-%d} .. {end:%Y-%m-%d}")
    fti.run_pipeline(p.score, fs=fs, start=validation_end, end=end)

    # 4. monitoring: predictions logged, outcomes a day later, live metrics per week --------
    console.print("[bold]Monitoring[/]: log predictions and outcomes, live metrics per week")
    live = live_metrics(fs, validation_end, end)
    lt = Table(title=f"Live metrics of {p.MODEL} (fti models performance {p.MODEL} --every 7D)")
    for col in ("week", "predictions", "labelled", "coverage", "AUC", "test AUC"):
        lt.add_column(col)
    for _, row in live.iterrows():
        lt.add_row(
            f"{row['bucket_start']:%Y-%m-%d}",
            f"{row['predictions']:,}",
            f"{row['labelled']:,}",
            f"{row['coverage']:.0%}",
            "-" if row["auc"] != row["auc"] else f"{row['auc']:.3f}",  # NaN: no outcome yet
            f"{row['test_auc']:.3f}",
        )
    console.print(lt)
    drift = weather_drift(fs, train_end, end)
    dt = Table(title="Weather drift: PSI vs the training months (fti monitor show weather_drift)")
    dt.add_column("month")
    features = list(dict.fromkeys(drift["feature"]))
    for f in features:
        dt.add_column(f)
    for at, rows in drift.groupby("at", sort=True):
        cells = dict(
            zip(rows["feature"], zip(rows["value"], rows["drifted"], strict=True), strict=True)
        )
        dt.add_row(
            f"{at - timedelta(days=1):%Y-%m}",
            *(
                f"[red]{cells[f][0]:.2f}[/]" if cells[f][1] else f"{cells[f][0]:.2f}"
                for f in features
            ),
        )
    console.print(dt)

    # 5. summary -------------------------------------------------------------------------
    table = Table(title="Feature groups")
    for col in ("feature group", "rows", "table version", "online keys"):
        table.add_column(col)
    for fg in fs.feature_groups():
        s = fg.stats()
        online = "-" if s["online_rows"] is None else f"{s['online_rows']:,}"
        table.add_row(
            f"{fg.name} v{fg.version}", f"{s['rows']:,}", str(s["offline_version"]), online
        )
    console.print(table)
    dq = Table(title="Data quality (validation reports of every insert)")
    for col in ("group", "inserts", "rule", "failed", "quarantined"):
        dq.add_column(col)
    quarantined = 0
    checks: list[dict[str, object]] = []
    for fg in fs.feature_groups():
        if not fg.expectations:
            continue
        reports = fg.validation_reports()
        aside = fg.quarantined()
        quarantined += len(aside)
        for rule, rows in reports.groupby("rule", sort=False):
            in_quarantine = sum(rule in list(ids) for ids in aside["_fti_rules"])
            checks.append(
                {
                    "group": fg.name,
                    "inserts": rows["insert_id"].nunique(),
                    "rule": rows["description"].iloc[0],
                    "failed": int(rows["failed"].sum()),
                    "quarantined": in_quarantine,
                }
            )
    for c in checks:
        dq.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in c.values()))
    console.print(dq)
    weather = p.weather_group(fs)
    quality = quality_section(
        pd.DataFrame(checks), f"{weather.name} v{weather.version}", weather.statistics().to_dict()
    )
    if quarantined:
        aside = p.weather_group(fs).quarantined()
        aside["rules"] = [", ".join(ids) for ids in aside["_fti_rules"]]
        shown = aside[["origin", "time_hour", "wind_speed", "rules"]].to_string(index=False)
        console.print(f"Quarantined weather rows (fti fg quarantine weather):\n{shown}")
    td = mv.training_dataset()
    console.print(
        f"Training dataset: {td.feature_view} v{td.feature_view_version}, "
        f"training dataset version {td.version}, splits {td.splits}"
    )
    metrics = dict(mv.metrics)
    mt = Table(title=f"Model {mv.name} v{mv.version} ({mv.format}), alias production")
    mt.add_column("metric")
    mt.add_column("value")
    for k, v in metrics.items():
        shown = f"{v:,.0f}" if float(v).is_integer() else f"{v:.4f}"
        mt.add_row(k, shown)
    console.print(mt)
    preds = p.predictions_group(fs).read()
    console.print(
        f"Predictions written: {len(preds):,} rows, mean delay probability "
        f"{preds['delay_probability'].mean():.3f}"
    )
    console.print(
        "[bold]Lineage of the model[/] (back to the raw files; full graph: "
        f"fti lineage model {mv.name}:{mv.version} --root {root}):"
    )
    print_lineage(fs.lineage(mv))

    # HTML report
    x_test, y_test = td.read("test")
    model = mv.load()
    p_test = model.predict_proba(x_test[model.feature_name_])[:, 1]
    importances = dict(
        zip(model.feature_name_, model.booster_.feature_importance("gain").tolist(), strict=True)
    )
    report = write_report(
        root / "report.html",
        y_test=y_test.to_numpy(),
        p_test=p_test,
        importances=importances,
        metrics={k: float(v) for k, v in metrics.items() if k.startswith("test_")},
        summary={
            "model": f"{mv.name} v{mv.version}",
            "training dataset": td.version,
            "predictions": len(preds),
            "quarantined rows": quarantined,
        },
        live=live,
        drift=drift,
        quality=quality,
    )
    console.print(f"HTML report with plots: {report.resolve()}")
    console.print(f"[green]Done in {time.perf_counter() - started:.0f}s.[/]")
    fs.close()


if __name__ == "__main__":
    main()
