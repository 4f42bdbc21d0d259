"""The predict route's fast path (below FastAPI, #15.3) answers exactly as the FastAPI route:
the same status, headers that matter and body for good requests, bad bodies, bad tokens,
another model's name and prediction errors; and it is the path that answers the good ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

import serving_world
from fti.services.tokens import create_token
from fti.serving import create_app
from fti.store import context_of


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[serving_world.World]:
    import fti

    fs = fti.connect(tmp_path_factory.mktemp("fast") / "store")
    yield serving_world.build(fs, trips=40)
    fs.close()


def _cases(model: str, tokens: dict[str, str]) -> list[tuple[str, dict[str, str], bytes]]:
    """(path, headers, body) of requests good and bad."""
    url = f"/v1/models/{model}/predict"
    good = {"authorization": f"Bearer {tokens['predict']}"} if tokens else {}
    js = {"content-type": "application/json"}

    def body(obj: Any) -> bytes:
        return json.dumps(obj).encode()

    cases = [
        (url, {**js, **good}, body({"entities": [{"trip_id": 1}], "request": {"dep_hour": 3}})),
        (
            url,
            {**js, **good},
            body(
                {
                    "entities": [{"trip_id": 2}, {"trip_id": 3}],
                    "request": {"dep_hour": 5},
                    "return_features": True,
                }
            ),
        ),
        (url, {**js, **good}, body({"entities": [{"trip_id": 99_999}], "request": {}})),
        (url, {**js, **good}, body({"entities": [{"trip_id": "1"}]})),
        (url, {**js, **good}, body({"entities": [{"trip_id": 1}], "extra": 1})),
        (url, {**js, **good}, body({"entities": []})),
        (url, {**js, **good}, b"{not json"),
        (url, {**js, **good}, body([1, 2])),
        (url, {**js, **good}, b""),
        (url.replace(model, "another"), {**js, **good}, body({"entities": [{"trip_id": 1}]})),
    ]
    if tokens:
        cases += [
            (url, js, body({"entities": [{"trip_id": 1}]})),
            (url, {**js, "authorization": "Bearer nope"}, body({"entities": [{"trip_id": 1}]})),
            (
                url,
                {**js, "authorization": f"Bearer {tokens['read']}"},
                body({"entities": [{"trip_id": 1}]}),
            ),
            (
                url,
                {**js, "authorization": f"basic {tokens['predict']}"},
                body({"entities": [{"trip_id": 1}]}),
            ),
        ]
    return cases


def _answer(client: TestClient, path: str, headers: dict[str, str], body: bytes) -> Any:
    r = client.post(path, headers=headers, content=body)
    payload = r.json()
    if isinstance(payload, dict):
        payload.pop("request_id", None)
    return (
        r.status_code,
        r.headers.get("content-type"),
        r.headers.get("www-authenticate"),
        bool(r.headers.get("x-request-id")),
        payload,
    )


@pytest.mark.parametrize("auth", [False, True], ids=["no-auth", "auth"])
def test_the_fast_path_answers_as_fastapi_does(world: serving_world.World, auth: bool) -> None:
    ctx = context_of(world.fs)
    tokens = {s: create_token(ctx, s)[0] for s in ("predict", "read")} if auth else {}
    cases = _cases(world.model_name, tokens)
    answers = {}
    counts = {}
    for fast in (True, False):
        app = create_app(
            world.fs, world.model_name, auth=auth, log_predictions=False, fast_path=fast
        )
        with TestClient(app) as client:
            answers[fast] = [_answer(client, *case) for case in cases]
            reader = {"authorization": f"Bearer {tokens['read']}"} if auth else {}
            metrics = client.get("/metrics", headers=reader).text
        counts[fast] = (app.state.fti.fast_answers, _predict_lines(metrics))
    assert answers[True] == answers[False]
    statuses = [a[0] for a in answers[True]]
    assert statuses[:10] == [200, 200, 404, 422, 422, 422, 422, 422, 422, 404]
    if auth:
        assert statuses[10:] == [401, 401, 403, 401]
    # The good requests were answered below FastAPI (only those: 2), and the metrics (route
    # label, status, predictions, errors) are the same whichever path answered.
    assert counts[True][0] == 2
    assert counts[False][0] == 0
    assert counts[True][1] == counts[False][1]
    lines = "\n".join(counts[True][1])
    assert "fti_predictions_total 3" in lines
    assert 'route="/v1/models/{name}/predict",method="POST",status="200"} 2' in lines
    assert 'route="/v1/models/{name}/predict",kind="NotFoundError"} 2' in lines


def _predict_lines(metrics: str) -> list[str]:
    keep = ("fti_requests_total", "fti_errors_total", "fti_predictions_total")
    return sorted(
        line
        for line in metrics.splitlines()
        if line.startswith(keep) and ("predict" in line or line.startswith(keep[2]))
    )
