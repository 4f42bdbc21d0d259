"""The pipeline file `fti stream run` loads in the crash test (configured by env vars)."""

from __future__ import annotations

import os

from streaming_support import cards_pipeline

from fti.backends.streams.redis import RedisStreamSource

cards = cards_pipeline(
    lambda: RedisStreamSource(
        os.environ.get("FTI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
        stream=os.environ["FTI_TEST_STREAM"],
        group="fti-test",
    ),
    batch_size=int(os.environ.get("FTI_TEST_BATCH", "2000")),
)
