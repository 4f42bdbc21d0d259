"""The predict route's usual case, answered below FastAPI.

FastAPI's request handling (routing, dependency solving, the ``Request`` object, response
validation) cost more CPU per predict than the lookups and the model together: ~0.5 ms of the
~0.8 ms a request took on the 2-core dev box. :class:`FastPredict` sits between the body
limits (:class:`~fti.serving.limits.BodyLimitMiddleware`, which has already read, size-checked
and type-checked the body) and FastAPI, and answers ``POST /v1/models/{name}/predict`` itself
when the request is well formed: the token is valid (if auth is on), the body validates as a
:class:`~fti.serving.schemas.PredictRequest` exactly as FastAPI validates it (``json.loads``
then the model in Python mode) and names the served model. Anything else (a bad body, a bad
token, another model's name) goes on to the FastAPI route, which answers it as it always did;
errors of the prediction itself get the same responses as there
(:func:`~fti.serving.limits.error_response`). The route stays in FastAPI for the API
description.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError as PydanticValidationError

from fti.serving.limits import ASGIApp, Message, Receive, Scope, Send, error_response
from fti.serving.runtime import PredictCall
from fti.serving.schemas import PredictRequest

if TYPE_CHECKING:
    from fti.serving.app import ServerState

__all__ = ["FastPredict"]

_PREFIX = "/v1/models/"
_SUFFIX = "/predict"
# As Starlette's JSONResponse renders: the same bytes whichever path answers.
_dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


class FastPredict:
    """ASGI middleware: well-formed predict requests are answered here (see the module)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        state: ServerState,
        route: Any,
        public: Callable[[str], str],
    ) -> None:
        self.app = app
        self.state = state
        self.route = route  # FastAPI's predict route: metrics label requests by its path
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not path.startswith(_PREFIX)
            or not path.endswith(_SUFFIX)
        ):
            await self.app(scope, receive, send)
            return
        name = path[len(_PREFIX) : -len(_SUFFIX)]
        message = await receive()  # the whole body: the body limits read it already
        body = message.get("body", b"") if message["type"] == "http.request" else None
        call = None if body is None else self._call(scope, name, body)
        if call is None:
            await self.app(scope, _replay(message, receive), send)
            return
        scope["route"] = self.route
        rid = call.request_id
        state = self.state
        try:
            out = await state.batcher.submit(call)
        except Exception as exc:
            kind, status, error, headers = error_response(exc, rid, self.public)
            state.metrics.error(self.route.path, kind)
            await _send(send, status, _dumps(error).encode(), headers)
            return
        state.metrics.predictions(len(call.entities))
        state.fast_answers += 1
        await _send(send, 200, _dumps(out).encode(), None)

    def _call(self, scope: Scope, name: str, body: bytes) -> PredictCall | None:
        """The prediction to make, or None if FastAPI should answer (and explain) instead."""
        state = self.state
        served = state.runtime.served
        if served is None or state.closed or name != served.model_name or "/" in name:
            return None
        if state.tokens is not None:
            header = None
            for key, value in scope["headers"]:
                if key.lower() == b"authorization":
                    header = value.decode("latin-1")
                    break
            try:
                state.tokens.check(header, "predict")
            except Exception:
                return None
        try:
            request = PredictRequest.model_validate(json.loads(body))
        except (ValueError, PydanticValidationError):
            return None
        rid = scope.get("state", {}).get("request_id")
        return PredictCall(request.entities, request.request, request.return_features, rid)


def _replay(message: Message, receive: Receive) -> Receive:
    """``receive`` that gives ``message`` (already taken) first."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return message
        return await receive()

    return replay


async def _send(send: Send, status: int, data: bytes, headers: dict[str, str] | None) -> None:
    raw = [(b"content-length", str(len(data)).encode()), (b"content-type", b"application/json")]
    for k, v in (headers or {}).items():
        raw.append((k.lower().encode("latin-1"), v.encode("latin-1")))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})
