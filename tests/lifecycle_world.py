"""A small store with every kind of dependant, and snapshots that prove a delete touched
nothing but its target (shared by the embedded and the Redis/PostgreSQL lifecycle tests)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import fti
from fti.services.feature_groups import online_table
from fti.store import context_of

__all__ = ["KINDS", "World", "build", "offline_files", "online_rows", "registry_snapshot"]

T0 = datetime(2024, 1, 1, tzinfo=UTC)
KINDS = ("feature_group", "feature_view", "training_dataset", "model", "model_alias")


@dataclass
class World:
    flights: fti.FeatureGroup
    other: fti.FeatureGroup
    fv: fti.FeatureView
    td: Any
    mv: fti.ModelVersion


def build(fs: fti.FeatureStore, n: int = 40) -> World:
    """``flights`` (online) <- view ``delays`` <- training dataset 1 <- model ``delays`` 1
    <- alias ``production``; and ``other``, an unrelated online group."""
    rng = np.random.default_rng(3)
    flights = fs.feature_group("flights", primary_key=["id"], event_time="at", online=True)
    distance = rng.random(n) * 100
    flights.insert(
        pd.DataFrame(
            {
                "id": np.arange(n, dtype="int64"),
                "at": [T0 + timedelta(minutes=i) for i in range(n)],
                "distance": distance,
                "delayed": (distance > 50).astype("int64"),
            }
        )
    )
    other = fs.feature_group("other", primary_key=["k"], event_time="at", online=True)
    for i in range(2):  # two commits
        other.insert(
            pd.DataFrame({"k": ["a", "b"], "at": [T0, T0 + timedelta(hours=i)], "v": [i, i + 1.5]})
        )
    fv = fs.feature_view("delays", query=flights.select(["distance"]), labels=["delayed"])
    td = fv.create_training_dataset(split={"train": 0.5, "test": 0.5}, seed=1)
    x, y = td.read("train")
    from sklearn.linear_model import LogisticRegression

    mv = fs.models.register("delays", LogisticRegression().fit(x, y), training_dataset=td)
    fs.models.set_alias("delays", "production", mv.version)
    return World(flights, other, fv, td, mv)


def offline_files(fs: fti.FeatureStore, table: str) -> dict[str, str]:
    """Every file of an offline table (relative path -> sha256)."""
    base = Path(context_of(fs).offline.url.removeprefix("file://")) / table
    return {
        str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(base.rglob("*"))
        if p.is_file()
    }


def online_rows(fs: fti.FeatureStore, fg: fti.FeatureGroup, keys: list[dict[str, Any]]) -> Any:
    """The stored online rows of ``keys``, the key count and the applied offline versions."""
    ctx = context_of(fs)
    table = online_table(fg.spec)
    tuples = [tuple(k[c] for c in fg.primary_key) for k in keys]
    return (
        ctx.online.read(table, tuples),
        ctx.online.count(table),
        ctx.online.applied_versions(table),
    )


def registry_snapshot(fs: fti.FeatureStore) -> dict[tuple[str, str, int], Any]:
    """Every record of the lifecycle kinds with its revision, timestamps and events."""
    reg = context_of(fs).registry
    return {
        (r.kind, r.name, r.version): (r.body, r.revision, r.updated_at, reg.events(*key))
        for kind in KINDS
        for r in reg.records(kind)
        for key in [(r.kind, r.name, r.version)]
    }
