"""A small store for the web UI tests: every kind of object the pages show, plus hostile text.

``flights`` -> view ``delays`` -> training dataset 1 -> model ``delays`` (two versions, alias
``production``); 30 ``extra_*`` groups (two pages of the list); a group ``evil`` whose
description and cell values are HTML/JS; a group ``checked`` whose last insert failed a rule
(quarantined rows); runs that succeeded, failed (with a traceback) and died; a stream
checkpoint; logged predictions and outcomes of ``delays`` (two more groups: ``delays_log``,
``delays_outcomes``) and a drift monitor run twice. Built in a few seconds."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

import fti
from fti.pipelines.runs import finish_run, start_run
from fti.store import context_of
from lifecycle_world import build as build_lifecycle

__all__ = ["EVIL_CELL", "EVIL_DESCRIPTION", "build"]

EVIL_DESCRIPTION = '<script>window.__xss = 1</script>"><img src=x onerror="window.__xss=2">'
EVIL_CELL = '"><img src=x onerror=alert(1)><script>window.__xss=3</script>'
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _runs(fs: fti.FeatureStore) -> dict[str, str]:
    ctx = context_of(fs)
    ids = {}
    ok = start_run(
        ctx, kind="feature", pipeline="flights_features", function="flows:features",
        parameters={"days": 3}, source=None,
    )  # fmt: skip
    finish_run(
        ctx,
        ok,
        status="succeeded",
        error=None,
        inputs=[{"kind": "file", "name": "/data/flights.csv", "sha256": "ab" * 32, "size": 1234}],
        outputs=[{"kind": "feature_group", "name": "flights", "version": 1, "table_version": 0}],
    )
    ids["succeeded"] = ok.name
    bad = start_run(
        ctx, kind="training", pipeline="train_delays", function="flows:train",
        parameters={"max_depth": 6}, source=None,
    )  # fmt: skip
    finish_run(
        ctx,
        bad,
        status="failed",
        error="ValueError: <b>no rows</b> in the training window",
        inputs=[{"kind": "feature_view", "name": "delays", "version": 1}],
        outputs=[],
        extra={"traceback": 'Traceback (most recent call last):\n  File "flows.py", line 3\n'},
    )
    ids["failed"] = bad.name
    dead = start_run(
        ctx, kind="feature", pipeline="flights_features", function="flows:features",
        parameters={}, source=None,
    )  # fmt: skip
    # a running record whose writer (pid 2**22 + 7 on this host) is gone: the UI says "died"
    body = {**dead.body, "pid": 2**22 + 7, "host": socket.gethostname()}
    ctx.registry.update("run", dead.name, 1, body, revision=dead.revision)
    ids["died"] = dead.name
    return ids


def _monitoring(fs: fti.FeatureStore, world: Any) -> None:
    """Predictions of ``delays`` logged over three days with outcomes for most of them, and a
    drift monitor on the view ``delays`` run twice: the model page draws both."""
    n = 60
    ids = list(range(n))
    probability = [((i * 37) % 100) / 100 for i in ids]
    fs.models.log_predictions(
        "delays",
        pd.DataFrame(
            {
                "id": ids,
                "prediction": [int(p >= 0.5) for p in probability],
                "probability": probability,
                "logged_at": [T0 + timedelta(hours=72 * i / n) for i in ids],
                "request_id": [f"q{i}" for i in ids],
            }
        ),
        keys=["id"],
    )
    fs.models.log_outcomes(
        "delays",
        pd.DataFrame(
            {
                "request_id": [f"q{i}" for i in ids if i % 4],
                "delayed": [int(probability[i] > 0.3) for i in ids if i % 4],
            }
        ),
    )
    monitor = fs.monitor(
        "distance_drift",
        feature_view=world.fv,
        features=["distance"],
        reference=world.td,
        detection=fti.window(start=T0, end=T0 + timedelta(minutes=20)),
    )
    monitor.run()
    monitor.run()


def build(fs: fti.FeatureStore) -> dict[str, Any]:
    """Fill ``fs``; returns the names the tests look for."""
    world = build_lifecycle(fs)
    from sklearn.linear_model import LogisticRegression

    x, y = world.td.read("train")
    mv2 = fs.models.register(
        "delays",
        LogisticRegression(C=0.5).fit(x, y),
        training_dataset=world.td,
        metrics={"auc": 0.81, "accuracy": 0.7},
        description="second try",
    )
    for i in range(30):
        fs.feature_group(
            f"extra_{i:02d}", primary_key=["k"], event_time="at", description=f"extra group {i}"
        )
    evil = fs.feature_group(
        "evil", primary_key=["k"], event_time="at", description=EVIL_DESCRIPTION
    )
    evil.insert(pd.DataFrame({"k": [EVIL_CELL, "fine"], "at": [T0, T0], "v": [1.0, 2.0]}))
    checked = fs.feature_group(
        "checked",
        primary_key=["k"],
        event_time="at",
        expectations=[fti.expect.not_null("v")],
        on_invalid="quarantine",
    )
    at = [T0 + timedelta(hours=i) for i in range(3)]
    checked.insert(pd.DataFrame({"k": ["a", "b", "c"], "at": at, "v": [1.0, None, 3.0]}))
    context_of(fs).registry.create(
        "stream_checkpoint",
        "clicks",
        1,
        {
            "status": "running",
            "lag": 12,
            "throughput": 250.5,
            "last_checkpoint_at": T0.isoformat(),
            "counters": {"records": 1000, "duplicates": 3, "late": 2, "invalid": 1},
            "watermark": int(T0.timestamp() * 1e6),
            "source": "redis://user:secret@127.0.0.1:6379/0",
        },
    )
    _monitoring(fs, world)
    return {"runs": _runs(fs), "model_versions": [world.mv.version, mv2.version]}
