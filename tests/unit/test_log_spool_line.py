"""A prediction log row through the spool (``spool_record`` in the server, the committer's
reading of a spool file) becomes exactly the record the in-process writer commits (``encode``),
also through the JSON lines of older servers and the JSON fallback for values MessagePack
cannot hold."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fti.services.prediction_logs import LogRow, encode
from fti.serving.log_committer import _records, decode_line
from fti.serving.log_spool import LEGACY_SUFFIX, SPOOL_SUFFIX, spool_line, spool_record

ROWS = [
    LogRow(
        request_id="r1",
        position=0,
        logged_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        entity={"flight_id": 7, "origin": "JFK"},
        request={"dep_hour": 9},
        features={"nan": math.nan, "inf": -math.inf, "f": 0.1 + 0.2, "s": 'é"\n', "n": None},
        transformed={"a": 1.5, "b": None},
        prediction=True,
        probability=0.75,
        model_name="m",
        model_version=3,
        training_dataset_version=2,
    ),
    LogRow(
        request_id="r2",
        position=4,
        logged_at=datetime(2026, 1, 2, 3, 4, 5) + timedelta(microseconds=1),  # naive: UTC
        entity={"k": 2**62},
        request={},
        features={"when": datetime(2020, 1, 1, tzinfo=UTC), "nested": {"x": [1, 2.5]}},
        transformed=[1.0, math.nan, None],
        prediction="late",
        probability=None,
        model_name="m",
        model_version=1,
        training_dataset_version=None,
    ),
    LogRow("r3", 1, datetime(2026, 1, 1, tzinfo=UTC), {}, {}, {}, None, [0.1, 2], "m", 1, None),
]


def test_a_row_through_the_spool_is_the_record_the_thread_writer_commits(tmp_path: Path) -> None:
    rows = [*ROWS, replace(ROWS[0], request_id="big", entity={"k": 2**70})]  # beyond 64 bits
    spooled = tmp_path / f"a{SPOOL_SUFFIX}"
    spooled.write_bytes(b"".join(spool_record("view", 2, row) for row in rows))
    legacy = tmp_path / f"b{LEGACY_SUFFIX}"
    legacy.write_text("".join(spool_line("view", 2, row) + "\n" for row in rows))
    for path in (spooled, legacy):
        got = list(_records(path))
        assert [key for key, _ in got] == [("view", 2)] * len(rows)
        assert [record for _, record in got] == [encode(row) for row in rows]
    for row in rows:
        assert decode_line(spool_line("view", 2, row)) == (("view", 2), encode(row))
