"""After deployment: the test months' flights are scored and logged, their real outcomes
(delayed more than 15 minutes) arrive a day after departure through ``log_outcomes``, and
``fs.models.performance`` gives the live AUC per week with the label coverage, next to the
training dataset's test AUC. The outcomes of the last days have not arrived yet
(``--outcome-lag``): those weeks are only partly labelled.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

import fti

sys.path.insert(0, str(Path(__file__).parent))

import pipelines as p

__all__ = ["live_metrics"]

OUTCOME_DELAY = timedelta(days=1)  # an arrival is known a day after the departure


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
