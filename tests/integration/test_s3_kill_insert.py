"""Kill -9 during inserts with the offline table on S3 (moto): the same checks as the local
test (acknowledged batches fully readable, no batch partially visible, online catches up),
with fewer kills (``FTI_S3_KILL_COUNT``, default 10), with the server's conditional puts and
with the registry-held commit lock. Run with ``pytest -s`` for the figure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import test_kill_insert

from s3_server import S3Server

pytestmark = pytest.mark.integration


@pytest.mark.slow
@pytest.mark.parametrize("commit_lock", ["conditional", "registry"])
def test_kill_during_insert_on_s3(
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    commit_lock: str,
) -> None:
    # The children and the checks open the store with fti.connect(root): the env decides.
    # With the registry lock, a child killed while holding it must not wedge the next one.
    offline = s3_server.url(s3_bucket, "killed/offline", commit_lock=commit_lock)
    monkeypatch.setenv("FTI_OFFLINE", offline)
    monkeypatch.setenv("FTI_ARTIFACTS", s3_server.url(s3_bucket, "killed/artifacts"))
    monkeypatch.setenv("FTI_KILL_COUNT", os.environ.get("FTI_S3_KILL_COUNT", "10"))
    # An insert on S3 takes longer than locally (several requests per commit): kills spread
    # over a longer window so that some land after an insert has returned.
    monkeypatch.setenv("FTI_KILL_MAX_DELAY", "1.2")
    test_kill_insert.test_kill_during_insert(tmp_path)
    assert not (tmp_path / "store" / "offline").exists()  # the table really was on S3
