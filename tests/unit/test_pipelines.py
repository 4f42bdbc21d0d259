"""Pipelines: decorators, typed parameters, run records, code version, monolithic runs, backfill."""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import subprocess
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import fti
from fti.pipelines.backfill import Months, chunks, parse_chunk, parse_duration
from fti.pipelines.loader import load_pipeline
from fti.pipelines.runner import parse_value
from fti.pipelines.runs import get_run, list_runs
from fti.store import context_of

T0 = datetime(2013, 1, 1, tzinfo=UTC)
calls: list[dict[str, Any]] = []


@fti.feature_pipeline
def hourly(fs: fti.FeatureStore, start: datetime, end: datetime, temp: float = 1.5) -> int:
    """One row per hour of the window into feature group 'weather'."""
    calls.append({"start": start, "end": end, "temp": temp})
    hours = int((end - start) / timedelta(hours=1))
    fg = fs.feature_group("weather", primary_key=["origin"], event_time="time_hour")
    df = pd.DataFrame(
        {
            "origin": ["JFK"] * hours,
            "time_hour": [start + timedelta(hours=i) for i in range(hours)],
            "temp": [temp] * hours,
        }
    )
    fg.insert(df)
    return hours


@fti.training_pipeline
def train(fs: fti.FeatureStore, model_name: str = "delays", limit: int = 0) -> dict[str, int]:
    rows = len(fs.get_feature_group("weather", version=1).read())
    fti._internal.lineage_events.record_output("model", model_name, 1)
    return {"rows": rows, "limit": limit}


@fti.inference_pipeline
def broken(fs: fti.FeatureStore) -> None:
    fs.get_feature_group("weather", version=1).read()
    raise RuntimeError("model file is corrupt")


def _runs(fs: fti.FeatureStore) -> list[fti.PipelineRun]:
    return list_runs(context_of(fs))


# ---------------------------------------------------------------------- decorators
def test_decorator_keeps_function_and_kind() -> None:
    assert hourly.kind == "feature"
    assert train.kind == "training"
    assert broken.kind == "inference"
    assert hourly.name == "hourly"
    assert hourly.__doc__ == "One row per hour of the window into feature group 'weather'."
    assert hourly.parameters == ["start", "end", "temp"]
    assert hourly.function_ref == f"{Path(__file__).resolve()}:hourly"

    @fti.feature_pipeline(name="custom")
    def plain(x: int) -> int:
        return x * 2

    assert plain.name == "custom"
    assert plain(4) == 8  # no store: just a call


def test_missing_type_hints_are_rejected() -> None:
    def untyped(fs, days, limit: int = 3):  # type: ignore[no-untyped-def]
        return days

    with pytest.raises(fti.ValidationError, match=r"without type hints: \['days'\]"):
        fti.feature_pipeline(untyped)

    def star(*args: int) -> None: ...

    with pytest.raises(fti.ValidationError, match=r"takes \*args"):
        fti.training_pipeline(star)


# ---------------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    ("text", "hint", "expected"),
    [
        ("7", int, 7),
        ("-3", int, -3),
        ("0.25", float, 0.25),
        ("hello world", str, "hello world"),
        ("true", bool, True),
        ("No", bool, False),
        ("1", bool, True),
        ("2013-01-02T03:04:05Z", datetime, datetime(2013, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (
            "2013-01-02T03:04:05+02:00",
            datetime,
            datetime(2013, 1, 2, 1, 4, 5, tzinfo=UTC),
        ),
        ("2013-05-06", date, date(2013, 5, 6)),
        ("JFK, EWR,LGA", list[str], ["JFK", "EWR", "LGA"]),
        ("", list[str], []),
        ("none", int | None, None),
        ("5", int | None, 5),
    ],
)
def test_parse_value(text: str, hint: Any, expected: Any) -> None:
    value = parse_value(text, hint, name="p")
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("text", "hint", "message"),
    [
        ("seven", int, r"Parameter 'p' expects int; got 'seven'"),
        ("maybe", bool, r"expects bool; got 'maybe'"),
        (
            "2013-01-02T03:04:05",
            datetime,
            r"has no timezone\. Add one, e\.g\. 2013-01-02T03:04:05Z",
        ),
        ("yesterday", datetime, r"not an ISO 8601 date-time"),
        ("{}", dict[str, int], r"cannot be given as text\. Supported types"),
    ],
)
def test_parse_value_errors(text: str, hint: Any, message: str) -> None:
    with pytest.raises(fti.ValidationError, match=message):
        parse_value(text, hint, name="p")


# ---------------------------------------------------------------------- runs
def test_run_records_parameters_window_code_and_lineage(fs: fti.FeatureStore) -> None:
    calls.clear()
    run = fti.run_pipeline(
        hourly,
        fs=fs,
        params={"temp": "2.5"},
        start="2013-01-01T00:00:00Z",
        end="2013-01-01T03:00:00Z",
    )
    assert calls == [{"start": T0, "end": T0 + timedelta(hours=3), "temp": 2.5}]
    assert run.status == "succeeded"
    assert run.error is None
    assert run.result == 3
    assert run.kind == "feature"
    assert run.pipeline == "hourly"
    assert run.function == f"{Path(__file__).resolve()}:hourly"
    assert run.parameters == {
        "start": "2013-01-01T00:00:00+00:00",
        "end": "2013-01-01T03:00:00+00:00",
        "temp": 2.5,
    }
    assert run.ended_at is not None
    assert run.started_at <= run.ended_at
    source_sha = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    assert run.code_version["source_sha256"] == source_sha
    assert set(run.code_version) >= {"git_commit", "git_dirty"}
    # the insert was the first commit after the table's creation: Delta version 1
    fg = fs.get_feature_group("weather", version=1)
    written = fg.stats()["offline_version"]
    assert run.inputs == []
    assert run.outputs == [
        {"kind": "feature_group", "name": "weather", "version": 1, "table_version": written}
    ]
    # stored, and read back identically
    stored = get_run(context_of(fs), run.id)
    assert stored == run
    assert get_run(context_of(fs), run.id[:22]).id == run.id

    second = fti.run_pipeline(train, fs=fs, params={"limit": "5"})
    assert second.result == {"rows": 3, "limit": 5}
    assert second.inputs == [
        {"kind": "feature_group", "name": "weather", "version": 1, "table_version": written}
    ]
    assert second.outputs == [{"kind": "model", "name": "delays", "version": 1}]
    assert [r.id for r in _runs(fs)] == [second.id, run.id]  # newest first


def test_bad_parameters_are_rejected_before_any_run(fs: fti.FeatureStore) -> None:
    with pytest.raises(fti.ValidationError, match=r"Unknown parameter\(s\) \['days'\]"):
        fti.run_pipeline(train, fs=fs, params={"days": "3"})
    with pytest.raises(fti.ValidationError, match=r"needs parameter\(s\) \['start', 'end'\]"):
        fti.run_pipeline(hourly, fs=fs)
    with pytest.raises(fti.ValidationError, match="has no 'start' parameter"):
        fti.run_pipeline(train, fs=fs, start=T0, end=T0 + timedelta(days=1))
    with pytest.raises(fti.ValidationError, match="must be before end"):
        fti.run_pipeline(hourly, fs=fs, start=T0, end=T0)
    with pytest.raises(fti.ValidationError, match="naive datetime"):
        fti.run_pipeline(hourly, fs=fs, start=datetime(2013, 1, 1), end=T0)
    with pytest.raises(fti.ValidationError, match=r"Unknown parameter\(s\) \['fs'\]"):
        fti.run_pipeline(train, fs=fs, params={"fs": "x"})
    with pytest.raises(fti.ValidationError, match="is not a pipeline"):
        fti.run_pipeline(lambda: None, fs=fs)  # type: ignore[arg-type]
    assert _runs(fs) == []


def test_failed_run_is_recorded_and_reraised(fs: fti.FeatureStore) -> None:
    fti.run_pipeline(hourly, fs=fs, start=T0, end=T0 + timedelta(hours=1))
    with pytest.raises(RuntimeError, match="model file is corrupt") as info:
        fti.run_pipeline(broken, fs=fs)
    failed = _runs(fs)[0]
    assert failed.status == "failed"
    assert failed.error == "RuntimeError: model file is corrupt"
    assert "raise RuntimeError" in failed.extra["traceback"]
    assert any(failed.id in note for note in info.value.__notes__)
    # what it read before failing is still recorded
    assert [i["name"] for i in failed.inputs] == ["weather"]
    quiet = fti.run_pipeline(broken, fs=fs, raise_on_error=False)
    assert quiet.status == "failed"
    assert quiet.result is None


def test_direct_call_with_a_store_is_recorded(fs: fti.FeatureStore) -> None:
    assert hourly(fs, T0, T0 + timedelta(hours=2), temp=4.0) == 2
    (run,) = _runs(fs)
    assert run.parameters["temp"] == 4.0
    assert run.status == "succeeded"

    @fti.training_pipeline
    def outer(fs: fti.FeatureStore) -> int:
        # a pipeline called inside a run is part of that run
        return int(hourly(fs, T0 + timedelta(hours=2), T0 + timedelta(hours=3)))

    outer_run = fti.run_pipeline(outer, fs=fs)
    runs = _runs(fs)
    assert len(runs) == 2
    assert runs[0].id == outer_run.id
    assert [o["name"] for o in outer_run.outputs] == ["weather"]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_code_version_is_the_git_commit_and_dirty_flag(
    fs: fti.FeatureStore, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    flow = repo / "flow.py"
    flow.write_text(
        textwrap.dedent(
            """
            import fti

            @fti.training_pipeline
            def job(n: int = 1) -> int:
                return n
            """
        )
    )

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=repo,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    git("init", "-q")
    git("add", "flow.py")
    git("commit", "-q", "-m", "flow")
    head = git("rev-parse", "HEAD")
    clean = fti.run_pipeline(load_pipeline(f"{flow}:job"), fs=fs)
    assert clean.code_version["git_commit"] == head
    assert clean.code_version["git_dirty"] is False
    flow.write_text(flow.read_text() + "\n# edited\n")
    dirty = fti.run_pipeline(load_pipeline(f"{flow}:job"), fs=fs)
    assert dirty.code_version["git_commit"] == head
    assert dirty.code_version["git_dirty"] is True
    assert dirty.code_version["source_sha256"] != clean.code_version["source_sha256"]


def test_loader_errors(tmp_path: Path) -> None:
    flow = tmp_path / "flow.py"
    flow.write_text("import fti\n\ndef helper(x: int) -> int:\n    return x\n\n"
                    "@fti.feature_pipeline\ndef real(x: int) -> int:\n    return x\n")  # fmt: skip
    with pytest.raises(fti.NotFoundError, match="does not exist"):
        load_pipeline(f"{tmp_path / 'nope.py'}:real")
    with pytest.raises(fti.NotFoundError, match=r"has no function 'missing'.*\['real'\]"):
        load_pipeline(f"{flow}:missing")
    with pytest.raises(fti.ValidationError, match=r"'helper' .* is not marked as a pipeline"):
        load_pipeline(f"{flow}:helper")
    with pytest.raises(fti.ValidationError, match=r"use FILE\.py:FUNCTION"):
        load_pipeline(str(flow))
    assert load_pipeline(f"{flow}:real").kind == "feature"


# ---------------------------------------------------------------------- monolithic
def test_monolithic_run_is_one_run_with_two_steps(fs: fti.FeatureStore) -> None:
    run = fti.run_monolithic(
        hourly,
        train,
        fs=fs,
        start="2013-01-01T00:00:00Z",
        end="2013-01-01T04:00:00Z",
        params={"temp": "3.0", "model_name": "mono"},
    )
    assert [r.id for r in _runs(fs)] == [run.id]  # exactly one run record
    assert run.kind == "monolithic"
    assert run.status == "succeeded"
    assert run.pipeline == "hourly+train"
    assert run.result == {"rows": 4, "limit": 0}
    first, second = run.steps
    assert (first["step"], first["kind"], first["status"]) == (1, "feature", "succeeded")
    assert (second["step"], second["kind"], second["status"]) == (2, "training", "succeeded")
    assert first["parameters"] == {
        "start": "2013-01-01T00:00:00+00:00",
        "end": "2013-01-01T04:00:00+00:00",
        "temp": 3.0,
    }
    assert second["parameters"] == {"model_name": "mono", "limit": 0}
    written = first["outputs"][0]["table_version"]
    # the training step read exactly the table version the feature step wrote
    assert second["inputs"] == first["outputs"]
    assert run.outputs == [
        {"kind": "feature_group", "name": "weather", "version": 1, "table_version": written},
        {"kind": "model", "name": "mono", "version": 1},
    ]
    assert get_run(context_of(fs), run.id).steps == run.steps


def test_monolithic_failure_skips_the_second_step(fs: fti.FeatureStore) -> None:
    @fti.feature_pipeline
    def bad_features(fs: fti.FeatureStore) -> None:
        raise ValueError("raw file missing")

    with pytest.raises(ValueError, match="raw file missing"):
        fti.run_monolithic(bad_features, train, fs=fs)
    (run,) = _runs(fs)
    assert run.status == "failed"
    assert run.error == "step 1 (bad_features): ValueError: raw file missing"
    assert [s["status"] for s in run.steps] == ["failed", "skipped"]


def test_monolithic_checks_kinds_and_parameters(fs: fti.FeatureStore) -> None:
    with pytest.raises(fti.ValidationError, match="feature pipeline followed by a training"):
        fti.run_monolithic(train, hourly, fs=fs)
    with pytest.raises(fti.ValidationError, match=r"Unknown parameter\(s\) \['depth'\]"):
        fti.run_monolithic(hourly, train, fs=fs, start=T0, end=T0 + timedelta(hours=1),
                           params={"depth": "3"})  # fmt: skip
    assert _runs(fs) == []


# ---------------------------------------------------------------------- backfill
def test_chunks_and_durations() -> None:
    assert parse_duration("1d") == timedelta(days=1)
    assert parse_duration("6h") == timedelta(hours=6)
    assert parse_duration(" 30m ") == timedelta(minutes=30)
    assert parse_duration("2w") == timedelta(weeks=2)
    for bad in ("1 day", "0d", "-1d", "d"):
        with pytest.raises(fti.ValidationError):
            parse_duration(bad)
    end = T0 + timedelta(days=2, hours=12)
    windows = chunks(T0, end, timedelta(days=1))
    assert windows == [
        (T0, T0 + timedelta(days=1)),
        (T0 + timedelta(days=1), T0 + timedelta(days=2)),
        (T0 + timedelta(days=2), end),
    ]


def test_month_chunks_follow_the_calendar() -> None:
    assert parse_chunk("1mo") == Months(1)
    assert parse_chunk(" 3mo ") == Months(3)
    assert parse_chunk("7d") == timedelta(days=7)
    for bad in ("0mo", "1 month", "mo", "-1mo"):
        with pytest.raises(fti.ValidationError):
            parse_chunk(bad)

    def utc(y: int, m: int, d: int) -> datetime:
        return datetime(y, m, d, 6, 30, tzinfo=UTC)

    # Jan 31 -> Feb 29 (leap year) -> Mar 31 -> Apr 30: anchored at the start, no drift to the 29th
    assert [e for _, e in chunks(utc(2024, 1, 31), utc(2024, 5, 15), Months(1))] == [
        utc(2024, 2, 29), utc(2024, 3, 31), utc(2024, 4, 30), utc(2024, 5, 15),
    ]  # fmt: skip
    assert chunks(utc(2023, 1, 31), utc(2023, 3, 1), Months(1))[0][1] == utc(2023, 2, 28)
    # across a year end, several months per chunk
    assert chunks(utc(2023, 11, 30), utc(2024, 6, 1), Months(3)) == [
        (utc(2023, 11, 30), utc(2024, 2, 29)),
        (utc(2024, 2, 29), utc(2024, 5, 30)),
        (utc(2024, 5, 30), utc(2024, 6, 1)),
    ]
    # the windows tile [start, end) exactly, in order
    windows = chunks(utc(2020, 1, 31), utc(2024, 12, 31), Months(1))
    assert windows[0][0] == utc(2020, 1, 31)
    assert windows[-1][1] == utc(2024, 12, 31)
    assert all(a[1] == b[0] and a[0] < a[1] for a, b in itertools.pairwise(windows))
    assert len(windows) == 59


def test_backfill_runs_each_chunk_in_order(fs: fti.FeatureStore) -> None:
    calls.clear()
    runs = fti.backfill(
        hourly,
        fs=fs,
        start="2013-01-01T00:00:00Z",
        end="2013-01-01T10:00:00Z",
        chunk="4h",
        params={"temp": "1.0"},
    )
    assert [(s["start"], s["end"]) for s in calls] == [
        (T0, T0 + timedelta(hours=4)),
        (T0 + timedelta(hours=4), T0 + timedelta(hours=8)),
        (T0 + timedelta(hours=8), T0 + timedelta(hours=10)),
    ]
    assert [r.extra["backfill"]["chunk"] for r in runs] == [1, 2, 3]
    assert len({r.extra["backfill"]["id"] for r in runs}) == 1
    table_versions = [r.outputs[0]["table_version"] for r in runs]
    assert table_versions == sorted(table_versions)
    assert len(set(table_versions)) == 3
    rows = fs.get_feature_group("weather", version=1).read()
    assert list(rows["time_hour"]) == [T0 + timedelta(hours=h) for h in range(10)]


def test_backfill_stops_at_the_failing_chunk(fs: fti.FeatureStore) -> None:
    @fti.feature_pipeline
    def flaky(fs: fti.FeatureStore, start: datetime, end: datetime) -> None:
        if start >= T0 + timedelta(days=1):
            raise RuntimeError("source unavailable")

    with pytest.raises(RuntimeError, match="source unavailable") as info:
        fti.backfill(flaky, fs=fs, start=T0, end=T0 + timedelta(days=3), chunk="1d")
    assert any("Resume with --start 2013-01-02T00:00:00+00:00" in n for n in info.value.__notes__)
    assert [r.status for r in _runs(fs)] == ["failed", "succeeded"]
    with pytest.raises(fti.ValidationError, match="needs 'start' and 'end'"):
        fti.backfill(train, fs=fs, start=T0, end=T0 + timedelta(days=1))


def test_record_input_file_hashes_the_file(fs: fti.FeatureStore, tmp_path: Path) -> None:
    raw = tmp_path / "flights.csv"
    raw.write_bytes(b"year,month\n2013,1\n" * 1000)
    expected = hashlib.sha256(raw.read_bytes()).hexdigest()

    @fti.feature_pipeline
    def ingest(fs: fti.FeatureStore, path: Path) -> str:
        return fti.record_input_file(path)

    run = fti.run_pipeline(ingest, fs=fs, params={"path": str(raw)})
    assert run.result == expected
    assert run.inputs == [
        {"kind": "file", "name": str(raw.resolve()), "version": None, "sha256": expected,
         "size": raw.stat().st_size}
    ]  # fmt: skip
    assert fti.record_input_file(raw) == expected  # outside a run: only hashes
    with pytest.raises(fti.NotFoundError, match="does not exist"):
        fti.record_input_file(tmp_path / "missing.csv")


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_running_record_whose_process_is_gone_shows_died(fs: fti.FeatureStore) -> None:
    import socket

    from fti._internal.liveness import effective_status
    from fti.pipelines.runs import start_run
    from fti.services import runs

    here = socket.gethostname()
    assert effective_status({"status": "running", "host": here, "pid": _dead_pid()}) == "died"
    alive = {"status": "running", "host": here, "pid": os.getpid()}
    assert effective_status(alive) == "running"
    elsewhere = {"status": "running", "host": here + "-other", "pid": _dead_pid()}
    assert effective_status(elsewhere) == "running"  # nothing can be told from another host
    finished = {"status": "failed", "host": here, "pid": _dead_pid()}
    assert effective_status(finished) == "failed"
    assert effective_status({"status": "running"}) == "running"  # older records: no pid

    # A run record as a SIGKILLed process leaves it: started, never finished.
    ctx = context_of(fs)
    record = start_run(
        ctx, kind="feature", pipeline="p", function="m:f", parameters={}, source=None
    )
    assert get_run(ctx, record.name).status == "running"  # this process is alive
    ctx.registry.update(
        runs.KIND,
        record.name,
        1,
        {**record.body, "pid": _dead_pid()},
        revision=record.revision,
    )
    assert get_run(ctx, record.name).status == "died"
    assert [r.id for r in list_runs(ctx, status="died")] == [record.name]
