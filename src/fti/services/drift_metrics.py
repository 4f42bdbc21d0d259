"""Drift metrics between a reference and a detection distribution (pure numpy; scipy, imported
lazily, only for the p-values of KS and chi-square and for Wasserstein).

Binned metrics take two count vectors over the same bins (numeric features: the reference's
decile bins; categorical features: the union of the categories seen).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from fti.errors import MissingDependencyError

__all__ = [
    "PSI_EPSILON",
    "chi2_pvalue",
    "hellinger",
    "js_distance",
    "ks_pvalue",
    "mean_shift",
    "psi",
    "wasserstein",
]

#: Bin proportions are floored at this value in PSI, so an empty bin in one window adds a
#: large but finite term instead of infinity (the usual convention; 1e-4 ~ one row in 10,000).
PSI_EPSILON = 1e-4


def _scipy_stats(metric: str) -> Any:
    """``scipy.stats``, imported on first use (it comes with ``fti[ml]``, via scikit-learn)."""
    try:
        import scipy.stats
    except ImportError:
        raise MissingDependencyError("scipy", "ml", f"the {metric!r} drift metric") from None
    return scipy.stats


def _proportions(counts: Sequence[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(counts, dtype=np.float64)
    total = a.sum()
    return a / total if total > 0 else a


def psi(reference: Sequence[float], detection: Sequence[float]) -> float:
    """Population stability index: ``sum((q - p) * ln(q / p))`` over bins, with ``p``
    (reference) and ``q`` (detection) proportions floored at :data:`PSI_EPSILON`."""
    p = np.maximum(_proportions(reference), PSI_EPSILON)
    q = np.maximum(_proportions(detection), PSI_EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(reference: Sequence[float], detection: Sequence[float]) -> float:
    """Jensen-Shannon distance, base 2 (0 = same distribution, 1 = disjoint supports)."""
    p = _proportions(reference)
    q = _proportions(detection)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / m[mask])))

    return math.sqrt(max((kl(p) + kl(q)) / 2, 0.0))


def hellinger(reference: Sequence[float], detection: Sequence[float]) -> float:
    """Hellinger distance (0 = same, 1 = disjoint)."""
    p = _proportions(reference)
    q = _proportions(detection)
    return float(math.sqrt(max(0.5 * float(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)), 0.0)))


def chi2_pvalue(reference: Sequence[float], detection: Sequence[float]) -> float:
    """p-value of the chi-square test of homogeneity of two count vectors (1.0 when fewer than
    two categories occur: nothing to compare)."""
    table = np.array([reference, detection], dtype=np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0
    return float(_scipy_stats("chi2").chi2_contingency(table, correction=False).pvalue)


def ks_pvalue(reference: np.ndarray, detection: np.ndarray) -> float:
    """p-value of the two-sample Kolmogorov-Smirnov test."""
    return float(_scipy_stats("ks").ks_2samp(reference, detection).pvalue)


def wasserstein(reference: np.ndarray, detection: np.ndarray) -> float:
    """Earth mover's distance between the two samples, divided by the reference's standard
    deviation so one threshold fits features of any scale."""
    d = float(_scipy_stats("wasserstein").wasserstein_distance(reference, detection))
    std = float(np.std(reference))
    return d / std if std > 0 else (0.0 if d == 0 else math.inf)


def mean_shift(ref_mean: float, ref_std: float, det_mean: float) -> float:
    """``|mean_detection - mean_reference|`` in reference standard deviations."""
    d = abs(det_mean - ref_mean)
    return d / ref_std if ref_std > 0 else (0.0 if d == 0 else math.inf)
