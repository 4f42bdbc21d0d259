"""fg.read()'s three modes and partial inserts against a plain-Python oracle.

Random inserts with repeated keys and event times across several inserts (corrections), some
of them partial (only ``v``, so ``w`` keeps the stored value), read at every table version,
with and without a time window, and online.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fti

T0 = datetime(2024, 1, 1, tzinfo=UTC)
KEYS = ("a", "b", "c")

# One insert: (partial?, rows of (key, hour)).
inserts = st.lists(
    st.tuples(
        st.booleans(),
        st.lists(st.tuples(st.sampled_from(KEYS), st.integers(0, 3)), min_size=1, max_size=6),
    ),
    min_size=1,
    max_size=4,
)


def _w(i: int, j: int) -> float | None:
    return None if (i + j) % 5 == 4 else float(1000 + 10 * i + j)  # some stored nulls too


# ----------------------------------------------------------------------------- the oracle
# A row: dict(order=(insert, position), k, h, v, w). Nothing here reuses engine code.


def oracle_rows(batches: list[tuple[bool, list[tuple[str, int]]]], with_time: bool) -> list[dict]:
    """Every row written, with partial rows completed as the README defines it."""
    written: list[dict[str, Any]] = []
    for i, (partial, batch) in enumerate(batches):
        before = list(written)  # rows of the same insert do not fill each other
        for j, (k, h) in enumerate(batch):
            hour = h if with_time else 0
            row = {"order": (i, j), "k": k, "h": hour, "v": float(100 * i + j), "w": _w(i, j)}
            if partial:
                earlier = [r for r in before if r["k"] == k and r["h"] <= hour]
                best = max(earlier, key=lambda r: (r["h"], r["order"]), default=None)
                row["w"] = None if best is None else best["w"]
            written.append(row)
    return written


def in_window(rows: list[dict], start: int | None, end: int | None) -> list[dict]:
    return [r for r in rows if (start is None or r["h"] >= start) and (end is None or r["h"] < end)]


def corrected(rows: list[dict]) -> list[dict]:
    winner: dict[tuple[str, int], dict] = {}
    for r in rows:
        cur = winner.get((r["k"], r["h"]))
        if cur is None or r["order"] > cur["order"]:
            winner[(r["k"], r["h"])] = r
    return sorted(winner.values(), key=lambda r: (r["h"], r["order"]))


def latest(rows: list[dict]) -> list[dict]:
    winner: dict[str, dict] = {}
    for r in rows:
        cur = winner.get(r["k"])
        if cur is None or (r["h"], r["order"]) > (cur["h"], cur["order"]):
            winner[r["k"]] = r
    return sorted(winner.values(), key=lambda r: (r["h"], r["order"]))


def audit(rows: list[dict]) -> list[tuple[Any, ...]]:
    keep = {id(r) for r in corrected(rows)}
    return [
        (r["k"], r["h"], r["v"], r["w"], id(r) not in keep)
        for r in sorted(rows, key=lambda r: (r["h"], r["order"]))
    ]


# ----------------------------------------------------------------------------- the engine side


def _frame(i: int, partial: bool, batch: list[tuple[str, int]], with_time: bool) -> pd.DataFrame:
    data: dict[str, Any] = {"k": [k for k, _ in batch]}
    if with_time:
        data["t"] = [T0 + timedelta(hours=h) for _, h in batch]
    data["v"] = [float(100 * i + j) for j in range(len(batch))]
    if not partial:
        data["w"] = pd.array([_w(i, j) for j in range(len(batch))], dtype="Float64")
    return pd.DataFrame(data)


def _got(frame: pd.DataFrame, with_time: bool, *, flag: bool = False) -> list[tuple[Any, ...]]:
    out = []
    for rec in frame.to_dict("records"):
        hour = int((rec["t"] - T0) / timedelta(hours=1)) if with_time else 0
        w = None if pd.isna(rec["w"]) else rec["w"]
        row: tuple[Any, ...] = (rec["k"], hour, rec["v"], w)
        out.append((*row, bool(rec["_fti_superseded"])) if flag else row)
    return out


def _want(rows: list[dict]) -> list[tuple[Any, ...]]:
    return [(r["k"], r["h"], r["v"], r["w"]) for r in rows]


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batches=inserts,
    with_time=st.booleans(),
    window=st.tuples(st.none() | st.integers(0, 4), st.none() | st.integers(0, 4)),
)
def test_read_modes_and_partial_inserts_match_the_oracle(
    batches: list[tuple[bool, list[tuple[str, int]]]],
    with_time: bool,
    window: tuple[int | None, int | None],
) -> None:
    with tempfile.TemporaryDirectory() as tmp, fti.connect(Path(tmp)) as fs:
        features = {"k": "string", "v": "float64", "w": "float64"}
        if with_time:
            features["t"] = "timestamp"
        fg = fs.feature_group(
            "g",
            primary_key=["k"],
            event_time="t" if with_time else None,
            online=True,
            features=features,
        )
        versions = []
        for i, (partial, batch) in enumerate(batches):
            versions.append(fg.insert(_frame(i, partial, batch, with_time), partial=partial))
        rows = oracle_rows(batches, with_time)

        for n, report in enumerate(versions, start=1):
            # Table version after the n-th insert holds the rows of the first n inserts.
            seen = [r for r in rows if r["order"][0] < n]
            v = report.offline_version
            assert _got(fg.read(version=v), with_time) == _want(corrected(seen))
            assert _got(fg.read(version=v, latest=True), with_time) == _want(latest(seen))
            audited = fg.read(version=v, include_superseded=True)
            assert _got(audited, with_time, flag=True) == audit(seen)
            if not with_time:  # one "time" per key: the audit order is the ingestion order
                assert audited["_fti_seq"].is_monotonic_increasing

        if with_time:
            start, end = window
            bounds = {
                "start": None if start is None else T0 + timedelta(hours=start),
                "end": None if end is None else T0 + timedelta(hours=end),
            }
            part = in_window(rows, start, end)
            assert _got(fg.read(**bounds), with_time) == _want(corrected(part))
            assert _got(fg.read(latest=True, **bounds), with_time) == _want(latest(part))
            got = fg.read(include_superseded=True, **bounds)
            assert _got(got, with_time, flag=True) == audit(part)

        current = {r["k"]: r for r in latest(rows)}
        online = fg.read_online([{"k": k} for k in KEYS])
        for k, row in zip(KEYS, online, strict=True):
            if k not in current:
                assert row is None
                continue
            assert row is not None
            assert (row["v"], row["w"]) == (current[k]["v"], current[k]["w"])

        stats = fg.stats()
        assert stats["rows"] == len(rows)
        assert stats["history_rows"] == len(corrected(rows))
        assert stats["current_rows"] == len(current)
