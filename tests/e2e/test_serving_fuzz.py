"""Fuzz the HTTP API from its OpenAPI description (hypothesis): every operation, bodies drawn
from the request schemas plus mutations (unknown fields, wrong types, junk, odd media types),
path parameters of any shape. No answer may be a 5xx or carry a stack trace.

``FTI_FUZZ_EXAMPLES`` sets the number of cases (default 1,000).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fti
import serving_world
from fti.serving import create_app

pytestmark = pytest.mark.slow  # hundreds of generated requests

EXAMPLES = int(os.environ.get("FTI_FUZZ_EXAMPLES", "1000"))

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
ANY_JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Names that exist in the served world, so fuzzing reaches the lookups and the model too.
REAL_KEYS = st.sampled_from(["trip_id", "dep_hour", "origin", "ts"])


def _strategy(schema: dict[str, Any], components: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A small JSON-schema -> strategy translation (what FastAPI's schemas use)."""
    if "$ref" in schema:
        return _strategy(components[schema["$ref"].rsplit("/", 1)[1]], components)
    if "anyOf" in schema:
        return st.one_of([_strategy(s, components) for s in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        if props:
            fixed = {k: _strategy(v, components) for k, v in props.items() if k in required}
            optional = {k: _strategy(v, components) for k, v in props.items() if k not in required}
            return st.fixed_dictionaries(fixed, optional=optional)
        values = _strategy(schema.get("additionalProperties") or {}, components)
        keys = REAL_KEYS | st.text(max_size=12)
        # One real key (a well-formed entity or request) half of the time.
        return st.dictionaries(REAL_KEYS, values, min_size=1, max_size=1) | st.dictionaries(
            keys, values, max_size=3
        )
    if kind == "array":
        items = _strategy(schema.get("items", {}), components)
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=4)
    if kind == "integer":
        edges = st.sampled_from([0, -1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30])
        return st.integers(-5, 200) | edges | st.integers(-(2**70), 2**70)
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "string":
        return st.text(max_size=16)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return ANY_JSON


class Client:
    """httpx against the ASGI app on one event loop in this thread (no thread hops, so the
    cases run fast also on a busy machine)."""

    def __init__(self, app: Any) -> None:
        self.loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://fuzz")

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.request(method, path, **kwargs))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, dict[str, Any]]]:
    fs = fti.connect(tmp_path_factory.mktemp("fuzz") / "store")
    world = serving_world.build(fs, trips=60)
    app = create_app(fs, world.model_name, allow_missing=False)
    client = Client(app)
    yield client, app.openapi()
    client.close()
    app.state.fti.close()
    fs.close()


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method.upper(), op)
        for path, item in sorted(spec["paths"].items())
        for method, op in sorted(item.items())
    ]


def _request(spec: dict[str, Any]) -> st.SearchStrategy[tuple[str, str, bytes | None, str | None]]:
    components = spec.get("components", {}).get("schemas", {})

    @st.composite
    def build(draw: st.DrawFn) -> tuple[str, str, bytes | None, str | None]:
        path, method, op = draw(st.sampled_from(_operations(spec)))
        for p in op.get("parameters", []):
            if p["in"] != "path":
                continue
            if p["schema"].get("type") == "integer":
                edges = st.sampled_from([2**31, 2**63, 2**64, 10**30, -(2**63) - 1])
                value = str(draw(st.integers(-3, 3) | edges | st.integers(-(2**70), 2**70)))
            else:
                value = draw(
                    st.sampled_from(["trip_model", "trips_view", "x"])
                    | st.from_regex(r"[A-Za-z0-9_.~-]{1,30}", fullmatch=True)
                )
            path = path.replace("{" + p["name"] + "}", value)
        body: bytes | None = None
        ctype: str | None = None
        if "requestBody" in op:
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            payload = draw(_strategy(schema, components))
            mutation = draw(st.sampled_from(["none", "none", "extra", "junk", "raw"]))
            if mutation == "extra" and isinstance(payload, dict):
                payload[draw(st.text(min_size=1, max_size=8))] = draw(ANY_JSON)
            elif mutation == "junk":
                payload = draw(ANY_JSON)
            body = json.dumps(payload).encode()
            if mutation == "raw":
                body = draw(st.binary(max_size=64))
            ctype = draw(
                st.sampled_from(
                    ["application/json"] * 6
                    + ["application/x-python-pickle", "text/plain", "application/merge-patch+json"]
                )
                | st.none()
            )
        return method, path, body, ctype

    return build()


def test_fuzz_from_openapi_never_answers_5xx(served: tuple[Client, dict[str, Any]]) -> None:
    client, spec = served
    seen: dict[int, int] = {}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(_request(spec))
    def run(req: tuple[str, str, bytes | None, str | None]) -> None:
        method, path, body, ctype = req
        headers = {"content-type": ctype} if ctype else {}
        r = client.request(method, path, content=body, headers=headers)
        seen[r.status_code] = seen.get(r.status_code, 0) + 1
        assert r.status_code < 500, (method, path, body, ctype, r.status_code, r.text)
        assert "Traceback" not in r.text

    run()
    # The fuzzer got past validation into real answers, and into every kind of refusal.
    assert seen.get(200, 0) > 0
    assert {404, 415, 422} <= set(seen)
