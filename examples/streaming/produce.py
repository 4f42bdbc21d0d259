"""Send synthetic card transactions to a Redis stream (with some duplicate deliveries).

python examples/streaming/produce.py --events 20000 [--rate 0 = as fast as possible]

Environment: FTI_DEMO_REDIS the Redis server (default redis://127.0.0.1:6379/0); FTI_DEMO_STREAM
the stream to write (default fti-demo-transactions). It writes nothing to disk.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from datetime import UTC, datetime, timedelta

import redis

STREAM = os.environ.get("FTI_DEMO_STREAM", "fti-demo-transactions")
REDIS = os.environ.get("FTI_DEMO_REDIS", "redis://127.0.0.1:6379/0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=0.0, help="events/s (0: no limit)")
    parser.add_argument("--cards", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    client = redis.Redis.from_url(REDIS, decode_responses=True)
    start = datetime.now(UTC) - timedelta(seconds=args.events // 10)  # ~10 tx/s of history
    pipe = client.pipeline(transaction=False)
    sent = 0
    for i in range(args.events):
        tx = {
            "card_id": f"card-{rng.randrange(args.cards):04d}",
            "tx_id": f"tx-{args.seed}-{i}",
            "ts": (start + timedelta(milliseconds=100 * i + rng.randint(0, 400))).isoformat(),
            "amount": f"{rng.lognormvariate(3, 1):.2f}",
            "merchant": f"m{rng.randrange(50)}",
            "status": "declined" if rng.random() < 0.02 else "approved",
        }
        pipe.xadd(STREAM, tx)
        if rng.random() < 0.05:
            pipe.xadd(STREAM, tx)  # an at-least-once producer retried: same tx_id again
        sent += 1
        if args.rate:
            pipe.execute()
            time.sleep(1 / args.rate)
        elif i % 5_000 == 4_999:
            pipe.execute()
    pipe.execute()
    print(f"Sent {sent:,} transactions (plus retries) to stream {STREAM!r}")


if __name__ == "__main__":
    main()
