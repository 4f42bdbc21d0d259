"""A streaming feature pipeline over synthetic card transactions (Redis Streams).

    fti stream run examples/streaming/card_activity.py:card_activity

Environment: FTI_HOME is the store (default ./.fti); FTI_DEMO_REDIS the Redis server (default
redis://127.0.0.1:6379/0); FTI_DEMO_STREAM the stream to read (default fti-demo-transactions).

Per card: transaction count and amount sum over 10 minutes and 1 hour, the largest amount in
the last hour, the mean over 1 day, and the number of distinct merchants in the last hour.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import fti
from fti.backends.streams import RedisStreamSource

STREAM = os.environ.get("FTI_DEMO_STREAM", "fti-demo-transactions")
REDIS = os.environ.get("FTI_DEMO_REDIS", "redis://127.0.0.1:6379/0")
TEN_MIN, HOUR, DAY = timedelta(minutes=10), timedelta(hours=1), timedelta(days=1)


@fti.stream_pipeline(
    feature_group="card_activity",
    key=["card_id"],
    event_time="ts",
    event_id="tx_id",
    schema={
        "card_id": "string",
        "tx_id": "string",
        "ts": "timestamp",
        "amount": "float64",
        "merchant": "string",
    },
    aggregations=[
        fti.Aggregation("amount", "count", window=TEN_MIN, name="tx_count_10m"),
        fti.Aggregation("amount", "count", window=HOUR, name="tx_count_1h"),
        fti.Aggregation("amount", "sum", window=TEN_MIN),
        fti.Aggregation("amount", "sum", window=HOUR),
        fti.Aggregation("amount", "max", window=HOUR),
        fti.Aggregation("amount", "mean", window=DAY),
        fti.Aggregation("merchant", "count_distinct", window=HOUR),
    ],
    source=lambda: RedisStreamSource(REDIS, stream=STREAM, group="card-activity"),
    allowed_lateness=timedelta(minutes=5),
    ttl=DAY,
)
def card_activity(tx: dict[str, Any]) -> dict[str, Any] | None:
    """Card activity features for fraud scoring. Drops declined authorizations."""
    if tx.get("status") == "declined":
        return None
    return tx
