"""The flights ML system as FTI pipelines: feature pipelines, a training pipeline and a batch
inference pipeline, each a plain typed function that fti records with its lineage.

Run one with the CLI, e.g.::

    fti run examples/flights/pipelines.py:weather_features \\
        --start 2013-01-01T00:00:00Z --end 2013-02-01T00:00:00Z
"""

from __future__ import annotations

import functools
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

import fti

sys.path.insert(0, str(Path(__file__).parent))

import features as feats
import raw

TRAIN_END = datetime(2013, 9, 1, tzinfo=UTC)
VALIDATION_END = datetime(2013, 11, 1, tzinfo=UTC)
YEAR_START = datetime(2013, 1, 1, tzinfo=UTC)
YEAR_END = datetime(2014, 1, 1, tzinfo=UTC)
MODEL = "flight_delays"


def _window(df: pd.DataFrame, column: str, start: datetime, end: datetime) -> pd.DataFrame:
    return df[(df[column] >= start) & (df[column] < end)]


# ---------------------------------------------------------------------- feature groups
def flights_group(fs: fti.FeatureStore) -> fti.FeatureGroup:
    return fs.feature_group(
        "flights",
        version=1,
        primary_key=["flight_id"],
        event_time="sched_dep",
        online=True,
        description="One row per NYC departure in 2013 with its label 'delayed' (> 15 min late)",
    )


def weather_group(fs: fti.FeatureStore) -> fti.FeatureGroup:
    return fs.feature_group(
        "weather",
        version=1,
        primary_key=["origin"],
        event_time="time_hour",
        online=True,
        description="Hourly weather per origin airport with rolling windows",
        # The raw data holds a 1048 mph wind speed at EWR on 2013-02-12: it is quarantined
        # (kept aside with the rule id, see `fti fg quarantine weather`), not trained on.
        expectations=[
            fti.expect.between("wind_speed", 0, 250, id="plausible_wind_speed"),
            fti.expect.between("humid", 0, 100, id="humidity_percent"),
            fti.expect.unique(["origin", "time_hour"]),
            fti.expect.null_fraction("temp", max=0.01, severity="warn"),
        ],
        on_invalid="quarantine",
    )


def planes_group(fs: fti.FeatureStore) -> fti.FeatureGroup:
    return fs.feature_group(
        "planes",
        version=1,
        primary_key=["tailnum"],
        online=True,
        description="Aircraft facts per tail number (a snapshot, no event time)",
    )


def ops_group(fs: fti.FeatureStore, key: str) -> fti.FeatureGroup:
    return fs.feature_group(
        f"{key}_ops",
        version=1,
        primary_key=[key],
        event_time="ops_time",
        online=True,
        description=f"Hourly 7-day arrival delay rate per {key}, from flights already landed",
    )


def predictions_group(fs: fti.FeatureStore) -> fti.FeatureGroup:
    return fs.feature_group(
        "flight_delay_predictions",
        version=1,
        primary_key=["flight_id"],
        event_time="sched_dep",
        description="Batch predictions: probability of an arrival delay > 15 min",
    )


# ---------------------------------------------------------------------- feature pipelines
@functools.lru_cache(maxsize=4)
def _ops(key: str) -> pd.DataFrame:
    """Ops features over the whole year, computed once per process (backfills reuse them)."""
    return feats.ops_rows(raw.read_flights(), key)


@functools.lru_cache(maxsize=1)
def _weather() -> pd.DataFrame:
    return feats.weather_rows(raw.read_weather())


@fti.feature_pipeline
def flights_features(fs: fti.FeatureStore, start: datetime, end: datetime) -> int:
    """Departures scheduled in [start, end) with their label."""
    fti.record_input_file(raw.raw_path("flights.csv.zip"))
    rows = feats.flight_rows(_window(raw.read_flights(), "sched_dep", start, end))
    return flights_group(fs).insert(rows).rows


@fti.feature_pipeline
def weather_features(fs: fti.FeatureStore, start: datetime, end: datetime) -> int:
    """Hourly weather observed in [start, end), with rolling windows (computed on the full
    history so windows at the start of the range are complete)."""
    fti.record_input_file(raw.raw_path("weather.csv"))
    rows = _window(_weather(), "time_hour", start, end)
    return weather_group(fs).insert(rows).rows


@fti.feature_pipeline
def planes_features(fs: fti.FeatureStore) -> int:
    """The planes snapshot."""
    fti.record_input_file(raw.raw_path("planes.csv"))
    return planes_group(fs).insert(feats.plane_rows(raw.read_planes())).rows


@fti.feature_pipeline
def ops_features(fs: fti.FeatureStore, start: datetime, end: datetime) -> int:
    """Per-carrier and per-origin delay rates for the hours in [start, end)."""
    fti.record_input_file(raw.raw_path("flights.csv.zip"))
    written = 0
    for key in ("carrier", "origin"):
        rows = _window(_ops(key), "ops_time", start, end)
        written += ops_group(fs, key).insert(rows).rows
    return written


# ---------------------------------------------------------------------- feature view
def delays_view(fs: fti.FeatureStore) -> fti.FeatureView:
    """Flights joined point-in-time with weather, planes and operational features."""
    flights = flights_group(fs)
    query = (
        flights.select(["carrier", "origin", "distance", "dep_hour", "day_of_week"])
        .join(weather_group(fs).select_all(), on=["origin"], prefix="w_")
        .join(planes_group(fs).select_all(), on=["tailnum"], prefix="p_")
        .join(ops_group(fs, "carrier").select_all(), on=["carrier"], prefix="c_")
        .join(ops_group(fs, "origin").select_all(), on=["origin"], prefix="o_")
    )
    return fs.feature_view(
        "flight_delays",
        version=1,
        query=query,
        labels=["delayed"],
        transformations={
            "carrier": fti.one_hot_encoder(),
            "origin": fti.one_hot_encoder(),
            "p_engine": fti.one_hot_encoder(),
            "distance": fti.log_transform(),
            "p_plane_year": fti.impute_mean(),
            "p_seats": fti.impute_mean(),
        },
        description="Will a departure arrive more than 15 minutes late?",
    )


# ---------------------------------------------------------------------- training
@fti.training_pipeline
def train(
    fs: fti.FeatureStore,
    train_end: datetime = TRAIN_END,
    validation_end: datetime = VALIDATION_END,
    test_end: datetime = YEAR_END,
    n_estimators: int = 300,
    learning_rate: float = 0.05,
) -> int:
    """Time split (by default train Jan-Aug, validation Sep-Oct, test Nov-Dec), LightGBM,
    metrics; register as the next model version and point the 'production' alias at it."""
    import lightgbm as lgb
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    fv = delays_view(fs)
    td = fv.create_training_dataset(
        split={
            "train": (YEAR_START, train_end),
            "validation": (train_end, validation_end),
            "test": (validation_end, test_end),
        },
        description="2013, time split by scheduled departure",
    )
    x_train, y_train = td.read("train")
    x_val, y_val = td.read("validation")
    x_test, y_test = td.read("test")
    model = lgb.LGBMClassifier(
        n_estimators=n_estimators,
        learning_rate=learning_rate,
        num_leaves=63,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        verbose=-1,
        n_jobs=2,
    )
    model.fit(
        x_train,
        y_train,
        eval_X=(x_val,),
        eval_y=(y_val,),
        callbacks=[lgb.early_stopping(30, verbose=False)],
    )
    y = y_test.to_numpy()
    p = model.predict_proba(x_test)[:, 1]
    majority = float(max(y.mean(), 1 - y.mean()))
    metrics = {
        "test_auc": float(roc_auc_score(y, p)),
        "test_log_loss": float(log_loss(y, p)),
        "test_accuracy": float(accuracy_score(y, p >= 0.5)),
        "test_majority_baseline_accuracy": majority,
        "train_rows": len(x_train),
        "test_rows": len(x_test),
    }
    mv = fs.models.register(
        MODEL,
        model,
        metrics=metrics,
        feature_view=fv,
        training_dataset=td,
        description="LightGBM on flights + weather + planes + ops features",
    )
    fs.models.set_alias(MODEL, "production", mv.version)
    return mv.version


# ---------------------------------------------------------------------- batch inference
@fti.inference_pipeline
def score(fs: fti.FeatureStore, start: datetime, end: datetime, alias: str = "production") -> int:
    """Score the departures in [start, end) with the aliased model; write the predictions."""
    mv = fs.models.get(MODEL, alias=alias)
    fv = mv.feature_view()
    td_version = mv.spec.training_dataset.version if mv.spec.training_dataset else None
    batch = fv.batch_data(
        start=start, end=end, training_dataset_version=td_version, with_entities=True
    )
    entity_cols = ["flight_id", "sched_dep"]
    features = batch.drop(columns=[c for c in entity_cols if c in batch.columns])
    model = mv.load()
    proba = model.predict_proba(features[model.feature_name_])[:, 1]
    out = pd.DataFrame(
        {
            "flight_id": batch["flight_id"].to_numpy(),
            "sched_dep": batch["sched_dep"],
            "delay_probability": proba.astype(np.float64),
            "model_name": MODEL,
            "model_version": np.int64(mv.version),
        }
    )
    return predictions_group(fs).insert(out).rows
