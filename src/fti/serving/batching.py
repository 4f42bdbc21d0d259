"""Requests that arrive together are computed together.

The event loop hands each predict request to a :class:`Batcher`. If the work thread is idle,
the request goes to it at the end of the loop's current turn, with the requests parsed in the
same turn (a lone request waits for nothing); while it is busy, requests queue, and when it
finishes, everything queued goes to it as one batch: one pass of online
lookups and one model call for all their entities, one thread hop, one wake-up of the loop.
Under load a batch holds the requests that arrived during the previous one, so the per-request
costs that do not grow with entities (the hop, the model call's fixed cost, the lookups'
statement overhead) are paid once per batch. No timer: nothing waits to fill a batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

__all__ = ["Batcher"]

C = TypeVar("C")
R = TypeVar("R")


class Batcher(Generic[C, R]):
    """Runs ``run(calls)`` on ``executor``, one batch at a time; ``run`` returns one result or
    exception per call, in order. ``max_items``: at most this many calls per batch (the rest
    go in the next one), so one batch never holds a request for long."""

    def __init__(
        self,
        executor: Executor,
        run: Callable[[Sequence[C]], Sequence[R | Exception]],
        *,
        max_items: int = 64,
    ) -> None:
        self._executor = executor
        self._run = run
        self._max = max_items
        self._pending: list[tuple[C, asyncio.Future[R]]] = []
        self._busy = False
        self._scheduled = False
        self.batches = 0  # batches run (for tests and metrics)
        self.calls = 0

    async def submit(self, call: C) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((call, future))
        if not self._busy and not self._scheduled:
            # At the end of this turn of the loop, after the other requests that arrived with
            # this one (a burst of responses brings a burst of requests) have been parsed.
            self._scheduled = True
            loop.call_soon(self._start, loop)
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        if self._busy:
            return
        taken = [(c, f) for c, f in self._pending[: self._max] if not f.cancelled()]
        del self._pending[: self._max]
        if not taken:
            if self._pending:
                self._start(loop)
            return
        self._busy = True
        self.batches += 1
        self.calls += len(taken)
        try:
            self._executor.submit(self._work, loop, taken)
        except BaseException as e:  # e.g. the executor is shut down
            self._finish(taken, None, e)

    def _work(
        self, loop: asyncio.AbstractEventLoop, taken: list[tuple[C, asyncio.Future[R]]]
    ) -> None:
        """On the work thread: run the batch and hand its results to the loop in one call
        (``run_in_executor`` would chain two futures and two loop callbacks per batch)."""
        results: Sequence[R | Exception] | None = None
        error: BaseException | None = None
        try:
            results = self._run([c for c, _ in taken])
        except BaseException as e:
            error = e
        # A closed loop: nobody waits for these answers any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._finish, taken, results, error)

    def _finish(
        self,
        taken: list[tuple[C, asyncio.Future[R]]],
        results: Sequence[R | Exception] | None,
        error: BaseException | None,
    ) -> None:
        self._busy = False
        answers: Sequence[R | BaseException]
        if results is None:
            answers = [error or RuntimeError("The batch gave no results.")] * len(taken)
        else:
            answers = results
        for (_, future), result in zip(taken, answers, strict=True):
            if future.done():  # cancelled: the client went away
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
        if self._pending:
            self._start(asyncio.get_running_loop())
