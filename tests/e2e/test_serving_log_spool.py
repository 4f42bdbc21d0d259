"""The spooled prediction log of ``fti serve`` (``SpoolLogWriter`` + its committer process):
rows reach ``read_log`` after ``close``, and spool files left by a server whose committer died
too are committed by the next server on the store."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest

import fti
import serving_world
from fti.services.prediction_logs import LogRow
from fti.serving.log_spool import SPOOL_SUFFIX, SpoolLogWriter, spool_dir

pytestmark = pytest.mark.slow


@pytest.fixture
def store(tmp_path: Path) -> dict[str, str]:
    fs = fti.connect(tmp_path / "store")
    serving_world.build(fs, trips=20, model=False)
    cfg = fs.config
    fs.close()
    return {p: str(getattr(cfg, p)) for p in ("root", "offline", "online", "registry", "artifacts")}


def _rows(request_id: str, n: int) -> list[LogRow]:
    return [
        LogRow(
            request_id=request_id,
            position=i,
            logged_at=datetime.now(UTC),
            entity={"trip_id": i},
            request={"dep_hour": 3},
            features={"distance": float("nan"), "note": "é"},
            transformed=[1.5, None],
            prediction=i % 2,
            probability=0.25,
            model_name="m",
            model_version=1,
            training_dataset_version=None,
        )
        for i in range(n)
    ]


def _log(root: str) -> object:
    fs = fti.connect(root)
    try:
        return fs.get_feature_view("trips_view", version=1).read_log()
    finally:
        fs.close()


def test_close_commits_every_submitted_row(store: dict[str, str]) -> None:
    writer = SpoolLogWriter(store, flush_seconds=0.05, commit_seconds=0.2)
    assert writer.submit("trips_view", 1, _rows("a", 3))
    assert writer.submit("trips_view", 1, _rows("b", 2))
    writer.close()
    log = _log(store["root"])
    assert sorted(zip(log["request_id"], log["position"], strict=True)) == [
        ("a", 0),
        ("a", 1),
        ("a", 2),
        ("b", 0),
        ("b", 1),
    ]
    row = log[log["request_id"] == "a"].iloc[0]
    assert row["note"] == "é"
    assert row["probability"] == 0.25
    assert row["distance"] != row["distance"]  # NaN stays NaN
    assert not list(spool_dir(store["root"]).glob(f"*{SPOOL_SUFFIX}"))


def test_spool_left_by_a_dead_server_is_committed_by_the_next(store: dict[str, str]) -> None:
    dead = SpoolLogWriter(store, flush_seconds=3600, commit_seconds=3600)
    dead.submit("trips_view", 1, _rows("orphan", 4))
    dead._spool()  # what its thread does every flush interval
    pid = dead.committer_pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # the committer dies before its first round
    assert dead._committer is not None
    dead._committer.wait(30)
    assert len(list(spool_dir(store["root"]).glob(f"*{SPOOL_SUFFIX}"))) == 1

    nxt = SpoolLogWriter(store, flush_seconds=0.05, commit_seconds=0.2)
    assert nxt.committer_pid is not None  # started at once for the files waiting
    nxt.close()
    log = _log(store["root"])
    assert sorted(log["request_id"]) == ["orphan"] * 4
