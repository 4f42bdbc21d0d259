"""The predict route does its store and model work off the event loop, and nothing in the
server patches asyncio's private functions (#15.3)."""

from __future__ import annotations

import asyncio
import asyncio.base_events as base_events
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

import serving_world
from fti.serving import create_app


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[serving_world.World]:
    import fti

    fs = fti.connect(tmp_path_factory.mktemp("lean") / "store")
    yield serving_world.build(fs, trips=40)
    fs.close()


def test_a_slow_prediction_does_not_hold_up_other_requests(world: serving_world.World) -> None:
    from fti.serving.loading import model_loader
    from fti.serving.runtime import ModelRef

    good = model_loader(world.fs, ModelRef(world.model_name))

    def loader() -> Any:
        served = good()

        def slow(vectors: list[list[Any]]) -> Any:
            time.sleep(1.0)  # a model (or a store lookup) that takes its time, holding no loop
            return served.predict(vectors)

        return replace(served, predict=slow)

    app = create_app(world.fs, world.model_name, loader=loader, log_predictions=False)
    done: dict[str, float] = {}

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

            async def predict() -> None:
                body = {"entities": [{"trip_id": 1}], "request": {"dep_hour": 1}}
                r = await client.post(f"/v1/models/{world.model_name}/predict", json=body)
                assert r.status_code == 200, r.text
                done["predict"] = time.monotonic()

            async def health() -> None:
                await asyncio.sleep(0.2)  # the prediction is running by now
                assert (await client.get("/healthz")).status_code == 200
                done["healthz"] = time.monotonic()

            await asyncio.gather(predict(), health())

    asyncio.run(scenario())
    app.state.fti.close()
    assert done["healthz"] < done["predict"]


def test_the_server_leaves_asyncio_internals_alone(
    world: serving_world.World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fti.serving.app import ENV_CONFIG, app_from_env

    original = base_events._set_nodelay  # type: ignore[attr-defined]
    config = {"root": str(world.fs.config.root), "model": world.model_name}
    monkeypatch.setenv(ENV_CONFIG, json.dumps({**config, "log_predictions": False}))
    app = app_from_env()
    app.state.fti.close()
    assert base_events._set_nodelay is original  # type: ignore[attr-defined]


def test_the_shared_socket_of_several_workers_says_it_is_tcp() -> None:
    from fti.serving.launch import TcpSocketConfig

    config = TcpSocketConfig("fti.serving.app:app_from_env", host="127.0.0.1", port=0, workers=2)
    sock = config.bind_socket()
    try:
        # asyncio sets TCP_NODELAY on accepted connections only for proto IPPROTO_TCP
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.type == socket.SOCK_STREAM
    finally:
        sock.close()
