"""Progress bars that appear only for work that takes longer than a second, on a terminal."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

__all__ = ["StepProgress", "step_progress"]


def _enabled() -> bool:
    flag = os.environ.get("FTI_PROGRESS")
    if flag is not None:
        return flag not in ("0", "false", "no", "")
    return sys.stderr.isatty()


class StepProgress:
    """Counts work done; shows a Rich bar once more than ``delay`` seconds have passed."""

    def __init__(self, description: str, total: int, *, delay: float = 1.0) -> None:
        self.description = description
        self.total = total
        self.delay = delay
        self.done = 0
        self._start = time.perf_counter()
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._enabled = _enabled()

    def advance(self, n: int, *, description: str | None = None) -> None:
        self.done += n
        if description:
            self.description = description
        if not self._enabled:
            return
        if self._bar is None and time.perf_counter() - self._start > self.delay:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),  # keep stdout for the program's own output
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total)
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=self.done, description=self.description)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


@contextmanager
def step_progress(description: str, total: int) -> Iterator[StepProgress]:
    p = StepProgress(description, total)
    try:
        yield p
    finally:
        p.close()
