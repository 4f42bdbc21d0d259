"""Online predictions through the model server, their outcomes attached by the request ids the
server returned, and live metrics over what the server logged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import roc_auc_score

import fti
import serving_world
from fti.serving import create_app


@pytest.fixture
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[serving_world.World]:
    fs = fti.connect(tmp_path_factory.mktemp("outcomes") / "store")
    yield serving_world.build(fs, trips=120)
    fs.close()


def test_outcomes_of_served_predictions_give_live_metrics(world: serving_world.World) -> None:
    started = datetime.now(UTC)
    app = create_app(world.fs, world.model_name)
    url = f"/v1/models/{world.model_name}/predict"
    served = []
    with TestClient(app) as c:
        for i in range(30):
            r = c.post(
                url,
                json={
                    "entities": [{"trip_id": i}, {"trip_id": i + 60}],
                    "request": {"dep_hour": i % 24},
                },
            )
            assert r.status_code == 200, r.text
            body = r.json()
            for position, p in enumerate(body["probabilities"]):
                served.append((body["request_id"], position, p))
    # Leaving the client flushed the log writer. The outcomes arrive later, by request id.
    truth = [int((i * 7) % 3 == 0) for i in range(len(served))]
    outcomes = pd.DataFrame(
        {
            "request_id": [rid for rid, _, _ in served],
            "position": [pos for _, pos, _ in served],
            "late": truth,
        }
    )
    report = world.fs.models.log_outcomes(world.model_name, outcomes)
    assert report.rows == 60
    # One bucket from the test's start holds every request.
    perf = world.fs.models.performance(world.model_name, start=started, every="1000D")
    assert perf[["predictions", "labelled"]].values.tolist() == [[60, 60]]
    assert perf["model_version"][0] == 1
    expected = roc_auc_score(truth, [p for _, _, p in served])
    assert perf["auc"][0] == pytest.approx(expected, abs=1e-9)
