"""Rows, a plain-Python oracle and checks for the online-loss tests (Redis and SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

import fti

__all__ = ["T0", "batches", "check", "oracle", "store_with"]

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def batches(n_keys: int, inserts: int) -> list[list[dict[str, Any]]]:
    """Several inserts: later ones update some keys with later times, one goes back in time."""
    batches = []
    for b in range(inserts):
        batch = []
        for k in range(n_keys):
            if b and k % (b + 1):
                continue
            hour = b if k % 7 else -b  # every 7th key gets an older row: must not win
            batch.append(
                {"station": f"s{k:04d}", "t": T0 + timedelta(hours=hour), "temp": float(k + b)}
            )
        batches.append(batch)
    return batches


def oracle(batches: list[list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for batch in batches:
        for row in batch:
            old = latest.get(row["station"])
            if old is None or row["t"] >= old["t"]:
                latest[row["station"]] = row
    return latest


def store_with(root: Path, url: str, batches: list[list[dict[str, Any]]]) -> fti.FeatureStore:
    fs = fti.connect(root, online=url)
    fg = fs.feature_group("weather", primary_key=["station"], event_time="t", online=True)
    for batch in batches:
        fg.insert(pa.Table.from_pylist(batch))
    return fs


def check(rows: list[dict[str, Any] | None], want: dict[str, dict[str, Any]]) -> None:
    assert len(rows) == len(want)
    for row, (key, expected) in zip(rows, sorted(want.items()), strict=True):
        assert row is not None, key
        assert (row["station"], row["t"], row["temp"]) == (key, expected["t"], expected["temp"])
