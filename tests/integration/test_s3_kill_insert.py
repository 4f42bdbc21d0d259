"""Kill -9 during inserts with the offline table on S3 (moto): the same checks as the local
test (acknowledged batches fully readable, no batch partially visible, online catches up),
with fewer kills (``FTI_S3_KILL_COUNT``, default 10). Run with ``pytest -s`` for the figure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import test_kill_insert

from s3_server import S3Server

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_kill_during_insert_on_s3(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The children and the checks open the store with fti.connect(root): the env decides.
    monkeypatch.setenv("FTI_OFFLINE", s3_server.url(s3_bucket, "killed/offline"))
    monkeypatch.setenv("FTI_ARTIFACTS", s3_server.url(s3_bucket, "killed/artifacts"))
    monkeypatch.setenv("FTI_KILL_COUNT", os.environ.get("FTI_S3_KILL_COUNT", "10"))
    test_kill_insert.test_kill_during_insert(tmp_path)
    assert not (tmp_path / "store" / "offline").exists()  # the table really was on S3
