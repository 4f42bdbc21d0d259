"""After deployment: the test months' flights are scored and logged, their real outcomes
(delayed more than 15 minutes) arrive a day after departure through ``log_outcomes``, and
``fs.models.performance`` gives the live AUC per week with the label coverage, next to the
training dataset's test AUC. The outcomes of the last days have not arrived yet
(``--outcome-lag``): those weeks are only partly labelled.

A weather drift monitor compares each month's weather with the training months' (PSI per
feature, run as ``fti scheduler`` would at each month start); ``serve_demo.py`` adds a skew
monitor over the requests the model server logged (``skew_monitor``).
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

import fti

sys.path.insert(0, str(Path(__file__).parent))

import pipelines as p

__all__ = ["WEATHER_FEATURES", "live_metrics", "skew_monitor", "weather_drift"]

OUTCOME_DELAY = timedelta(days=1)  # an arrival is known a day after the departure
WEATHER_FEATURES = ["temp", "humid", "wind_speed", "visib", "pressure"]


def weather_drift(fs: fti.FeatureStore, train_end: datetime, end: datetime) -> pd.DataFrame:
    """Run a weather drift monitor (reference: the training months; detection: the 28 days
    before each month start from the second month to ``end``) and return its history."""
    mon = fs.monitor(
        "weather_drift",
        feature_group=p.weather_group(fs),
        features=WEATHER_FEATURES,
        reference=fti.window(start=p.YEAR_START, end=train_end),
        detection=fti.window(last=timedelta(days=28)),
        metric="psi",
        schedule="0 0 1 * *",  # monthly under `fti scheduler`; here run for each past month
    )
    month = p.YEAR_START
    while month < end:
        month = datetime(
            month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=month.tzinfo
        )
        mon.run(now=month)
    history: pd.DataFrame = mon.history()
    return history


def skew_monitor(fs: fti.FeatureStore) -> dict[str, Any]:
    """Check the requests the model server logged in the last hour for training-serving skew
    (each logged feature vector recomputed offline as known at its request time)."""
    mon = fs.monitor(
        "flight_delays_skew",
        model=p.MODEL,
        metric="skew",
        detection=fti.window(last=timedelta(hours=1)),
        sample=1_000,
    )
    return mon.run()


def live_metrics(
    fs: fti.FeatureStore,
    start: datetime,
    end: datetime,
    *,
    missing_last: timedelta = timedelta(days=5),
) -> pd.DataFrame:
    """Score [start, end) with the production model, log the predictions, log the outcomes
    known by ``end - missing_last + OUTCOME_DELAY``, and return the weekly live metrics."""
    mv = fs.models.get(p.MODEL, alias="production")
    fv = mv.feature_view()
    batch = fv.batch_data(start=start, end=end, with_entities=True)
    model = mv.load()
    proba = model.predict_proba(batch[model.feature_name_])[:, 1]
    # Each departure is scored at its scheduled time, as the online server would have been asked.
    scored = pd.DataFrame(
        {
            "flight_id": batch["flight_id"].to_numpy(),
            "logged_at": batch["sched_dep"],
            "prediction": (proba >= 0.5).astype("int64"),
            "probability": proba,
        }
    )
    fs.models.log_predictions(p.MODEL, scored, keys=["flight_id"], version=mv.version)

    # The outcomes: the real label of each flight, known a day after its departure (and not
    # yet for the last days), attached by flight id: each labels its flight's predictions.
    flights = p.flights_group(fs).read(start=start, end=end - missing_last)
    outcomes = pd.DataFrame(
        {
            "flight_id": flights["flight_id"],
            "outcome_time": flights["sched_dep"] + OUTCOME_DELAY,
            "delayed": flights["delayed"].astype("int64"),
        }
    )
    fs.models.log_outcomes(p.MODEL, outcomes, on_unknown="skip")
    return fs.models.performance(p.MODEL, start=start, end=end, every="7D")
