"""A small serving world for tests and benchmarks: two online feature groups joined in a
feature view with transformations and an on-demand feature, a training dataset and a model.

Importable by reference (the on-demand function is stored as ``serving_world:per_hour``), so
subprocesses need this folder on ``PYTHONPATH``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa

import fti

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ORIGINS = ["JFK", "LGA", "EWR", "BOS"]  # BOS has no airport rows: joined features are null
CARRIERS = ["AA", "B6", "DL", "UA"]


@fti.on_demand(inputs=["distance"], request=["dep_hour"], dtype="float64")
def per_hour(distance: float | None, dep_hour: int | None) -> float | None:
    """Distance per departure hour (a toy on-demand feature)."""
    if distance is None or dep_hour is None:
        return None
    return distance / (dep_hour + 1)


@dataclass
class World:
    fs: fti.FeatureStore
    fv: Any
    td: Any
    model_name: str
    trip_ids: list[int]


def _value(rng: random.Random) -> float | None:
    r = rng.random()
    if r < 0.08:
        return None
    if r < 0.14:
        return math.nan
    return round(rng.uniform(-10, 30), 3)


def build(fs: fti.FeatureStore, *, trips: int = 300, seed: int = 7, model: bool = True) -> World:
    """Insert data, create the view, a training dataset and (optionally) register a model."""
    rng = random.Random(seed)
    trip_fg = fs.feature_group(
        "trips",
        primary_key=["trip_id"],
        event_time="ts",
        online=True,
        features={
            "trip_id": "int64",
            "ts": "timestamp",
            "distance": "float64",
            "carrier": "string",
            "origin": "string",
            "late": "int64",
        },
    )
    air_fg = fs.feature_group(
        "airport",
        primary_key=["origin"],
        event_time="ts",
        online=True,
        features={
            "origin": "string",
            "ts": "timestamp",
            "temp": "float64",
            "wind": "float64",
            "visib": "float64",
        },
    )
    rows = []
    for i in range(trips):
        rows.append(
            {
                "trip_id": i,
                "ts": T0 + timedelta(minutes=rng.randrange(0, 600)),
                "distance": None if rng.random() < 0.05 else float(rng.randrange(100, 3000)),
                "carrier": rng.choice(CARRIERS) if rng.random() > 0.05 else None,
                "origin": rng.choice(ORIGINS),
                "late": rng.randrange(0, 2),
            }
        )
    # A correction (same key and time, inserted later) and an update with a later time.
    trip_fg.insert(pd.DataFrame(rows))
    fixes = [dict(rows[0], distance=1234.0), dict(rows[1], ts=rows[1]["ts"] + timedelta(hours=1))]
    trip_fg.insert(pd.DataFrame(fixes))
    weather = []
    for origin in ORIGINS[:3]:
        for h in range(12):
            weather.append(
                {
                    "origin": origin,
                    "ts": T0 + timedelta(hours=h),
                    "temp": _value(rng),
                    "wind": _value(rng),
                    "visib": _value(rng),
                }
            )
    # The latest JFK row (the online one) carries a null and a NaN, LGA's a NaN temperature.
    weather[11].update(wind=None, visib=math.nan)
    weather[23].update(temp=math.nan)
    # Arrow keeps NaN and null apart (pandas would turn NaN into null on the way in).
    air_fg.insert(pa.Table.from_pylist(weather))
    fv = fs.feature_view(
        "trips_view",
        query=trip_fg.select(["distance", "carrier"]).join(
            air_fg.select(["temp", "wind", "visib"]), on=["origin"], prefix="a_"
        ),
        labels=["late"],
        transformations={
            "distance": fti.standard_scaler(),
            "carrier": fti.one_hot_encoder(),
            "a_temp": fti.impute_mean(),
            "per_hour": fti.min_max_scaler(),
        },
        on_demand=[per_hour],
    )
    spine = pd.DataFrame(
        {
            "trip_id": list(range(trips)),
            "ts": [T0 + timedelta(hours=13)] * trips,
            "dep_hour": [i % 24 for i in range(trips)],
        }
    )
    td = fv.create_training_dataset(spine=spine, split={"train": 0.8, "test": 0.2}, seed=1)
    name = "trip_model"
    if model:
        from sklearn.tree import DecisionTreeClassifier

        # A tree: handles NaN, and predicts without an OpenMP pool (fast on a busy machine).
        X, y = td.read("train")
        clf = DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, y)
        # The training dataset names the feature view; the example gives the transformed
        # column names the model was fitted on.
        fs.models.register(name, clf, training_dataset=td, input_example=X.head(2))
    return World(fs, fv, td, name, list(range(trips)))
