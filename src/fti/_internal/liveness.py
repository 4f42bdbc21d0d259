"""Is the process that wrote a "running" record still alive?

A run record or a stream checkpoint says ``running`` from its start until its process writes
the outcome; a process killed with SIGKILL (or a lost machine) never does. Records carry the
writer's ``host`` and ``pid``, so on the same host a reader can tell a live writer from a dead
one and show ``died`` instead. On another host (or for records without them) nothing can be
told and the stored status is shown as is.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["DIED", "effective_status", "writer"]

DIED = "died"


def writer() -> dict[str, Any]:
    """The fields a record keeps about the process writing it."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    try:  # a zombie (exited, not yet reaped by its parent) is not running anymore
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        return stat.rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def effective_status(body: Mapping[str, Any]) -> str:
    """The stored status, except ``died`` for a ``running`` record whose writer on this host is
    gone."""
    status = str(body.get("status", ""))
    pid = body.get("pid")
    if (
        status == "running"
        and isinstance(pid, int)
        and body.get("host") == socket.gethostname()
        and not _alive(pid)
    ):
        return DIED
    return status
