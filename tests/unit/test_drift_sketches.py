"""Drift windows from per-commit sketches (#13): whole UTC days merged from the commit profiles,
partial days scanned. Against the scan (``FTI_DRIFT_SKETCHES=0``): rows, nulls and categorical
counts exact; each numeric bin's share within ``BIN_ERROR`` of the exact share over the same
edges; a window the profiles cannot describe exactly (rows deleted, ±inf) is scanned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

import fti
from fti.services import drift_sketches, drift_windows
from fti.store import context_of

T0 = datetime(2026, 3, 1, tzinfo=UTC)
# reference and detection both start and end inside a day: both have partial days
REF = fti.window(start=T0 + timedelta(hours=7), end=T0 + timedelta(days=6, hours=13))
DET = fti.window(start=T0 + timedelta(days=6, hours=13), end=T0 + timedelta(days=11, hours=2))
FEATURES = ["x", "k", "c", "b"]


def _frame(n: int, seed: int, start_id: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    x[rng.random(n) < 0.03] = np.nan
    c = rng.choice(["US", "DE", "FR", "NL"], n).astype(object)
    c[rng.random(n) < 0.05] = None
    return pd.DataFrame(
        {
            "id": np.arange(start_id, start_id + n),
            "t": [T0 + timedelta(seconds=float(s)) for s in rng.uniform(0, 12 * 86_400, n)],
            "x": pd.array(np.where(rng.random(n) < 0.04, None, x), dtype="Float64"),
            "k": rng.integers(0, 50, n),
            "c": c,
            "b": rng.random(n) < 0.3 + 0.05 * shift,
        }
    )


def _group(fs: fti.FeatureStore, seed: int, shift: float = 0.0) -> fti.FeatureGroup:
    fg = fs.feature_group("tx", primary_key=["id"], event_time="t")
    for i in range(3):  # three commits, each spanning every day
        fg.insert(_frame(8_000, seed * 10 + i, i * 8_000, shift * i / 2))
    return fg


def _run(fs: fti.FeatureStore, name: str, monkeypatch: pytest.MonkeyPatch, sketches: bool) -> Any:
    monkeypatch.setenv("FTI_DRIFT_SKETCHES", "1" if sketches else "0")
    return {f["feature"]: f for f in fs.monitor(name).run()["features"]}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bins_within_the_bound_and_counts_exact(
    fs: fti.FeatureStore, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    fg = _group(fs, seed, shift=0.4)
    mon = fs.monitor("m", feature_group=fg, features=FEATURES, reference=REF, detection=DET)
    ctx = context_of(fs)
    kinds = drift_windows.kinds(ctx, mon.spec)
    now = datetime.now(UTC)
    [ref] = drift_windows.scans(ctx, mon.spec, REF, kinds, now)
    [det] = drift_windows.scans(ctx, mon.spec, DET, kinds, now)
    assert ref.sketch is not None
    assert det.sketch is not None
    assert len(ref.sketch.partial) == 2  # partial days at both edges are scanned
    edges = drift_windows.bin_edges(ref, ["x", "k"])
    assert len(edges["x"]) == 9
    for scan in (ref, det):
        sketched = drift_windows.window_counts(scan, edges)
        exact = drift_windows._scan_counts(scan, edges, scan.where, scan.params)
        for f in FEATURES:
            assert sketched[f].rows == exact[f].rows
            assert sketched[f].nulls == exact[f].nulls
        for f in ("c", "b"):
            assert sketched[f].counts == exact[f].counts
        for f in ("x", "k"):
            assert sketched[f].approx
            n = exact[f].present
            for b in range(len(edges[f]) + 1):
                share = sketched[f].counts.get(b, 0) / n
                assert abs(share - exact[f].counts.get(b, 0) / n) <= drift_sketches.BIN_ERROR
        scan.con.close()

    with_sketch = _run(fs, "m", monkeypatch, True)
    scanned = _run(fs, "m", monkeypatch, False)
    for f in FEATURES:
        for key in ("n_ref", "n_detect", "null_fraction_ref", "null_fraction_detect", "metric"):
            assert with_sketch[f][key] == scanned[f][key]
    for f in ("c", "b"):
        assert with_sketch[f]["value"] == pytest.approx(scanned[f]["value"], abs=1e-12)
        assert not with_sketch[f]["approx"]
    for f in ("x", "k"):
        assert with_sketch[f]["approx"]
        assert not scanned[f]["approx"]
        # observed, not a guarantee: PSI over ~10k values per window moves by < 0.02
        assert with_sketch[f]["value"] == pytest.approx(scanned[f]["value"], abs=0.02)
    assert with_sketch["x"]["drifted"] == scanned["x"]["drifted"]


def test_windows_the_profiles_cannot_describe_are_scanned(
    fs: fti.FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fg = _group(fs, 4)
    fs.monitor("m", feature_group=fg, features=FEATURES, reference=REF, detection=DET)
    assert _run(fs, "m", monkeypatch, True)["x"]["approx"]
    # rows deleted: the profiles describe rows written, so they would count these
    fg.delete_rows([{"id": i} for i in range(100)])
    after = _run(fs, "m", monkeypatch, True)
    assert after == _run(fs, "m", monkeypatch, False)
    assert not after["x"]["approx"]

    # ±inf: profiles count it with NaN, a scan does not
    g2 = fs.feature_group("inf", primary_key=["id"], event_time="t")
    df = _frame(3_000, 5, 0, 0.0)
    df.loc[[5, 6], "x"] = [np.inf, -np.inf]  # on whole days of the reference and detection
    df.loc[[5, 6], "t"] = [T0 + timedelta(days=3, hours=1), T0 + timedelta(days=8, hours=1)]
    g2.insert(df)
    fs.monitor("m2", feature_group=g2, features=["x"], reference=REF, detection=DET)
    assert not _run(fs, "m2", monkeypatch, True)["x"]["approx"]

    # a window of less than a day has no whole day to merge
    g3 = fs.feature_group("short", primary_key=["id"], event_time="t")
    g3.insert(_frame(3_000, 6, 0, 0.0))
    hours = fti.window(start=T0 + timedelta(hours=1), end=T0 + timedelta(hours=20))
    fs.monitor("m3", feature_group=g3, features=["x"], reference=hours, detection=DET)
    assert not _run(fs, "m3", monkeypatch, True)["x"]["approx"]
