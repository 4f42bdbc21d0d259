"""Request limits and error responses: what the server refuses, and how it says so.

- bodies over 1 MiB -> 413 (checked on ``Content-Length`` and again while reading the body);
- a body that is not JSON (any other ``Content-Type``, pickle included) -> 415;
- unknown fields, wrong types, more than 1,000 entities -> 422 naming the field;
- an ``FtiError`` -> its ``http_status`` with the message; anything else -> 500 with the request
  id only. No response ever carries a stack trace.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from fti.errors import FtiError

__all__ = ["MAX_BODY_BYTES", "MAX_ENTITIES", "BodyLimitMiddleware", "install_error_handlers"]

MAX_BODY_BYTES = 1024 * 1024
MAX_ENTITIES = 1000

log = logging.getLogger("fti.serving")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def error_body(kind: str, message: str, request_id: str | None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"error": kind, "message": message}
    body.update(extra)
    if request_id:
        body["request_id"] = request_id
    return body


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class BodyLimitMiddleware:
    """Buffers request bodies up to the limit before the app sees them (pure ASGI)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                await _send_json(
                    send, 400, error_body("BadRequest", "Invalid Content-Length header.", None)
                )
                return
            if int(length) > self.max_bytes:
                await self._too_large(send)
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        content_type = headers.get("content-type")
        if (content_type is not None or body) and not _is_json(content_type or ""):
            await _send_json(
                send,
                415,
                error_body(
                    "UnsupportedMediaType",
                    f"Content-Type {content_type or '(none)'!r} is not accepted: send a JSON body "
                    "with 'Content-Type: application/json'.",
                    None,
                ),
            )
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        await _send_json(
            send,
            413,
            error_body(
                "PayloadTooLarge",
                f"Request body is larger than {self.max_bytes} bytes. Send at most "
                f"{MAX_ENTITIES} entities per request, or split the request.",
                None,
            ),
        )


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _validation_message(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    details = []
    parts = []
    for e in errors:
        loc = [str(x) for x in e.get("loc", ()) if x != "body"]
        where = ".".join(loc) or "body"
        kind = str(e.get("type", ""))
        if kind == "extra_forbidden":
            text = f"unknown field {loc[-1]!r} at {where}" if loc else "unknown field"
        elif kind == "json_invalid":
            text = "the body is not valid JSON"
        elif kind == "too_long" and loc and loc[-1] == "entities":
            text = f"at most {MAX_ENTITIES} entities per request"
        else:
            text = f"{where}: {e.get('msg', 'invalid')}"
        parts.append(text)
        details.append({"loc": loc, "type": kind, "msg": str(e.get("msg", ""))})
    return "Invalid request: " + "; ".join(parts[:5]) + ".", details


def install_error_handlers(app: FastAPI, on_error: Callable[[Request, str], None]) -> None:
    """JSON error responses without stack traces; ``on_error`` counts them."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        on_error(request, "ValidationError")
        message, details = _validation_message(list(exc.errors()))
        return JSONResponse(
            error_body("ValidationError", message, _request_id(request), details=details), 422
        )

    @app.exception_handler(FtiError)
    async def _fti(request: Request, exc: FtiError) -> JSONResponse:
        on_error(request, type(exc).__name__)
        if exc.http_status >= 500:
            log.error("request %s failed: %s", _request_id(request), exc)
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        return JSONResponse(
            error_body(type(exc).__name__, str(exc), _request_id(request)),
            exc.http_status,
            headers=headers,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        on_error(request, f"HTTP{exc.status_code}")
        return JSONResponse(
            error_body(f"HTTP{exc.status_code}", str(exc.detail), _request_id(request)),
            exc.status_code,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        on_error(request, "InternalError")
        rid = _request_id(request)
        log.exception("request %s failed", rid)
        return JSONResponse(
            error_body(
                "InternalError", f"Internal error; the server log has the details ({rid}).", rid
            ),
            500,
        )
