"""The background prediction-log writer: batches, never blocks a full queue, drains on close,
retries failed writes, counts drops."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime

from fti.services.prediction_logs import LogRow
from fti.serving.metrics import Metrics
from fti.serving.prediction_log import PredictionLogWriter


def _rows(request_id: str, n: int = 1) -> list[LogRow]:
    now = datetime.now(UTC)
    return [
        LogRow(request_id, i, now, {"k": i}, {}, {"x": 1.0}, [1.0], 0, "m", 1, None)
        for i in range(n)
    ]


def test_close_writes_everything_queued_in_batches() -> None:
    written: list[tuple[str, int, list[str]]] = []

    def write(fv: str, version: int, rows: Sequence[LogRow]) -> int:
        written.append((fv, version, [r.request_id for r in rows]))
        return len(rows)

    w = PredictionLogWriter(write, batch_rows=50, flush_seconds=60)
    ids = [f"r{i}" for i in range(120)]
    for rid in ids:
        assert w.submit("view", 1, _rows(rid))
    w.submit("other", 2, _rows("o1"))
    w.close()
    got = [rid for fv, _, batch in written if fv == "view" for rid in batch]
    assert got == ids
    assert ("other", 2, ["o1"]) in written
    assert all(len(batch) <= 50 for _, _, batch in written)
    assert w.written == 121
    assert not w.submit("view", 1, _rows("late"))  # closed: refused and counted
    assert w.dropped == 1


def test_a_full_queue_drops_and_counts_instead_of_blocking() -> None:
    release = threading.Event()

    def slow_write(fv: str, version: int, rows: Sequence[LogRow]) -> int:
        release.wait(10)
        return len(rows)

    metrics = Metrics()
    w = PredictionLogWriter(
        slow_write, max_queue=3, batch_rows=1, flush_seconds=0.01, on_drop=metrics.log_dropped
    )
    # The writer is stuck: a blocking submit would wait for it and accept everything.
    accepted = sum(w.submit("view", 1, _rows(f"r{i}", 2)) for i in range(20))
    assert accepted < 20
    assert w.dropped == 2 * (20 - accepted)
    assert f"fti_prediction_log_dropped_total {w.dropped}" in metrics.render()
    release.set()
    w.close()
    assert w.written == 2 * accepted


def test_failed_writes_are_retried_then_counted() -> None:
    calls = {"n": 0}

    def flaky(fv: str, version: int, rows: Sequence[LogRow]) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk hiccup")
        return len(rows)

    w = PredictionLogWriter(flaky, flush_seconds=60)
    w.submit("view", 1, _rows("a", 3))
    w.close()
    assert w.written == 3
    assert w.dropped == 0

    def broken(fv: str, version: int, rows: Sequence[LogRow]) -> int:
        raise OSError("disk gone")

    w = PredictionLogWriter(broken, flush_seconds=60)
    w.submit("view", 1, _rows("b", 2))
    w.close()
    assert (w.written, w.dropped, w.failed_batches) == (0, 2, 1)


def test_a_round_writes_what_was_queued_not_what_arrives_during_the_commit() -> None:
    # Requests keep arriving while a commit runs; a round that drained until the queue was empty
    # would never end under load and commit a few rows at a time, back to back.
    calls: list[list[str]] = []
    w: PredictionLogWriter

    def write(fv: str, version: int, rows: Sequence[LogRow]) -> int:
        calls.append([r.request_id for r in rows])
        w.submit("view", 1, _rows(f"during{len(calls)}"))  # arrives mid-commit
        return len(rows)

    w = PredictionLogWriter(write, flush_seconds=60)
    for i in range(3):
        w.submit("view", 1, _rows(f"r{i}"))
    w._drain(w.depth())  # one round of the writer thread
    assert calls == [["r0", "r1", "r2"]]
    assert w.depth() == 1  # the late request waits for the next round
    w.close()  # close writes everything, including what arrives while it writes
    assert [rid for batch in calls for rid in batch][:4] == ["r0", "r1", "r2", "during1"]
    assert w.written == len(calls) + 2
