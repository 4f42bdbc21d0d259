"""Transformations and column statistics, each figure next to a baseline from the same run.

    .venv/bin/python benchmarks/transformations.py [--rows 1000000] [--repeat 3]

On N rows (3 float columns, one 30-category string column, one int column):

- fit + apply ``standard_scaler`` x3 and ``one_hot_encoder`` (batch path) vs scikit-learn's
  ``StandardScaler`` + ``OneHotEncoder(handle_unknown="ignore")`` fit_transform on the same data
  as numpy/pandas (when scikit-learn is installed) and vs hand-written numpy;
- the one-row path (``apply_transformations_row``, online) vs sklearn ``transform`` of one row;
- ``statistics.describe`` vs pandas ``DataFrame.describe()`` + ``nunique()``.

Medians over ``--repeat`` runs; the machine may be shared, so read ratios rather than absolutes.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

import fti
from fti.definitions.transformations import (
    apply_transformations,
    apply_transformations_row,
    fit_transformations,
)
from fti.services.statistics import describe


def median_seconds(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def row(label: str, ours: float, base: float, unit: str = "s") -> None:
    scale = 1e6 if unit == "us" else 1.0
    print(
        f"{label:<44} fti {ours * scale:10.3f} {unit}   baseline {base * scale:10.3f} {unit}   "
        f"ratio {ours / base:6.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n, repeat = args.rows, args.repeat
    rng = np.random.default_rng(0)
    floats = {f"x{i}": rng.normal(i, 1 + i, n) for i in range(3)}
    cats = rng.integers(0, 30, n).astype(str)
    table = pa.table({**floats, "c": pa.array(cats), "k": rng.integers(0, 1000, n)})
    ts = {**{c: fti.standard_scaler() for c in floats}, "c": fti.one_hot_encoder()}
    print(f"rows={n:,} repeat={repeat}")

    def ours() -> pa.Table:
        return apply_transformations(ts, fit_transformations(ts, table), table)

    def numpy_baseline() -> list[np.ndarray]:
        out = [(v - v.mean()) / v.std() for v in floats.values()]
        uniq, codes = np.unique(cats, return_inverse=True)
        onehot = np.zeros((len(uniq), n), dtype=np.int8)
        onehot[codes, np.arange(n)] = 1
        return [*out, *onehot]

    row(
        "fit+apply 3 scalers + one-hot (numpy)",
        median_seconds(ours, repeat),
        median_seconds(numpy_baseline, repeat),
    )

    fitted = fit_transformations(ts, table)
    one = {**dict.fromkeys(floats, 0.5), "c": "7", "k": 1}
    k = 20_000

    def ours_rows() -> None:
        for _ in range(k):
            apply_transformations_row(ts, fitted, one)

    try:
        import pandas as pd
        from sklearn.compose import ColumnTransformer
        from sklearn.preprocessing import OneHotEncoder, StandardScaler
    except ImportError:
        print("scikit-learn not installed: skipping the sklearn baselines")
    else:
        frame = pd.DataFrame({**floats, "c": cats})
        ct = ColumnTransformer(
            [
                ("num", StandardScaler(), list(floats)),
                ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["c"]),
            ]
        )
        row(
            "fit+apply 3 scalers + one-hot (sklearn)",
            median_seconds(ours, repeat),
            median_seconds(lambda: ct.fit_transform(frame), repeat),
        )
        ct.fit(frame)
        one_frame = pd.DataFrame([{c: v for c, v in one.items() if c != "k"}])
        kk = 2_000
        base = median_seconds(lambda: [ct.transform(one_frame) for _ in range(kk)], repeat) / kk
        row(
            "one row, online path (sklearn transform)",
            median_seconds(ours_rows, repeat) / k,
            base,
            "us",
        )

    def describe_baseline() -> None:
        frame = table.to_pandas()
        frame.describe()
        frame.nunique()

    row(
        "describe (pandas describe + nunique)",
        median_seconds(lambda: describe(table), repeat),
        median_seconds(describe_baseline, repeat),
    )


if __name__ == "__main__":
    main()
