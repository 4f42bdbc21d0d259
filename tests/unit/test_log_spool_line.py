"""A prediction log row through the spool (``spool_line`` in the server, ``decode_line`` in the
committer) becomes exactly the record the in-process writer commits (``encode``)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from fti.services.prediction_logs import LogRow, encode
from fti.serving.log_committer import decode_line
from fti.serving.log_spool import spool_line

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


def test_a_row_through_the_spool_is_the_record_the_thread_writer_commits() -> None:
    for row in ROWS:
        key, record = decode_line(spool_line("view", 2, row))
        assert key == ("view", 2)
        assert record == encode(row)
