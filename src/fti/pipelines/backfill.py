"""Backfill: run a feature pipeline over a time range in chunks, one recorded run per chunk.

>>> runs = fti.backfill(weather, fs=fs, start="2013-01-01T00:00:00Z",
...                     end="2013-02-01T00:00:00Z", chunk="7d")             # doctest: +SKIP
"""

from __future__ import annotations

import calendar
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fti._internal.progress import step_progress
from fti.errors import ValidationError
from fti.pipelines.decorators import Pipeline
from fti.pipelines.runner import parse_datetime, run_pipeline
from fti.pipelines.runs import PipelineRun
from fti.store import FeatureStore, connect

__all__ = ["Months", "backfill", "chunks", "parse_chunk", "parse_duration"]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_MONTHS = re.compile(r"^\s*(\d+)\s*mo\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class Months:
    """A chunk of ``n`` calendar months (``"1mo"``): boundaries fall on the start's day of the
    month, or on the month's last day when it is shorter (Jan 31 -> Feb 29 -> Mar 31)."""

    n: int


def parse_duration(text: str | timedelta) -> timedelta:
    """``"1d"``, ``"6h"``, ``"30m"``, ``"2w"``, ``"90s"`` -> timedelta (must be > 0)."""
    if isinstance(text, timedelta):
        value = text
    else:
        m = _DURATION.match(text)
        if m is None:
            raise ValidationError(
                f"Invalid duration {text!r}: use a number and a unit (s, m, h, d, w), e.g. 1d, "
                "or calendar months for a backfill chunk, e.g. 1mo."
            )
        value = timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    if value <= timedelta(0):
        raise ValidationError(f"The chunk must be a duration > 0. Got {text!r} instead.")
    return value


def parse_chunk(text: str | timedelta | Months) -> timedelta | Months:
    """A backfill chunk: a duration (``"1d"``, see :func:`parse_duration`) or calendar months
    (``"1mo"``, ``"3mo"``)."""
    if isinstance(text, Months):
        months = text
    elif isinstance(text, str) and (m := _MONTHS.match(text)) is not None:
        months = Months(int(m.group(1)))
    else:
        return parse_duration(text)
    if months.n <= 0:
        raise ValidationError(f"The chunk must be at least 1 month. Got {text!r} instead.")
    return months


def add_months(when: datetime, months: int) -> datetime:
    """``when`` moved by whole calendar months, the day clamped to the target month's length."""
    index = when.month - 1 + months
    year, month = when.year + index // 12, index % 12 + 1
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


def chunks(
    start: datetime, end: datetime, step: timedelta | Months
) -> list[tuple[datetime, datetime]]:
    """Half-open windows ``[s, e)`` covering ``[start, end)``; the last may be shorter. Month
    boundaries are counted from ``start`` (k months after it), so they do not drift."""
    out = []
    s, k = start, 0
    while s < end:
        k += 1
        nxt = add_months(start, k * step.n) if isinstance(step, Months) else s + step
        e = min(nxt, end)
        out.append((s, e))
        s = e
    return out


def _when(value: datetime | str, what: str) -> datetime:
    if isinstance(value, str):
        return parse_datetime(value, what=what)
    if value.tzinfo is None:
        raise ValidationError(
            f"{what}={value!r} is naive. Make it timezone-aware, e.g. "
            "value.replace(tzinfo=timezone.utc)."
        )
    return value


def backfill(
    pipeline: Pipeline,
    *,
    fs: FeatureStore | None = None,
    start: datetime | str,
    end: datetime | str,
    chunk: timedelta | str | Months = timedelta(days=1),
    params: dict[str, Any] | None = None,
) -> list[PipelineRun]:
    """Run ``pipeline`` once per chunk of ``[start, end)``, in time order, with a progress bar.

    ``chunk``: a duration (``"7d"``, ``timedelta(hours=6)``) or calendar months (``"1mo"``).
    Stops at the first failing chunk and raises; the error says where to resume.
    """
    if not isinstance(pipeline, Pipeline):
        raise ValidationError(
            f"{pipeline!r} is not a pipeline; mark it with @fti.feature_pipeline."
        )
    if not {"start", "end"} <= set(pipeline.parameters):
        raise ValidationError(
            f"Pipeline {pipeline.name!r} cannot be backfilled: it needs 'start' and 'end' "
            f"parameters (it takes {pipeline.parameters}). Add 'start: datetime, end: datetime'."
        )
    s, e = _when(start, "start"), _when(end, "end")
    if not s < e:
        raise ValidationError(f"start {s.isoformat()} must be before end {e.isoformat()}.")
    windows = chunks(s, e, parse_chunk(chunk))
    fs = fs if fs is not None else connect()
    backfill_id = secrets.token_hex(4)
    runs: list[PipelineRun] = []
    with step_progress(f"Backfilling {pipeline.name}", len(windows)) as progress:
        for number, (cs, ce) in enumerate(windows, start=1):
            progress.advance(
                0,
                description=f"Backfilling {pipeline.name} {cs:%Y-%m-%d %H:%M}..{ce:%Y-%m-%d %H:%M}",
            )
            extra = {"backfill": {"id": backfill_id, "chunk": number, "chunks": len(windows)}}
            try:
                run = run_pipeline(pipeline, fs=fs, params=params, start=cs, end=ce, extra=extra)
            except Exception as exc:
                exc.add_note(
                    f"Backfill stopped at chunk {number}/{len(windows)} "
                    f"[{cs.isoformat()}, {ce.isoformat()}); chunks before it are done. "
                    f"Resume with --start {cs.isoformat()}."
                )
                raise
            runs.append(run)
            progress.advance(1)
    return runs
