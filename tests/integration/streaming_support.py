"""Shared by the streaming integration tests: a card-activity pipeline, random event streams
with duplicates and out-of-order delivery, and a plain-Python oracle (no engine code)."""

from __future__ import annotations

import bisect
import random
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import fti
from fti.pipelines.streaming import StreamPipeline

BASE = datetime(2024, 1, 1, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = timedelta(microseconds=1)
WINDOWS = {"1m": 60_000_000, "10m": 600_000_000}
FEATURES = {  # output -> (fn, window)
    "amount_count_1m": ("count", "1m"),
    "amount_sum_1m": ("sum", "1m"),
    "amount_max_10m": ("max", "10m"),
    "amount_mean_10m": ("mean", "10m"),
}


def cards_pipeline(source: Any = None, *, name: str = "cards", **options: Any) -> StreamPipeline:
    """Three aggregation functions (+ count) over two windows, keyed by card, on event time."""
    aggs = [
        fti.Aggregation("amount", fn, window=timedelta(microseconds=WINDOWS[w]))
        for fn, w in FEATURES.values()
    ]

    @fti.stream_pipeline(
        feature_group=name,
        key=["card"],
        event_time="ts",
        event_id="tx",
        schema={"card": "string", "tx": "string", "ts": "timestamp", "amount": "int64"},
        aggregations=aggs,
        source=source,
        allowed_lateness=timedelta(hours=1),
        **options,
    )
    def cards(event: dict[str, Any]) -> dict[str, Any] | None:
        """Card activity: drops test pings (a row-level transformation)."""
        return None if event.get("kind") == "ping" else event

    return cards


def make_events(
    n: int, *, keys: int = 50, seed: int = 0, dup: float = 0.1, ooo: float = 0.1
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(delivery order with duplicates and local reordering, the unique events)."""
    rng = random.Random(seed)
    unique = []
    for i in range(n):
        t = BASE + timedelta(milliseconds=10 * i + rng.randint(0, 30))  # equal times happen
        unique.append(
            {
                "card": f"c{rng.randrange(keys)}",
                "tx": f"t{i}",
                "ts": t.isoformat(),
                "amount": str(rng.randint(1, 50_000)),
            }
        )
    # Duplicates: the same event delivered again up to 200 positions later.
    later: dict[int, list[dict[str, str]]] = {}
    for i in rng.sample(range(n), int(n * dup)):
        later.setdefault(i + rng.randint(1, 200), []).append(unique[i])
    delivery = []
    for i, e in enumerate(unique):
        delivery.append(e)
        delivery.extend(later.pop(i, []))
    for rest in later.values():
        delivery.extend(rest)
    for _ in range(int(n * ooo)):
        i = rng.randrange(len(delivery) - 1)
        j = min(len(delivery) - 1, i + rng.randint(1, 50))
        delivery[i], delivery[j] = delivery[j], delivery[i]
    return delivery, unique


def micros(iso: str) -> int:
    return (datetime.fromisoformat(iso) - EPOCH) // US


def oracle(unique: list[dict[str, str]]) -> dict[tuple[str, int], dict[str, Any]]:
    """For each card and distinct event time t: the aggregates over (t - window, t]."""
    by_card: dict[str, list[tuple[int, int]]] = {}
    for e in unique:
        by_card.setdefault(e["card"], []).append((micros(e["ts"]), int(e["amount"])))
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for card, evs in by_card.items():
        evs.sort()
        times = [t for t, _ in evs]
        for t in sorted(set(times)):
            row: dict[str, Any] = {}
            hi = bisect.bisect_right(times, t)
            for name, (fn, w) in FEATURES.items():
                lo = bisect.bisect_right(times, t - WINDOWS[w])
                xs = [a for _, a in evs[lo:hi]]
                if fn == "count":
                    row[name] = len(xs)
                elif fn == "sum":
                    row[name] = sum(xs)
                elif fn == "max":
                    row[name] = max(xs)
                else:
                    row[name] = float(Fraction(sum(xs), len(xs)))
            out[(card, t)] = row
    return out


def offline_state(fs: fti.FeatureStore, name: str) -> dict[tuple[str, int], dict[str, Any]]:
    """Latest offline row per (card, event time): rows come ordered by (time, ingestion)."""
    table = fs.get_feature_group(name).read(format="arrow").to_pylist()
    out = {}
    for r in table:
        out[(r["card"], (r["ts"] - EPOCH) // US)] = {k: r[k] for k in FEATURES}
    return out


def compare(fs: fti.FeatureStore, name: str, expected: dict) -> tuple[int, int]:
    """(offline mismatches, online mismatches) against the oracle."""
    offline = offline_state(fs, name)
    off_bad = sum(1 for k in expected.keys() | offline.keys() if expected.get(k) != offline.get(k))
    latest: dict[str, int] = {}
    for card, t in expected:
        latest[card] = max(latest.get(card, t), t)
    cards = sorted(latest)
    online = fs.get_feature_group(name).read_online([{"card": c} for c in cards])
    on_bad = 0
    for card, row in zip(cards, online, strict=True):
        want = expected[(card, latest[card])]
        if (
            row is None
            or (row["ts"] - EPOCH) // US != latest[card]
            or {k: row[k] for k in FEATURES} != want
        ):
            on_bad += 1
    return off_bad, on_bad
