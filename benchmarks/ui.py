"""Server time of every web UI page at catalog scale, and whether it grows with runs or commits.

    .venv/bin/python benchmarks/ui.py [--scale 1.0] [--repeat 30] [--registry URL]

Builds a store with 1,000 feature groups, 200 feature views, 500 model versions (100 models x
5) and 10,000 runs (times ``--scale``): one real group/view/training dataset/model/run made
through the API, then registry records cloned from them in bulk (one INSERT per kind: the
registry is ``(kind, name, version) -> JSON`` plus the lineage edges a record implies, written
the same way, so a clone is indistinguishable from a registered object for the pages; the cloned
groups have no offline table). Each page is requested
``--repeat`` times through the ASGI app in-process (no network); p50/p95 in ms.

Growth: every page is measured twice, with 10% of the runs and with all of them, and the group
page with 2 and with 200 commits; a page whose p95 grows by more than 2x is flagged.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

import fti
from fti.backends.registry.lineage_edges import edges_of
from fti.backends.registry.sql import SqlRegistry, objects
from fti.backends.registry.sql_facts import insert_facts, rows_of
from fti.backends.registry.sql_lineage import insert_edges
from fti.pipelines.runs import finish_run, start_run
from fti.store import context_of

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def seed(fs: fti.FeatureStore) -> None:
    """One real object of each kind (the templates of the clones)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    n = 500
    flights = fs.feature_group("flights", primary_key=["id"], event_time="at", online=True)
    distance = rng.random(n) * 100
    flights.insert(
        pd.DataFrame(
            {
                "id": np.arange(n),
                "at": [T0 + timedelta(minutes=i) for i in range(n)],
                "distance": distance,
                "delayed": (distance > 50).astype("int64"),
            }
        )
    )
    fv = fs.feature_view("delays", query=flights.select(["distance"]), labels=["delayed"])
    td = fv.create_training_dataset(split={"train": 0.8, "test": 0.2}, seed=1)
    x, y = td.read("train")
    mv = fs.models.register(
        "delays", LogisticRegression().fit(x, y), training_dataset=td, metrics={"auc": 0.7}
    )
    fs.models.set_alias("delays", "production", mv.version)
    ctx = context_of(fs)
    run = start_run(ctx, kind="feature", pipeline="p0", function="f:g", parameters={}, source=None)
    finish_run(
        ctx,
        run,
        status="succeeded",
        error=None,
        inputs=[{"kind": "file", "name": "/d.csv", "sha256": "ab" * 32, "size": 1}],
        outputs=[{"kind": "feature_group", "name": "flights", "version": 1, "table_version": 1}],
    )


def _template(registry: SqlRegistry, kind: str, name: str) -> dict[str, Any]:
    rec = registry.records(kind, name)[0]
    return rec.body


def bulk(registry: SqlRegistry, rows: list[tuple[str, str, int, dict[str, Any]]]) -> None:
    now = datetime.now(UTC)
    with registry.engine.begin() as conn:
        conn.execute(
            objects.insert(),
            [
                {
                    "kind": k,
                    "name": n,
                    "version": v,
                    "body": json.dumps(b),
                    "revision": 1,
                    "created_at": now,
                    "updated_at": now,
                }
                for k, n, v, b in rows
            ],
        )
        # what the registry writes with each record: its lineage edges and indexed facts
        insert_edges(conn, [e for k, n, v, b in rows for e in edges_of(k, n, v, b)])
        insert_facts(conn, [f for k, n, v, b in rows for f in rows_of(k, n, v, b)])


def clone_catalog(registry: SqlRegistry, scale: float) -> None:
    fg = _template(registry, "feature_group", "flights")
    fv = _template(registry, "feature_view", "delays")
    model = _template(registry, "model", "delays")
    rows: list[tuple[str, str, int, dict[str, Any]]] = []
    for i in range(int(1000 * scale)):
        name = f"g{i:04d}"
        rows.append(("feature_group", name, 1, {**fg, "name": name, "description": f"g {i}"}))
    for i in range(int(200 * scale)):
        name = f"v{i:03d}"
        rows.append(("feature_view", name, 1, {**fv, "name": name}))
    for i in range(int(100 * scale)):
        for v in range(1, 6):
            name = f"m{i:03d}"
            metrics = {"auc": 0.5 + 0.01 * v, "rmse": 1.0 / v}
            rows.append(
                ("model", name, v, {**model, "name": name, "version": v, "metrics": metrics})
            )
    bulk(registry, rows)


def clone_runs(registry: SqlRegistry, start: int, stop: int) -> None:
    run = registry.records("run")[0].body
    rows = []
    for i in range(start, stop):
        started = T0 + timedelta(seconds=i)
        rid = started.strftime("%Y%m%dT%H%M%S.%fZ") + f"-{i:06x}"
        status = "failed" if i % 10 == 0 else "succeeded"
        body = {
            **run,
            "id": rid,
            "pipeline": f"p{i % 50}",
            "status": status,
            "error": "ValueError: boom" if status == "failed" else None,
            "started_at": started.isoformat(),
            "ended_at": (started + timedelta(seconds=3)).isoformat(),
        }
        rows.append(("run", rid, 1, body))
    bulk(registry, rows)


def measure(client: Any, paths: list[str], repeat: int) -> dict[str, tuple[float, float]]:
    out = {}
    for path in paths:
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            r = client.get(path)
            times.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, (path, r.status_code, r.text[-300:])
        times.sort()
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        out[path] = (statistics.median(times), p95)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full scale")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--registry", default=None, help="registry URL (default: SQLite)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

    from fti.ui.app import create_ui_app

    runs = int(10_000 * args.scale)
    with tempfile.TemporaryDirectory() as tmp:
        fs = fti.connect(Path(tmp) / "store", registry=args.registry)
        t = time.perf_counter()
        seed(fs)
        registry = context_of(fs).registry
        assert isinstance(registry, SqlRegistry)
        clone_catalog(registry, args.scale)
        clone_runs(registry, 0, runs // 10)
        print(f"store built in {time.perf_counter() - t:.1f}s ({registry.engine.dialect.name})")
        client = TestClient(create_ui_app(fs))
        with registry.engine.connect() as conn:
            a_run = conn.execute(
                sa.select(objects.c.name).where(objects.c.kind == "run").limit(1)
            ).scalar()
        model = f"m{int(100 * args.scale) // 2:03d}"
        paths = [
            "/",
            "/groups",
            f"/groups?offset={max(0, int(1000 * args.scale) - 25)}",
            "/groups?q=g05",
            "/groups/flights/1",
            "/views",
            "/views/delays/1",
            "/models",
            f"/models/{model}",
            f"/models/{model}?sort=auc",
            "/runs",
            "/runs?offset=5000",
            "/runs?status=failed",
            "/runs?pipeline=p7",
            f"/runs/{a_run}",
            "/lineage/model/delays?version=1",
            "/lineage/feature_group/flights?version=1",
            "/streams",
        ]
        from fastapi import FastAPI
        from fastapi.responses import HTMLResponse

        bare = FastAPI()
        bare.get("/")(lambda: HTMLResponse("<p>constant</p>"))
        baseline = measure(TestClient(bare), ["/"], args.repeat)["/"]
        few = measure(client, paths, args.repeat)
        clone_runs(registry, runs // 10, runs)
        # the filtered pages list every clone they should (failed: every 10th)
        assert registry.page("run", where={"status": "failed"}, limit=0)[1] == (runs + 9) // 10
        flights = fs.get_feature_group("flights", version=1)
        for i in range(198):  # 200 commits in all
            flights.insert(
                pd.DataFrame(
                    {
                        "id": [i],
                        "at": [T0 + timedelta(days=1, minutes=i)],
                        "distance": [1.0],
                        "delayed": [0],
                    }
                )
            )
        many = measure(client, paths, args.repeat)
        print(
            f"\nbaseline: a bare FastAPI route returning constant HTML through the same client, "
            f"p50 {baseline[0]:.1f} ms, p95 {baseline[1]:.1f} ms"
        )
        print(
            f"\n{'page':<44}{'p50 ms':>8}{'p95 ms':>8}{'p50/base':>9}   p95 with {runs // 10:,} "
            "runs (and 2 commits)"
        )
        worst = 0.0
        for path in paths:
            p50, p95 = many[path]
            before = few[path][1]
            grows = p95 > 2 * before and p95 - before > 5
            worst = max(worst, p95)
            flag = "  <- grows with runs/commits" if grows else ""
            ratio = p50 / baseline[0]
            print(f"{path[:43]:<44}{p50:>8.1f}{p95:>8.1f}{ratio:>8.1f}x   {before:>6.1f}{flag}")
        print(
            f"\n{int(1000 * args.scale):,} feature groups, {int(200 * args.scale):,} views, "
            f"{int(500 * args.scale):,} model versions, {runs:,} runs, 200 commits on flights; "
            f"worst p95 {worst:.1f} ms (target 100 ms)"
        )
        fs.close()


if __name__ == "__main__":
    main()
