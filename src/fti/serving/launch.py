"""Run the model server under uvicorn, with a listening socket that says it is TCP.

asyncio turns Nagle off (TCP_NODELAY) on accepted connections only when the listening socket's
``proto`` is IPPROTO_TCP. uvicorn binds the socket it shares with ``--workers N`` with ``proto``
0, so every response written as headers + body waited for the client's delayed ACK: ~40 ms per
request (350 instead of 3,000+ requests/s on a bare endpoint). :class:`TcpSocketConfig` re-wraps
the same file descriptor with the right ``proto``, and asyncio sets NODELAY by itself: no
patched asyncio internals.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

__all__ = ["TcpSocketConfig", "run_uvicorn"]


class TcpSocketConfig(uvicorn.Config):
    """uvicorn's config whose shared socket (``--workers N``) has ``proto`` IPPROTO_TCP."""

    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
            tcp = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, sock.detach())
            tcp.set_inheritable(True)
            return tcp
        return sock


def run_uvicorn(app: str, **options: Any) -> None:
    """``uvicorn.run(app, **options)`` (``app`` an import string) with :class:`TcpSocketConfig`;
    ``workers`` > 1 runs uvicorn's supervisor in this process."""
    config = TcpSocketConfig(app, **options)
    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        sys.exit(3)  # uvicorn's STARTUP_FAILURE
