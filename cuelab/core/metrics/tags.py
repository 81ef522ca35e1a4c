"""Average precision and mAP for multi-label event tagging.

Computed as scikit-learn does (no interpolation), except that events with no
positive item are left out of mAP. :mod:`cuelab.core.metrics` re-exports
everything here; import from there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from cuelab.core.metrics.base import MetricsError

__all__ = ["average_precision", "mean_average_precision"]


def average_precision(
    y_true: Sequence[int] | np.ndarray, y_score: Sequence[float] | np.ndarray
) -> float:
    """Average precision of one class, as scikit-learn's ``average_precision_score``.

    AP = Σ (R_i − R_{i−1}) P_i over the distinct score thresholds (ties
    share one threshold, no interpolation). NaN when there are no positives.
    """
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(y_score, dtype=float)
    if y.shape != s.shape or y.ndim != 1:
        raise MetricsError(f"labels and scores differ in shape: {y.shape} vs {s.shape}")
    if y.size == 0:
        raise MetricsError("average precision needs at least one item")
    if not np.all(np.isfinite(s)):
        raise MetricsError("scores contain NaN or infinite values")
    if not y.any():
        return math.nan
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]
    tps = np.cumsum(y)[last]
    precision = tps / (last + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def mean_average_precision(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """mAP: macro average of per-event AP over a (items × events) score matrix.

    Events with no positive item are left out of the average (their AP is
    undefined; scikit-learn would count them as 0, which depends on how many
    absent events a label set happens to list).

    Raises:
        MetricsError: on shape mismatch, or when no event has a positive.
    """
    y = np.asarray(y_true)
    s = np.asarray(y_score, dtype=float)
    if y.ndim != 2 or y.shape != s.shape:
        raise MetricsError(
            f"mAP needs matching 2-D label and score matrices, got {y.shape} vs {s.shape}"
        )
    aps = np.array([average_precision(y[:, j], s[:, j]) for j in range(y.shape[1])])
    if aps.size == 0 or np.all(np.isnan(aps)):
        raise MetricsError("no event has a positive item; mAP is undefined")
    return float(np.nanmean(aps))
