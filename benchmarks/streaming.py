"""Streaming feature pipeline throughput and freshness, next to raw Redis baselines.

    .venv/bin/python benchmarks/streaming.py [--events 1000000] [--rate 1000] [--seconds 20]

1. Throughput: N events XADDed to a Redis stream (unique key prefix, deleted afterwards), then
   consumed by a stream pipeline with 3 aggregations (count, sum, max of ``amount``) over 2
   windows (1 min, 1 h), keyed by 10,000 cards, written offline (Delta) and online (SQLite, or
   ``--online redis://...``). Reported as events per wall second and per CPU second (one
   process, so ~per core), next to the baseline: raw XREADGROUP + XACK of the same stream by
   another consumer group in the same run (median of 3 passes, no decoding beyond redis-py).
2. Freshness: a producer XADDs at ``--rate`` events/s for ``--seconds``; a `fti stream run`
   subprocess consumes; every 10th event is probed: the time from its XADD until
   ``read_online`` returns a row for its card at or after its event time (p50/p99).

The machine may be shared: read the ratios rather than the absolutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis

import fti
from fti.backends.streams.redis import RedisStreamSource

URL = "redis://127.0.0.1:6379/0"
BASE = datetime(2024, 1, 1, tzinfo=UTC)

PIPELINE = textwrap.dedent(
    """
    import os
    from datetime import timedelta
    import fti
    from fti.backends.streams.redis import RedisStreamSource

    @fti.stream_pipeline(
        feature_group="bench_cards",
        key=["card"],
        event_time="ts",
        event_id="tx",
        schema={"card": "string", "tx": "string", "ts": "timestamp",
                "amount": os.environ.get("BENCH_AMOUNT", "int64")},
        aggregations=[
            fti.Aggregation("amount", fn, window=w)
            for fn in ("count", "sum", "max")
            for w in (timedelta(minutes=1), timedelta(hours=1))
        ],
        source=lambda: RedisStreamSource(os.environ.get("BENCH_REDIS", "{url}"),
                                         stream=os.environ["BENCH_STREAM"], group="bench"),
        allowed_lateness=timedelta(minutes=5),
        batch_size=int(os.environ.get("BENCH_BATCH", "5000")),
        max_delay=timedelta(milliseconds=int(os.environ.get("BENCH_DELAY_MS", "100"))),
    )
    def bench_cards(event):
        return event
    """
).replace("{url}", URL)


def load_pipeline(folder: Path) -> Any:
    path = folder / "bench_pipeline.py"
    path.write_text(PIPELINE)
    from fti.cli.stream import load_pipeline as load

    return load(f"{path}:bench_cards"), path


def amount(i: int) -> str:
    """int64 amounts by default; with --amount float64, cents as decimal strings."""
    if os.environ.get("BENCH_AMOUNT") == "float64":
        return f"{i % 99_991 / 100:.2f}"
    return str(i % 997)


def xadd_events(client: redis.Redis, key: str, n: int, cards: int) -> None:
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        ts = BASE + timedelta(milliseconds=i)
        pipe.xadd(
            key,
            {"card": f"c{i % cards}", "tx": f"t{i}", "ts": ts.isoformat(), "amount": amount(i)},
        )
        if i % 10_000 == 9_999:
            pipe.execute()
    pipe.execute()


def raw_xreadgroup(client: redis.Redis, key: str, group: str, count: int) -> float:
    """Events/s of a bare XREADGROUP + XACK loop over the whole stream."""
    client.xgroup_create(key, group, id="0")
    started = time.perf_counter()
    n = 0
    while True:
        reply = client.xreadgroup(group, "raw", {key: ">"}, count=count)
        if not reply:
            break
        entries = reply[0][1]
        n += len(entries)
        client.xack(key, group, *[i for i, _ in entries])
    return n / (time.perf_counter() - started)


def throughput(args: argparse.Namespace, folder: Path) -> None:
    client = redis.Redis.from_url(URL, decode_responses=True)
    key = f"fti-bench-{uuid.uuid4().hex}"
    try:
        t0 = time.perf_counter()
        xadd_events(client, key, args.events, 10_000)
        print(f"XADD {args.events:,} events: {time.perf_counter() - t0:.1f}s")
        raw = [raw_xreadgroup(client, key, f"raw{i}", 5_000) for i in range(3)]
        raw_rate = statistics.median(raw)
        pipeline, _ = load_pipeline(folder)
        from fti.pipelines.streaming.aggregation import new_state

        print(f"stream state: {type(new_state(pipeline.spec)).__name__}")
        fs = fti.connect(folder / "store", online=args.online)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        report = pipeline.run(
            fs, source=RedisStreamSource(URL, stream=key, group="bench"), idle_timeout=2.0
        )
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0 - 2.0  # minus the idle wait that ends the run
        fs.close()
        rate = report.records / wall
        print(report)
        print(f"raw XREADGROUP+XACK (median of 3):  {raw_rate:>12,.0f} events/s")
        ratio = rate / raw_rate
        print(f"stream pipeline, wall:              {rate:>12,.0f} events/s  ({ratio:.3f}x raw)")
        print(f"stream pipeline, per CPU second:    {report.records / cpu:>12,.0f} events/s")
    finally:
        client.delete(key)
        client.close()


def freshness(args: argparse.Namespace, folder: Path) -> None:
    client = redis.Redis.from_url(URL, decode_responses=True)
    key = f"fti-bench-{uuid.uuid4().hex}"
    _, path = load_pipeline(folder)
    root = folder / "fresh-store"
    env = {**os.environ, "BENCH_STREAM": key, "BENCH_DELAY_MS": "50", "BENCH_BATCH": "2000"}
    if args.online:
        env["FTI_ONLINE"] = args.online
    client.xadd(key, {"card": "warmup", "tx": "w0", "ts": BASE.isoformat(), "amount": 1})
    proc = subprocess.Popen(
        [sys.executable, "-m", "fti", "stream", "run", f"{path}:bench_cards", "--root", str(root)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    fs = fti.connect(root, online=args.online)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait for the consumer to be up
            try:
                if fs.get_feature_group("bench_cards").read_online([{"card": "warmup"}])[0]:
                    break
            except fti.NotFoundError:
                pass
            time.sleep(0.1)
        fg = fs.get_feature_group("bench_cards")
        probes: dict[str, tuple[datetime, float]] = {}  # card -> (event time, XADD time)
        latencies: list[float] = []
        lock = threading.Lock()
        stop = threading.Event()

        def prober() -> None:
            while not stop.is_set() or probes:
                with lock:
                    waiting = dict(probes)
                if waiting:
                    cards = list(waiting)
                    rows = fg.read_online([{"card": c} for c in cards])
                    now = time.perf_counter()
                    with lock:
                        for card, row in zip(cards, rows, strict=True):
                            et, sent = waiting[card]
                            if row is not None and row["ts"] >= et:
                                latencies.append(now - sent)
                                probes.pop(card, None)
                time.sleep(0.002)
                if stop.is_set() and time.monotonic() > stop_deadline:
                    break

        stop_deadline = 0.0
        thread = threading.Thread(target=prober, daemon=True)
        thread.start()
        interval = 1.0 / args.rate
        total = int(args.rate * args.seconds)
        start = time.perf_counter()
        for i in range(total):
            target = start + i * interval
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            et = datetime.now(UTC)
            card = f"f{i % 500}" if i % 10 else f"probe{i}"
            client.xadd(key, {"card": card, "tx": f"f{i}", "ts": et.isoformat(), "amount": i % 97})
            if i % 10 == 0:
                with lock:
                    probes[card] = (et, time.perf_counter())
        produced = total / (time.perf_counter() - start)
        stop_deadline = time.monotonic() + 10
        stop.set()
        thread.join(timeout=20)
        latencies.sort()
        if not latencies:
            print("freshness: no probe became readable")
            return
        p50 = latencies[len(latencies) // 2] * 1000
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        print(
            f"freshness at {produced:,.0f} events/s for {args.seconds}s: "
            f"{len(latencies)}/{total // 10} probes readable; p50 {p50:.0f} ms, p99 {p99:.0f} ms "
            f"(XADD -> read_online)"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        fs.close()
        client.delete(key)
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=1_000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--online", default=None, help="online store URL (default: SQLite)")
    parser.add_argument(
        "--state",
        choices=["auto", "python"],
        default="auto",
        help="python: force the per-event Python state (for comparison)",
    )
    parser.add_argument(
        "--amount",
        choices=["int64", "float64"],
        default="int64",
        help="dtype of the aggregated column (float64: exact float sums)",
    )
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-freshness", action="store_true")
    args = parser.parse_args()
    os.environ["BENCH_AMOUNT"] = args.amount  # read by the pipeline file and the producer
    if args.state == "python":
        os.environ["FTI_STREAM_STATE"] = "python"  # read by new_state (also in the subprocess)
    folder = Path(tempfile.mkdtemp(prefix="fti-bench-stream-"))
    try:
        if not args.skip_throughput:
            throughput(args, folder)
        if not args.skip_freshness:
            freshness(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
