"""Readiness: named checks, each answering None (fine) or the reason the server is not ready.

``GET /readyz`` runs every check and answers 503 with the reasons if any fails. A check is a
plain function, so more can be added (``state.readiness.add("name", fn)``) without touching
the route. Results are kept for ``max_age`` seconds: the route is public, and a check may
read the registry and the online store. A check added with ``cached=False`` (cheap, and whose
answer must not lag, such as the online store's loss marker) runs on every call.

>>> r = Readiness()
>>> r.add("always", lambda: None)
>>> r.failures()
[]
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Check", "Failure", "Readiness"]

log = logging.getLogger("fti.serving")

Check = Callable[[], str | None]


@dataclass(frozen=True)
class Failure:
    """A failed check: its name and why."""

    check: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"check": self.check, "reason": self.reason}


class Readiness:
    """An ordered list of checks; :meth:`failures` runs them (results kept ``max_age`` s)."""

    def __init__(self, *, max_age: float = 1.0) -> None:
        self.max_age = max_age
        self._checks: list[tuple[str, Check, bool]] = []
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Failure]] | None = None
        self._generation = 0  # bumped by invalidate: a run that started before is not kept

    def add(self, name: str, check: Check, *, cached: bool = True) -> None:
        """Append a check; ``check()`` returns None when fine, else the reason."""
        with self._lock:
            self._checks.append((name, check, cached))
        self.invalidate()

    def invalidate(self) -> None:
        """Forget the kept result (e.g. after a reload), so the next call runs the checks."""
        with self._lock:
            self._cached = None
            self._generation += 1

    def failures(self) -> list[Failure]:
        """Every failing check, in the order added (blocking: call from a thread in async
        code)."""
        with self._lock:
            cached = self._cached
            checks = list(self._checks)
            generation = self._generation
        fresh = cached is None or time.monotonic() - cached[0] >= self.max_age
        out: list[Failure] = []
        for name, check, keep in checks:
            if keep and not fresh:
                assert cached is not None
                out.extend(f for f in cached[1] if f.check == name)
                continue
            reason = _run(name, check)
            if reason:
                out.append(Failure(name, reason))
        if fresh:
            with self._lock:
                if generation == self._generation:
                    self._cached = (time.monotonic(), out)
        return out


def _run(name: str, check: Check) -> str | None:
    try:
        return check()
    except Exception as e:  # a broken check is a reason, not a 500 on /readyz
        log.exception("readiness check %s failed", name)
        return f"the check raised {type(e).__name__}; see the server log"
