"""Workers of ``fti serve --workers N`` exit when their parent dies.

uvicorn's supervisor (the ``fti serve`` process) binds the port and starts the workers; the
workers share its socket. If the supervisor is killed with SIGKILL it cannot stop them, and
orphaned workers would keep serving (and keep the port: a restart fails with "address already
in use"). So each worker asks to be sent SIGTERM when its parent dies (``prctl
PR_SET_PDEATHSIG`` on Linux; elsewhere a thread polls ``getppid()`` twice a second) and then
shuts down as on any SIGTERM: requests in flight finish, the prediction log is flushed.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

__all__ = ["exit_with_parent"]

_PR_SET_PDEATHSIG = 1
_POLL_SECONDS = 0.5


def _parent_death_signal(sig: int) -> bool:
    """Ask Linux to send ``sig`` when the parent exits; False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_POLL_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)


def exit_with_parent(parent_pid: int) -> None:
    """Send this process SIGTERM when ``parent_pid`` (its parent) dies, also if it already
    has. Call it early in the worker (``app_from_env`` does)."""
    armed = _parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os.kill(os.getpid(), signal.SIGTERM)
        return
    if not armed:
        threading.Thread(
            target=_watch, args=(parent_pid,), name="fti-parent-watch", daemon=True
        ).start()
