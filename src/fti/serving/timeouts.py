"""Slow clients: a time limit for request headers, and a size limit for them.

uvicorn times out idle keep-alive connections, but not a client that sends its request slowly:
one byte every half second keeps a connection (and its slot) forever. ``fti serve`` runs
uvicorn with :class:`ReadTimeoutProtocol`, its HTTP protocol plus a deadline:

- the headers of a request must arrive within ``read_timeout`` seconds of the connection being
  made, or of the first byte after the previous response; otherwise the server answers 408 and
  closes the connection;
- headers larger than 64 KiB get 431 and the connection is closed.

The body is timed by :class:`fti.serving.limits.BodyLimitMiddleware` (``read_timeout`` again,
from the end of the headers); the number of connections by uvicorn's ``limit_concurrency``
(``fti serve --max-connections``). The timeout comes from ``$FTI_SERVE_CONFIG`` (set by
``fti serve --read-timeout``), 10 seconds by default.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from typing import Any

from fti.serving.limits import DEFAULT_READ_TIMEOUT, error_body

try:  # the C parser uvicorn prefers (in the serve extra); h11 otherwise, as uvicorn does
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpProtocol
except ImportError:  # pragma: no cover - httptools is in the serve extra
    from uvicorn.protocols.http.h11_impl import (  # type: ignore[assignment]
        H11Protocol as _HttpProtocol,
    )

__all__ = [
    "LINGER_SECONDS",
    "MAX_HEADER_BYTES",
    "PROTOCOL",
    "ReadTimeoutProtocol",
    "configured_read_timeout",
]

MAX_HEADER_BYTES = 64 * 1024
LINGER_SECONDS = 1.0  # after a refusal, bytes still arriving are read and dropped this long
PROTOCOL = "fti.serving.timeouts:ReadTimeoutProtocol"  # for uvicorn's ``http=``

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


@functools.cache
def configured_read_timeout() -> float:
    """``read_timeout`` from ``$FTI_SERVE_CONFIG`` (read once per process)."""
    raw = os.environ.get("FTI_SERVE_CONFIG")
    value = json.loads(raw).get("read_timeout") if raw else None
    return DEFAULT_READ_TIMEOUT if value is None else float(value)


class ReadTimeoutProtocol(_HttpProtocol):
    """uvicorn's HTTP protocol with a deadline for the headers of every request."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timeout = configured_read_timeout()
        self._deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering after a 408/431: dropped
        cycle = self.cycle
        # No request in progress: these bytes belong to the headers of the next one (or to the
        # rest of a body the app answered without reading: timed too, never counted).
        between = cycle is None or cycle.response_complete
        if between and self._deadline is None:
            self._arm()
        super().data_received(data)
        if self.cycle is not cycle:  # a new request's headers are complete
            self._disarm()
            self._header_bytes = 0
        elif between and (cycle is None or not cycle.more_body):
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES:
                self._refuse(
                    431,
                    "RequestHeaderFieldsTooLarge",
                    f"The request headers are larger than {MAX_HEADER_BYTES} bytes.",
                )

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self._read_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        self._refuse(
            408,
            "RequestTimeout",
            f"The request headers did not arrive within {self._read_timeout:g} seconds; the "
            "connection is closed. Send the whole request at once.",
        )

    def _refuse(self, status: int, kind: str, message: str) -> None:
        """Answer ``status`` and close: no app is running for this connection."""
        self._disarm()
        transport = self.transport
        if transport is None or transport.is_closing() or transport.get_protocol() is not self:
            return  # closed, or handed to another protocol (a WebSocket upgrade)
        body = json.dumps(error_body(kind, message, None)).encode()
        head = (
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n" % (status, _REASONS[status], len(body))
        )
        transport.write(head + body)
        self._refused = True
        if transport.can_write_eof():
            # Closing a socket with unread bytes resets the connection, and the client may lose
            # the response: send it with a FIN, drop what still arrives, close a moment later.
            transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, transport.close)
        else:
            transport.close()
