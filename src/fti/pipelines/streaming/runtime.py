"""Run a streaming feature pipeline: poll, aggregate, write, checkpoint, acknowledge.

Exactly-once in effect, from an at-least-once source:

1. Each micro-batch (``batch_size`` records or ``max_delay``) is decoded, deduplicated by event
   id and checked for lateness against the state; the changed aggregate rows are written to
   the online store at once (``fg.stage_online``: validated, stamped with their ingestion order).
2. Every ``checkpoint_interval`` the aggregate rows staged since the last checkpoint are
   committed to the offline table (one Delta commit, marked as already applied online), the
   events accepted are appended to the ``<name>_events`` feature group (one Delta commit),
   and then a checkpoint record
   ``(kind="stream_checkpoint", name)`` is updated in the registry by compare-and-set with the
   source positions, that events table version, the watermark and the counters.
3. Only then are the positions acknowledged to the broker (XACK / offset commit).

A crash anywhere replays from the last checkpoint: the state is rebuilt from the events table
*as of the checkpointed version* (later, uncheckpointed commits are ignored and their ids
deduplicated on load), the source resumes after the checkpointed positions, and re-emitted
aggregate rows are corrections of the same key and event time, so nothing is lost or counted
twice (the online store may briefly hold rows whose offline commit was lost in the crash; the
replay writes the same rows again). A second runner of the same pipeline loses the
compare-and-set and stops. The checkpoint is named ``<pipeline>_v<version>``: a new pipeline
version starts from the beginning.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from fti._internal.liveness import writer
from fti.config import mask_url
from fti.errors import FtiError
from fti.pipelines.streaming.aggregation import AggregationState, new_state
from fti.pipelines.streaming.aggregation.decoding import Transform
from fti.pipelines.streaming.definition import StreamDefinition
from fti.services import stream_checkpoints
from fti.services.context import StoreContext
from fti.store import context_of

if TYPE_CHECKING:
    from fti.backends.streams import SourceRecord, StreamSource
    from fti.handles.feature_group import FeatureGroup
    from fti.store import FeatureStore

__all__ = ["KIND", "RunReport", "reset", "run", "statuses"]

KIND = stream_checkpoints.KIND
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class RunReport:
    """What one ``run`` did."""

    pipeline: str
    records: int = 0
    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    invalid: int = 0
    quarantined: int = 0
    rows_written: int = 0
    checkpoints: int = 0
    seconds: float = 0.0
    stopped_by: str = ""

    def __str__(self) -> str:
        rate = self.records / self.seconds if self.seconds else 0.0
        return (
            f"Stream {self.pipeline}: {self.records} records ({rate:,.0f}/s), "
            f"{self.accepted} accepted, {self.duplicates} duplicates, {self.late} late, "
            f"{self.invalid} invalid, {self.quarantined} quarantined, "
            f"{self.rows_written} rows written, "
            f"{self.checkpoints} checkpoints; stopped by {self.stopped_by}"
        )


class _Checkpoint:
    """The pipeline's checkpoint as last saved (``value``), saved by compare-and-set."""

    def __init__(self, ctx: StoreContext, name: str) -> None:
        self.ctx = ctx
        self.value = stream_checkpoints.open_checkpoint(ctx, name)

    @property
    def positions(self) -> dict[str, str]:
        return dict(self.value.positions)

    def save(self, **changes: Any) -> None:
        self.value = stream_checkpoints.save(self.ctx, self.value, **changes)


def _restore(
    pipeline: StreamDefinition, fs: FeatureStore, ck: _Checkpoint
) -> tuple[AggregationState, int]:
    state = new_state(pipeline.spec, watermark=ck.value.watermark)
    version = ck.value.events_version
    if version is None or state.horizon is None:
        return state, 0
    start = _EPOCH + timedelta(microseconds=state.horizon + 1)
    table = pipeline.events_group(fs).read(version=int(version), start=start, format="arrow")
    return state, state.restore(table)


@dataclass
class _Progress:
    """What the loop carries from one micro-batch to the next checkpoint."""

    state: AggregationState
    transform: Transform | None
    fg: FeatureGroup
    counters: dict[str, int]  # since the pipeline version started (checkpointed)
    positions: dict[str, str]  # per source partition, the last record consumed
    report: RunReport  # this run only
    pending: list[pa.Table] = field(default_factory=list)  # accepted events, not yet offline
    staged: list[pa.Table] = field(default_factory=list)  # aggregate rows online, not offline


class _Stopper:
    """SIGTERM/SIGINT set a flag; the loop finishes its batch, checkpoints and exits."""

    def __init__(self) -> None:
        self.reason = ""
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Stopper:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        self.reason = signal.Signals(signum).name

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def run(
    pipeline: StreamDefinition,
    fs: FeatureStore,
    *,
    source: StreamSource | None = None,
    idle_timeout: float | None = None,
    max_records: int | None = None,
    max_seconds: float | None = None,
    on_batch: Any = None,
) -> RunReport:
    """Consume until SIGTERM/SIGINT, ``idle_timeout`` seconds without records, ``max_records``
    records, or ``max_seconds``. Returns a report; progress is in ``fti stream status``."""
    src = source if source is not None else pipeline.open_source()
    fg = pipeline.feature_group(fs)
    events_fg = pipeline.events_group(fs)
    ck = _Checkpoint(context_of(fs), pipeline.checkpoint_name)
    state, restored = _restore(pipeline, fs, ck)
    counters: dict[str, int] = {
        "records": 0,
        "accepted": 0,
        "duplicates": 0,
        "late": 0,
        "invalid": 0,
        "quarantined": 0,
        "rows": 0,
        **ck.value.counters,
    }
    report = RunReport(pipeline.name)
    progress = _Progress(state, pipeline.transform, fg, counters, ck.positions, report)
    positions, pending, staged = progress.positions, progress.pending, progress.staged
    started = time.monotonic()
    last_ck = time.monotonic()
    last_ck_records = counters["records"]
    last_record = time.monotonic()
    max_delay = pipeline.max_delay.total_seconds()
    interval = pipeline.checkpoint_interval.total_seconds()
    ck.save(
        status="running",
        **writer(),  # host and pid: `fti stream status` shows "died" once they are gone
        source=mask_url(src.url),  # credentials are never stored
        started_at=datetime.now(UTC).isoformat(),
        restored_events=restored,
        last_error=None,
    )

    def checkpoint(status: str) -> None:
        nonlocal last_ck, last_ck_records
        events_version = ck.value.events_version
        if staged:
            fg.commit_staged(staged)
            staged.clear()
        if pending:
            events_version = events_fg.insert(pa.concat_tables(pending)).offline_version
            pending.clear()
        now = time.monotonic()
        rate = (counters["records"] - last_ck_records) / max(now - last_ck, 1e-9)
        if status == "stopped" and counters["records"] == last_ck_records:
            rate = ck.value.details.get("throughput") or 0.0  # keep the last measured rate
        try:
            lag = src.lag()
        except Exception:  # monitoring only
            lag = None
        ck.save(
            positions=positions,
            events_version=events_version,
            watermark=state.watermark,
            counters=counters,
            status=status,
            last_checkpoint_at=datetime.now(UTC).isoformat(),
            throughput=round(rate, 1),
            lag=lag,
        )
        src.commit(positions)
        last_ck, last_ck_records = now, counters["records"]
        report.checkpoints += 1

    src.open(positions)
    # Objects alive now (modules, the restored state) are moved out of the collector's way,
    # and young collections run per ~50k allocations instead of 700: a batch allocates a few
    # objects per record that die by reference counting, yet with the defaults the collector
    # took about a third of a busy stream's CPU time (measured on benchmarks/streaming.py).
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], 50_000), *thresholds[1:])
    try:
        with _Stopper() as stopper:
            while True:
                batch: list[SourceRecord] = []
                deadline = time.monotonic() + max_delay
                while len(batch) < pipeline.batch_size and not stopper.reason:
                    wait = deadline - time.monotonic()
                    if wait <= 0:
                        break
                    got = src.poll(pipeline.batch_size - len(batch), wait)
                    batch.extend(got)
                    if not got:
                        if deadline - time.monotonic() > 0.005:
                            time.sleep(min(0.01, max_delay))  # a source that does not block
                        break
                if batch:
                    _process(progress, batch)
                    if on_batch is not None:
                        on_batch(report)
                    last_record = time.monotonic()
                now = time.monotonic()
                if (pending or positions != ck.positions) and now - last_ck >= interval:
                    checkpoint("running")  # also when only duplicates / late records came
                if stopper.reason:
                    report.stopped_by = stopper.reason
                elif max_records is not None and report.records >= max_records:
                    report.stopped_by = "max_records"
                elif max_seconds is not None and now - started >= max_seconds:
                    report.stopped_by = "max_seconds"
                elif idle_timeout is not None and now - last_record >= idle_timeout:
                    report.stopped_by = "idle_timeout"
                if report.stopped_by:
                    break
            checkpoint("stopped")
    except BaseException as e:
        with contextlib.suppress(FtiError):
            ck.save(status="failed", last_error=mask_url(f"{type(e).__name__}: {e}"))
        raise
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
        src.close()
    report.seconds = time.monotonic() - started
    return report


def _process(progress: _Progress, batch: list[SourceRecord]) -> None:
    """One micro-batch: aggregate, write the changed rows online, advance the positions."""
    step = progress.state.ingest([rec.fields for rec in batch], progress.transform)
    if step.accepted:
        progress.pending.append(step.events)
    rows = step.rows
    quarantined = 0
    if rows.num_rows:
        # Online now (freshness); offline with the next checkpoint, in one commit. Rows that
        # fail the group's rules under on_invalid="quarantine" are set aside there.
        staged = progress.fg.stage_online(rows)
        quarantined = rows.num_rows - staged.num_rows
        progress.staged.append(staged)
    for rec in batch:
        progress.positions[rec.partition] = rec.position
    counts = {
        "records": len(batch),
        "accepted": step.accepted,
        "duplicates": step.duplicates,
        "late": step.late,
        "invalid": step.invalid,
        "quarantined": quarantined,
        "rows": rows.num_rows - quarantined,
    }
    for name, n in counts.items():
        progress.counters[name] += n
    report = progress.report
    report.records += len(batch)
    report.accepted += step.accepted
    report.duplicates += step.duplicates
    report.late += step.late
    report.invalid += step.invalid
    report.quarantined += quarantined
    report.rows_written += rows.num_rows - quarantined


def statuses(fs: FeatureStore) -> list[dict[str, Any]]:
    """The checkpoint record of every stream pipeline of this store (for `fti stream status`)."""
    return stream_checkpoints.statuses(context_of(fs))


def reset(fs: FeatureStore, name: str) -> None:
    """Forget a pipeline's checkpoint (its feature groups are kept)."""
    stream_checkpoints.delete(context_of(fs), name)
