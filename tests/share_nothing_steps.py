"""The steps of a small ML system, each run as its own process by the share-nothing test:

    python -m share_nothing_steps feature|training|batch

Each connects with ``fti.connect()`` and nothing else: where the store lives comes only from
``FTI_*`` URLs in the environment (or, for the embedded reference run, ``FTI_HOME``). Results
are printed as one JSON line.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

import fti

T0 = datetime(2026, 3, 1, tzinfo=UTC)
N = 240


def _rides(seed: int, start: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = np.arange(start, start + n)
    distance = rng.uniform(1, 30, n).round(2)
    hour = rng.integers(0, 24, n)
    return pd.DataFrame(
        {
            "ride_id": ids,
            "ts": [T0 + timedelta(minutes=int(i)) for i in ids],
            "distance": distance,
            "hour": hour,
            "late": ((distance > 15) ^ (hour > 18)).astype("int64"),
        }
    )


@fti.feature_pipeline
def rides_features(fs: fti.FeatureStore) -> None:
    fg = fs.feature_group("rides", primary_key=["ride_id"], event_time="ts", online=True)
    fg.insert(_rides(1, 0, N // 2))
    fg.insert(_rides(2, N // 2, N // 2))
    fix = _rides(1, 0, 1).assign(distance=29.5)  # a correction: same key and time
    fg.insert(fix)


@fti.training_pipeline
def rides_training(fs: fti.FeatureStore) -> None:
    from sklearn.tree import DecisionTreeClassifier

    fg = fs.get_feature_group("rides", version=1)
    fv = fs.feature_view(
        "rides_fv",
        query=fg.select(["distance", "hour"]),
        labels=["late"],
        transformations={"distance": fti.standard_scaler()},
    )
    td = fv.create_training_dataset(split={"train": 0.75, "test": 0.25}, seed=3)
    x_train, y_train = td.read("train")
    x_test, y_test = td.read("test")
    clf = DecisionTreeClassifier(max_depth=3, random_state=0).fit(x_train, np.ravel(y_train))
    accuracy = float((clf.predict(x_test) == np.ravel(y_test)).mean())
    fs.models.register(
        "rides_model",
        clf,
        metrics={"accuracy": accuracy},
        training_dataset=td,
        input_example=x_train.head(2),
    )


def feature() -> dict[str, Any]:
    with fti.connect() as fs:
        run = fti.run_pipeline(rides_features, fs=fs)
        fg = fs.get_feature_group("rides", version=1)
        return {
            "status": run.status,
            "rows": len(fg.read()),
            "version": fg.stats()["offline_version"],
        }


def training() -> dict[str, Any]:
    with fti.connect() as fs:
        run = fti.run_pipeline(rides_training, fs=fs)
        mv = fs.models.get("rides_model")
        return {"status": run.status, "model_version": mv.version, "metrics": mv.metrics}


def batch() -> dict[str, Any]:
    with fti.connect() as fs:
        mv = fs.models.get("rides_model")
        fv = fs.get_feature_view("rides_fv", version=1)
        x = fv.batch_data(start=T0, end=T0 + timedelta(days=1), training_dataset_version=1)
        predictions = mv.load().predict(x)
        return {"rows": len(x), "predictions": [int(p) for p in predictions]}


if __name__ == "__main__":
    step = {"feature": feature, "training": training, "batch": batch}[sys.argv[1]]
    print(json.dumps(step()), flush=True)
