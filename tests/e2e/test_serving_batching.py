"""Predict requests that arrive together are computed as one batch (#15.3), and each answer is
exactly the answer the request gets alone; a bad request in a batch fails alone."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

import serving_world
from fti.serving import create_app
from fti.serving.runtime import PredictCall


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[serving_world.World]:
    import fti

    fs = fti.connect(tmp_path_factory.mktemp("batching") / "store")
    yield serving_world.build(fs, trips=60)
    fs.close()


def _gated_loader(world: serving_world.World, gate: threading.Event, sizes: list[int]) -> Any:
    """The world's model, whose first call waits for ``gate``: requests sent meanwhile queue."""
    from fti.serving.loading import model_loader
    from fti.serving.runtime import ModelRef

    good = model_loader(world.fs, ModelRef(world.model_name))

    def loader() -> Any:
        served = good()

        def predict(vectors: list[list[Any]]) -> Any:
            sizes.append(len(vectors))
            gate.wait(10)
            return served.predict(vectors)

        return replace(served, predict=predict)

    return loader


def _bodies() -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = [
        {"entities": [{"trip_id": i}, {"trip_id": i + 20}], "request": {"dep_hour": i % 24}}
        for i in range(12)
    ]
    bodies[3]["return_features"] = True
    bodies[5] = {"entities": [{"trip_id": 10_000}], "request": {"dep_hour": 1}}  # unknown key
    bodies[8] = {"entities": [{"trip_id": 7}], "request": {"dep_hour": "late"}}  # wrong type
    return bodies


def test_requests_queued_behind_a_busy_model_are_one_batch_with_their_own_answers(
    world: serving_world.World,
) -> None:
    gate = threading.Event()
    sizes: list[int] = []
    app = create_app(
        world.fs,
        world.model_name,
        loader=_gated_loader(world, gate, sizes),
        log_predictions=False,
        allow_missing=False,
    )
    url = f"/v1/models/{world.model_name}/predict"
    bodies = _bodies()

    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            first = asyncio.create_task(client.post(url, json=bodies[0]))
            while not sizes:  # the first request holds the work thread
                await asyncio.sleep(0.01)
            rest = [asyncio.create_task(client.post(url, json=b)) for b in bodies[1:]]
            await asyncio.sleep(0.3)  # every other request is queued by now
            gate.set()
            return [await first, *[await t for t in rest]]

    responses = asyncio.run(scenario())
    batcher = app.state.fti.batcher
    app.state.fti.close()
    # The first request alone, then the 11 queued ones as one batch; the two bad ones made its
    # lookups fail before the model ran, so it was answered one request at a time.
    assert (batcher.batches, batcher.calls) == (2, 12)
    good = [b for i, b in enumerate(bodies) if i not in (5, 8)]
    assert sizes == [len(b["entities"]) for b in good]

    # Every answer is the answer of the same request sent alone.
    alone = create_app(world.fs, world.model_name, log_predictions=False)
    runtime = alone.state.fti.runtime
    for body, r in zip(bodies, responses, strict=True):
        if body is bodies[5]:
            assert r.status_code == 404, r.text
            assert "10000" in r.text
            continue
        if body is bodies[8]:
            assert r.status_code == 422, r.text
            continue
        assert r.status_code == 200, r.text
        got = r.json()
        want = runtime.predict(
            body["entities"],
            body["request"],
            return_features=body.get("return_features", False),
            request_id=got["request_id"],
        )
        assert got == want
    alone.state.fti.close()
    assert len({r.json()["request_id"] for r in responses if r.status_code == 200}) == 10


def test_a_batch_without_bad_requests_is_one_model_call_and_logs_every_row(
    world: serving_world.World,
) -> None:
    from fti.serving.runtime import Runtime

    app = create_app(world.fs, world.model_name, log_predictions=False)
    runtime: Runtime = app.state.fti.runtime
    calls = [
        PredictCall([{"trip_id": i}, {"trip_id": i + 30}], {"dep_hour": i}, i % 2 == 0, f"r{i}")
        for i in range(6)
    ]
    logged: list[tuple[str, int, list[Any]]] = []
    runtime.submit_log = lambda name, version, rows: logged.append((name, version, rows)) or True
    seen: list[int] = []
    served = runtime.current()
    runtime.served = replace(served, predict=lambda v: seen.append(len(v)) or served.predict(v))
    answers = runtime.predict_many(calls)
    app.state.fti.close()
    assert seen == [12]
    ids = [a["request_id"] for a in answers if isinstance(a, dict)]
    assert ids == [c.request_id for c in calls]
    assert [len(rows) for _, _, rows in logged] == [2] * 6
    for call, (_, _, rows) in zip(calls, logged, strict=True):
        assert [(r.request_id, r.position, dict(r.entity)) for r in rows] == [
            (call.request_id, i, dict(e)) for i, e in enumerate(call.entities)
        ]
        assert all(dict(r.request) == dict(call.request) for r in rows)
    runtime.served = served
    runtime.submit_log = None
    for call, answer in zip(calls, answers, strict=True):
        assert answer == runtime.predict(
            call.entities,
            call.request,
            return_features=call.return_features,
            request_id=call.request_id,
        )


def test_a_lone_request_does_not_wait_for_a_batch(world: serving_world.World) -> None:
    app = create_app(world.fs, world.model_name, log_predictions=False)
    url = f"/v1/models/{world.model_name}/predict"

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            body = {"entities": [{"trip_id": 1}], "request": {"dep_hour": 1}}
            assert (await client.post(url, json=body)).status_code == 200
            for _ in range(20):
                assert (await client.post(url, json=body)).status_code == 200

    asyncio.run(scenario())
    batcher = app.state.fti.batcher
    app.state.fti.close()
    assert (batcher.batches, batcher.calls) == (21, 21)  # one after the other: one each
