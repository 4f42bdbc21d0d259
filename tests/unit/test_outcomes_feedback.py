"""The feedback loop: logged requests + outcomes -> the next training data, through a feature
view that joins the ``<model>_outcomes`` group as labels; and logs of several view versions
read as one timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fti
from fti.services import prediction_logs
from fti.services.prediction_logs import LogRow

T0 = datetime(2026, 3, 2, tzinfo=UTC)
DAY = timedelta(days=1)


def _flights(fs: fti.FeatureStore) -> fti.FeatureGroup:
    fg = fs.feature_group(
        "flights",
        primary_key=["flight_id"],
        event_time="ts",
        features={
            "flight_id": "int64",
            "ts": "timestamp",
            "distance": "float64",
            "dep_hour": "int64",
        },
    )
    ids = list(range(1, 21))
    fg.insert(
        pd.DataFrame(
            {
                "flight_id": ids,
                "ts": [T0] * 20,
                "distance": [100.0 * i for i in ids],
                "dep_hour": [i % 24 for i in ids],
            }
        )
    )
    # Two days later half the flights change: predictions after that see the new values.
    fg.insert(
        pd.DataFrame(
            {
                "flight_id": ids[:10],
                "ts": [T0 + 2 * DAY] * 10,
                "distance": [5.0 * i for i in ids[:10]],
                "dep_hour": [23] * 10,
            }
        )
    )
    return fg


@dataclass
class _Field:
    name: str
    dtype: str


@dataclass
class _Ref:
    """What the registry reads from a feature view (the log is all this test needs)."""

    name: str
    version: int
    features: list[_Field]
    labels: list[str]


def _model(x: pd.DataFrame) -> object:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(x, (x["distance"] > 500).astype("int64"))


def test_logged_requests_and_outcomes_become_the_next_training_data(
    fs: fti.FeatureStore,
) -> None:
    flights = _flights(fs)
    fv = fs.feature_view("delays", version=1, query=flights.select(["distance", "dep_hour"]))
    train = fv.training_data(start=T0, end=T0 + DAY)
    fs.models.register("delays", _model(train[["distance", "dep_hour"]]), feature_view=fv)

    # Serving: every flight is scored on day 1 and again on day 3, features as the store knew
    # them then (the point-in-time join at the request time is what online serving returns).
    rng = np.random.default_rng(1)
    rows = []
    for day in (1, 3):
        at = T0 + day * DAY
        spine = pd.DataFrame({"flight_id": range(1, 21), "ts": [at] * 20})
        feats = fv.training_data(spine=spine)
        for i, r in feats.iterrows():
            p = float(rng.random())
            rows.append(
                LogRow(
                    f"d{day}-{i}",
                    0,
                    at,
                    {"flight_id": int(r["flight_id"])},
                    {},
                    {"distance": r["distance"], "dep_hour": int(r["dep_hour"])},
                    None,
                    int(p > 0.5),
                    "delays",
                    1,
                    None,
                    p,
                )
            )
    prediction_logs.append(fs._ctx, prediction_logs.log_spec(fs._ctx, "delays", 1), rows)

    # The real outcomes arrive a day after each flight, keyed by flight: each one labels the
    # predictions of its flight since the previous outcome.
    delayed = {(k, d): int((k + d) % 3 == 0) for k in range(1, 21) for d in (1, 3)}
    outcomes = pd.DataFrame(
        [
            {"flight_id": k, "outcome_time": T0 + (d + 1) * DAY, "delayed": delayed[(k, d)]}
            for k in range(1, 21)
            for d in (1, 3)
        ]
    )
    assert fs.models.log_outcomes("delays", outcomes).rows == 40

    # The next training data: the logged requests as the spine, the outcomes group as labels.
    labels = fs.get_feature_group("delays_outcomes", version=1)
    retrain = fs.feature_view(
        "delays_retrain",
        query=flights.select(["distance", "dep_hour"]).join(
            labels.select(["delayed"]), on=["flight_id"]
        ),
        labels=["delayed"],
    )
    log = fv.read_log(model="delays")
    spine = log[["flight_id", "logged_at"]].rename(columns={"logged_at": "ts"})
    td = retrain.training_data(spine=spine)
    assert len(td) == 40
    # Features equal what was logged (nothing drifted between serving and the join) ...
    assert td["distance"].tolist() == log["distance"].tolist()
    assert td["dep_hour"].tolist() == log["dep_hour"].tolist()
    # ... and each row carries the outcome of its own prediction, not an older one.
    days = [1 if t < T0 + 2 * DAY else 3 for t in log["logged_at"]]
    assert td["delayed"].tolist() == [
        delayed[(int(k), d)] for k, d in zip(log["flight_id"], days, strict=True)
    ]
    # The same rows make a training dataset version.
    X, y = retrain.create_training_dataset(spine=spine).read("train")
    assert len(X) == len(y) == 40
    assert list(X.columns) == ["distance", "dep_hour"]


def test_read_log_across_view_versions_is_one_timeline(fs: fti.FeatureStore) -> None:
    flights = _flights(fs)
    v1 = fs.feature_view("delays", version=1, query=flights.select(["distance"]))
    fs.feature_view("delays", version=2, query=flights.select(["distance", "dep_hour"]))

    def log(version: int, rid: str, at: datetime, features: dict[str, object]) -> None:
        spec = prediction_logs.log_spec(fs._ctx, "delays", version)
        row = LogRow(rid, 0, at, {"flight_id": 1}, {}, features, None, 1, "m", version, None)
        prediction_logs.append(fs._ctx, spec, [row])

    log(1, "a", T0, {"distance": 1.0})
    log(2, "b", T0 + DAY, {"distance": 2.0, "dep_hour": 5})
    log(1, "c", T0 + 2 * DAY, {"distance": 3.0})
    both = v1.read_log(versions="all")
    assert both["request_id"].tolist() == ["a", "b", "c"]
    assert both["view_version"].tolist() == [1, 2, 1]
    assert both["model_version"].tolist() == [1, 2, 1]
    assert both["dep_hour"].isna().tolist() == [True, False, True]
    assert v1.read_log(versions=[2])["request_id"].tolist() == ["b"]
    assert v1.read_log()["request_id"].tolist() == ["a", "c"]


# ---------------------------------------------------------------------------- property
_times = st.integers(min_value=0, max_value=40)


@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    predictions=st.lists(
        st.tuples(st.integers(1, 3), _times), min_size=1, max_size=12, unique=True
    ),
    calls=st.lists(
        st.lists(
            st.tuples(st.integers(1, 3), _times, st.integers(0, 1)),
            min_size=1,
            max_size=5,
            unique_by=lambda o: (o[0], o[1]),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_outcomes_by_key_match_the_first_outcome_at_or_after_each_prediction(
    tmp_path_factory: pytest.TempPathFactory,
    predictions: list[tuple[int, int]],
    calls: list[list[tuple[int, int, int]]],
) -> None:
    """Oracle: after any sequence of calls, a prediction (key k, time p) carries the label of
    the earliest outcome of k with time >= p among every outcome logged so far (a later call's
    outcome at the same key and time replacing the earlier one); none if there is none."""
    fs = fti.connect(tmp_path_factory.mktemp("store"))
    try:
        fs.models.register(
            "m",
            _model(pd.DataFrame({"distance": [1.0, 900.0]})),
            feature_view=_Ref("v", 1, [_Field("distance", "float64")], []),
        )
        rows = [
            LogRow(f"p{i}", 0, T0 + timedelta(hours=t), {"k": k}, {}, {}, None, 1, "m", 1, None)
            for i, (k, t) in enumerate(predictions)
        ]
        prediction_logs.append(fs._ctx, prediction_logs.log_spec(fs._ctx, "v", 1), rows)
        known: dict[tuple[int, int], int] = {}
        for call in calls:
            frame = pd.DataFrame(
                {
                    "k": [k for k, _, _ in call],
                    "outcome_time": [T0 + timedelta(hours=t) for _, t, _ in call],
                    "y": [y for _, _, y in call],
                }
            )
            fs.models.log_outcomes("m", frame, on_unknown="skip")
            known.update({(k, t): y for k, t, y in call})
        expected = {}
        for i, (k, p) in enumerate(predictions):
            later = sorted(t for kk, t in known if kk == k and t >= p)
            if later:
                expected[f"p{i}"] = known[(k, later[0])]
        spec = fs.get_feature_group("m_outcomes", version=1) if expected else None
        got = (
            {}
            if spec is None
            else dict(zip(*(spec.read()[c] for c in ("request_id", "y")), strict=True))
        )
        assert got == expected
    finally:
        fs.close()
