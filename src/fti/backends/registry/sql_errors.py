"""How the SQL registry survives a lost connection, and what users see when it cannot.

- **Transient** errors are connection losses (the server restarted, the backend was terminated,
  a pooled connection went stale) and PostgreSQL operational errors. The registry retries an
  operation a few times with a short backoff (about a second in all), then gives up.
- **Reads** and **idempotent writes** (delete) are simply run again.
- **Other writes** may have been committed even though the client saw the connection drop (the
  acknowledgement of COMMIT can be lost). Before running one again the registry checks whether it
  landed, by looking for the exact row it wrote (same body and the timestamp it set, to the
  microsecond); only if it did not is it run again. So a retry never applies a write twice.
- Every SQLAlchemy error leaves the registry as an :class:`~fti.errors.FtiError` with a readable
  message, never the SQL text: :class:`BackendUnavailableError` for a lost or refused connection,
  :class:`ValidationError` for a value the database rejected. The original stays as
  ``__cause__``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa

from fti.errors import BackendUnavailableError, FtiError, ValidationError

__all__ = [
    "ATTEMPTS",
    "backoff",
    "is_transient",
    "label",
    "reason",
    "retrying",
    "to_fti_error",
]

T = TypeVar("T")

ATTEMPTS = 4  # first try + 3 retries, sleeping ~0.05 s, ~0.2 s, ~0.8 s in between


def backoff(attempt: int) -> None:
    """Sleep before retry number ``attempt`` (0-based), with jitter."""
    time.sleep(0.05 * 4**attempt * random.uniform(0.5, 1.0))  # noqa: S311


def is_transient(error: BaseException, dialect: str) -> bool:
    """True if running the operation again may succeed (a lost or refused connection)."""
    if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sa.exc.InterfaceError):
        return True
    # SQLite reports "database is locked" and disk errors as OperationalError; its own busy
    # timeout already waited, so only PostgreSQL's (connection refused, shutdown, ...) retry.
    return isinstance(error, sa.exc.OperationalError) and dialect == "postgresql"


def label(kind: str, name: str) -> str:
    """``kind 'name'`` for messages, the name cut short: an error never echoes a long input."""
    shown = name if len(name) <= 64 else name[:60] + "..."
    return f"{kind} {shown!r}"


def reason(error: BaseException) -> str:
    """The database's own one-line message, without SQL text or parameters."""
    orig = getattr(error, "orig", None)
    text = str(orig if orig is not None else error.__class__.__name__)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first.rstrip(".") or type(orig or error).__name__


def to_fti_error(error: sa.exc.SQLAlchemyError, where: str, what: str) -> FtiError:
    """The FtiError a user sees for ``error`` raised while doing ``what`` on registry ``where``."""
    why = reason(error)
    if isinstance(error, sa.exc.DataError):
        return ValidationError(
            f"The registry at {where} rejected a value while {what}: {why}. Check the names "
            "and values passed (lengths, numeric ranges) and try again."
        )
    if isinstance(error, sa.exc.DBAPIError | sa.exc.TimeoutError | sa.exc.ResourceClosedError):
        return BackendUnavailableError(
            f"The registry at {where} failed while {what}: {why}. Check that the database "
            "server is running and reachable (FTI_REGISTRY), then try again."
        )
    return BackendUnavailableError(f"The registry at {where} failed while {what}: {why}.")


def retrying(
    op: Callable[[], T],
    *,
    dialect: str,
    where: str,
    what: str,
    landed: Callable[[], T | None] | None = None,
) -> T:
    """Run ``op``; on a transient error back off and run it again (at most ATTEMPTS times).

    ``landed`` (for writes that are not idempotent) is asked after a failure whether the write
    was committed anyway; its non-None result is returned instead of writing again.
    """
    for attempt in range(ATTEMPTS):
        try:
            return op()
        except sa.exc.SQLAlchemyError as e:
            if not is_transient(e, dialect) or attempt == ATTEMPTS - 1:
                raise to_fti_error(e, where, what) from e
            backoff(attempt)
            if landed is not None:
                try:
                    done = landed()
                except FtiError as check:
                    raise BackendUnavailableError(
                        f"The registry at {where} lost its connection while {what}, and whether "
                        f"the change was saved cannot be checked: {check}"
                    ) from e
                if done is not None:
                    return done
    raise AssertionError("unreachable")
