"""Request limits and error responses: what the server refuses, and how it says so.

- bodies over 1 MiB -> 413 (checked on ``Content-Length`` and again while reading the body);
- a body that has not fully arrived ``read_timeout`` seconds after its headers -> 408, and the
  connection is closed (a slow client cannot hold it; headers: :mod:`fti.serving.timeouts`);
- a body that is not JSON (any other ``Content-Type``, pickle included) -> 415;
- unknown fields, wrong types, more than 1,000 entities (or 64 keys in one, 256 request
  parameters) -> 422 naming the field;
- an ``FtiError`` -> its ``http_status`` with the message; anything else -> 500 with the request
  id only. No response ever carries a stack trace, a local path (the store's folders, the
  temporary folder, home and working directory are replaced by ``<local path>``) or a long echo
  of the input (messages are cut to 1,000 characters, values in them to 200, details to 20).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import tempfile
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from fti._internal.previews import clip
from fti.config import StoreConfig
from fti.errors import FtiError

__all__ = [
    "DEFAULT_READ_TIMEOUT",
    "MAX_BODY_BYTES",
    "MAX_ENTITIES",
    "MAX_ENTITY_KEYS",
    "MAX_MESSAGE_CHARS",
    "MAX_REQUEST_KEYS",
    "BodyLimitMiddleware",
    "PathRedactor",
    "error_response",
    "install_error_handlers",
]

MAX_BODY_BYTES = 1024 * 1024
MAX_ENTITIES = 1000
MAX_ENTITY_KEYS = 64  # columns of one entity (a primary key)
MAX_REQUEST_KEYS = 256  # request parameters (on-demand feature inputs)
DEFAULT_READ_TIMEOUT = 10.0  # seconds for the headers, and again for the body, of a request
MAX_MESSAGE_CHARS = 1000
MAX_DETAILS = 20

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


async def _send_json(send: Send, status: int, body: dict[str, Any], *, close: bool = False) -> None:
    data = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(data)).encode()),
    ]
    if close:  # uvicorn closes the connection after a response that says so
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class _BodyTimeout(Exception):
    """The body did not arrive in time (internal to the middleware)."""


class _BodyTooLarge(Exception):
    """The body is over the limit (internal to the middleware)."""


class _Deadline:
    """Cancels ``task`` after ``seconds`` and remembers that it did."""

    def __init__(self, task: asyncio.Task[Any], seconds: float) -> None:
        self.task = task
        self.expired = False
        self.handle = asyncio.get_running_loop().call_later(seconds, self._expire)

    def _expire(self) -> None:
        self.expired = True
        self.task.cancel()


class BodyLimitMiddleware:
    """Buffers request bodies up to the limit before the app sees them (pure ASGI); the whole
    body must arrive within ``read_timeout`` seconds (None: no limit)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int = MAX_BODY_BYTES,
        read_timeout: float | None = DEFAULT_READ_TIMEOUT,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout = read_timeout

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
        try:
            read = await self._read_body(receive)
        except _BodyTimeout:
            await _send_json(
                send,
                408,
                error_body(
                    "RequestTimeout",
                    f"The request body did not arrive within {self.read_timeout:g} seconds "
                    "of its headers; the connection is closed. Send the whole body at once.",
                    None,
                ),
                close=True,
            )
            return
        except _BodyTooLarge:
            await self._too_large(send)
            return
        if read is None:
            return  # the client went away
        body = read
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

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body (None if the client disconnected), within the deadline."""
        task = asyncio.current_task()
        # One timer per request (asyncio.timeout or wait_for around each receive: 20-50 us).
        deadline = None
        if self.read_timeout is not None and task is not None:
            deadline = _Deadline(task, self.read_timeout)
        chunks: list[bytes] = []
        size = 0
        more = True
        try:
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_bytes:
                    raise _BodyTooLarge
                chunks.append(chunk)
                more = bool(message.get("more_body", False))
        except asyncio.CancelledError:
            if deadline is None or not deadline.expired:
                raise
            deadline.task.uncancel()  # our own cancellation, not the server's
            raise _BodyTimeout from None
        finally:
            if deadline is not None:
                deadline.handle.cancel()
        return b"".join(chunks)

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


class PathRedactor:
    """Replaces local folders in messages sent to clients with ``<local path>``: the store's
    parts (root, offline, online, registry, artifacts), the temporary folder, the home and the
    working directory. Messages keep what is relative to them (an artifact key, a file name)."""

    def __init__(self, paths: Iterable[str]) -> None:
        usable = sorted({p.rstrip("/") for p in paths if len(p.rstrip("/")) > 1}, key=len)
        self._pattern = (
            re.compile(
                "|".join(re.escape(p) for p in reversed(usable)) + r"(?=[/\\\s'\",:;)\]]|\.?$|\. )"
            )
            if usable
            else None
        )

    @classmethod
    def for_store(cls, config: StoreConfig | None) -> PathRedactor:
        """The folders of a store's :class:`~fti.config.StoreConfig` and of this process."""
        candidates: list[str] = [tempfile.gettempdir()]
        for get in (Path.home, Path.cwd):
            # no home, or a deleted working directory
            with contextlib.suppress(OSError, RuntimeError):
                candidates.append(str(get()))
        if config is not None:
            candidates.append(str(config.root))
            for part in ("offline", "online", "registry", "artifacts"):
                url = str(getattr(config, part))
                parsed = urlparse(url)
                if parsed.scheme in ("", "file", "sqlite") and parsed.path:
                    candidates.append(parsed.path)
                    candidates.append(str(Path(parsed.path).parent))
        out: list[str] = []
        for c in candidates:
            out.append(c)
            with contextlib.suppress(OSError):
                out.append(str(Path(c).resolve()))
        return cls(out)

    def __call__(self, message: str) -> str:
        text = message if self._pattern is None else self._pattern.sub("<local path>", message)
        return clip(text, MAX_MESSAGE_CHARS)


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _validation_message(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    details = []
    parts = []
    for e in errors[:MAX_DETAILS]:
        # A location may hold a key sent by the client (up to the body limit): cut it.
        loc = [clip(str(x), 100) for x in e.get("loc", ()) if x != "body"]
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
        details.append({"loc": loc, "type": kind, "msg": clip(str(e.get("msg", "")))})
    more = len(errors) - len(details)
    if more > 0:
        details.append({"loc": [], "type": "truncated", "msg": f"{more} more errors"})
    return "Invalid request: " + "; ".join(parts[:5]) + ".", details


def install_error_handlers(
    app: FastAPI,
    on_error: Callable[[Request, str], None],
    redact: Callable[[str], str] | None = None,
) -> None:
    """JSON error responses without stack traces; ``on_error`` counts them, ``redact`` cleans
    messages (default: no local paths of this process, at most 1,000 characters)."""
    public = redact or PathRedactor.for_store(None)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        on_error(request, "ValidationError")
        message, details = _validation_message(list(exc.errors()))
        return JSONResponse(
            error_body("ValidationError", message, _request_id(request), details=details), 422
        )

    @app.exception_handler(FtiError)
    async def _fti(request: Request, exc: FtiError) -> JSONResponse:
        return _render(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        on_error(request, f"HTTP{exc.status_code}")
        return JSONResponse(
            error_body(f"HTTP{exc.status_code}", public(str(exc.detail)), _request_id(request)),
            exc.status_code,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _render(request, exc)

    def _render(request: Request, exc: Exception) -> JSONResponse:
        kind, status, body, headers = error_response(exc, _request_id(request), public)
        on_error(request, kind)
        return JSONResponse(body, status, headers=headers)


def error_response(
    exc: Exception, request_id: str | None, public: Callable[[str], str]
) -> tuple[str, int, dict[str, Any], dict[str, str] | None]:
    """``(kind, status, body, headers)`` of the response to ``exc``: an ``FtiError`` gets its
    ``http_status`` and its message (cleaned by ``public``), anything else a 500 with the
    request id only (the details go to the server log)."""
    if isinstance(exc, FtiError):
        kind = type(exc).__name__
        if exc.http_status >= 500:
            log.error("request %s failed: %s", request_id, exc)
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        return kind, exc.http_status, error_body(kind, public(str(exc)), request_id), headers
    log.error("request %s failed", request_id, exc_info=exc)
    message = f"Internal error; the server log has the details ({request_id})."
    return "InternalError", 500, error_body("InternalError", message, request_id), None
