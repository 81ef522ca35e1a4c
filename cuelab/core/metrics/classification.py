"""Classification statistics: UAR/WA, recalls, confusion, and their uncertainty.

Everything here is plain numpy/scipy over in-memory arrays, so the batch
runner, the report writer and the GUI compute the same numbers. Conventions
that change results are fixed here once:

* A prediction that is ``None``, NaN (an empty CSV cell read by pandas) or the
  string ``"unparsed"`` is *unparsed*: it is counted, and it is always wrong.
  It is never replaced by a guess.
* UAR is the mean recall over the classes present in the reference. A class
  the model predicts but the reference never contains does not enter the
  average (scikit-learn's ``recall_score(average="macro")`` would add it as a
  zero); this equals ``balanced_accuracy_score``.
* Confidence intervals are percentile bootstrap intervals; with a speaker
  column the speakers are resampled (all of a speaker's items together),
  because items of one speaker are not independent.

Paired tests (exact McNemar, Holm), Spearman's rho over a corruption grid and
the mean ± std over seeds live here too. WER is in :mod:`cuelab.core.metrics.text`,
AP and mAP in :mod:`cuelab.core.metrics.tags`; :mod:`cuelab.core.metrics` hands
every name on, so callers import metrics from the package.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from cuelab.core.metrics.base import UNPARSED, MetricsError, is_unparsed

__all__ = [
    "UNPARSED",
    "ClassificationScores",
    "ConfidenceInterval",
    "McNemarResult",
    "MetricsError",
    "SeedAggregate",
    "SpearmanResult",
    "aggregate_seeds",
    "bootstrap_ci",
    "classification_scores",
    "confusion_matrix",
    "correct_mask",
    "count_unparsed",
    "encode_labels",
    "holm",
    "is_unparsed",
    "macc",
    "mcnemar_exact",
    "per_class_recall",
    "spearman",
    "uar",
    "weighted_accuracy",
]


class ConfidenceInterval(NamedTuple):
    """A point estimate with its bootstrap interval; unpacks as ``(point, low, high)``."""

    point: float
    low: float
    high: float


class McNemarResult(NamedTuple):
    """Discordant pair counts of two paired conditions and the exact two-sided p-value."""

    n01: int
    n10: int
    p_value: float


class SpearmanResult(NamedTuple):
    """Spearman's rank correlation and its two-sided p-value."""

    rho: float
    p_value: float


class SeedAggregate(NamedTuple):
    """A metric over several seeds: mean, t-interval for the mean, sample std, count."""

    mean: float
    ci_low: float
    ci_high: float
    std: float
    n: int


@dataclass(frozen=True)
class ClassificationScores:
    """The per-condition numbers of ``summary.csv``."""

    n: int
    uar: float
    wa: float
    unparsed: int
    recalls: dict[Hashable, float]


# --------------------------------------------------------------------------- labels


def count_unparsed(y_pred: Sequence[object]) -> int:
    """Number of unparsed predictions."""
    return sum(is_unparsed(p) for p in y_pred)


def _check_pair(y_true: Sequence[Any], y_pred: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """Return both as lists after checking lengths, emptiness and missing references."""
    t, p = list(y_true), list(y_pred)
    if len(t) != len(p):
        raise MetricsError(f"reference has {len(t)} items but predictions have {len(p)}")
    if not t:
        raise MetricsError("no items to score (empty reference and predictions)")
    missing = sum(is_unparsed(x) for x in t)
    if missing:
        raise MetricsError(f"reference labels: {missing} of {len(t)} are missing or 'unparsed'")
    return t, p


def _encode_arrays(y_true: Any, y_pred: Any) -> tuple[list[Any], np.ndarray, np.ndarray] | None:
    """Vectorised :func:`_encode` for string or integer numpy arrays (None otherwise).

    The bootstrap calls a metric a thousand times; with arrays from
    :func:`encode_labels` this path keeps each call in numpy.
    """
    if not (isinstance(y_true, np.ndarray) and isinstance(y_pred, np.ndarray)):
        return None
    kinds = "iuU"
    if y_true.dtype.kind not in kinds or y_pred.dtype.kind != y_true.dtype.kind:
        return None
    if y_true.ndim != 1 or y_true.shape != y_pred.shape or y_true.size == 0:
        return None  # the general path raises the right error
    if y_true.dtype.kind == "U" and np.any(y_true == UNPARSED):
        return None
    classes, t_idx = np.unique(y_true, return_inverse=True)
    pos = np.clip(np.searchsorted(classes, y_pred), 0, classes.size - 1)
    p_idx = np.where(classes[pos] == y_pred, pos, -1)
    return classes.tolist(), t_idx.astype(np.int64), p_idx.astype(np.int64)


def encode_labels(y_true: Sequence[Any], y_pred: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of reference and prediction (-1 for unparsed or unknown predictions).

    Metrics give the same values on the codes as on the labels, only faster:
    pass the codes to :func:`bootstrap_ci`.
    """
    _, t_idx, p_idx = _encode(y_true, y_pred)
    return t_idx, p_idx


def _encode(
    y_true: Sequence[Any], y_pred: Sequence[Any]
) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """Reference classes (sorted) and integer codes; predictions outside them get -1."""
    fast = _encode_arrays(y_true, y_pred)
    if fast is not None:
        return fast
    t, p = _check_pair(y_true, y_pred)
    try:
        classes = sorted(set(t))
    except TypeError as exc:
        raise MetricsError(f"reference labels are of mixed, unorderable types ({exc})") from exc
    code = {c: i for i, c in enumerate(classes)}
    t_idx = np.fromiter((code[x] for x in t), dtype=np.int64, count=len(t))
    p_idx = np.fromiter(
        (-1 if is_unparsed(x) else code.get(x, -1) for x in p), dtype=np.int64, count=len(p)
    )
    return classes, t_idx, p_idx


def correct_mask(y_true: Sequence[Any], y_pred: Sequence[Any]) -> np.ndarray:
    """Boolean array: item i is right (unparsed predictions are wrong)."""
    _, t_idx, p_idx = _encode(y_true, y_pred)
    return np.asarray(t_idx == p_idx)


def _recalls(y_true: Sequence[Any], y_pred: Sequence[Any]) -> tuple[list[Any], np.ndarray]:
    classes, t_idx, p_idx = _encode(y_true, y_pred)
    k = len(classes)
    support = np.bincount(t_idx, minlength=k)
    hits = np.bincount(t_idx[t_idx == p_idx], minlength=k)
    return classes, hits / support


def uar(y_true: Sequence[Any], y_pred: Sequence[Any]) -> float:
    """Unweighted average recall: mean recall over the classes in the reference.

    Unlike accuracy it does not reward predicting the majority class, which
    matters on the skewed emotion corpora (FAU-Aibo, IEMOCAP).
    """
    return float(_recalls(y_true, y_pred)[1].mean())


def macc(y_true: Sequence[Any], y_pred: Sequence[Any]) -> float:
    """Macro accuracy over acoustic scenes: the mean of per-scene accuracies.

    Per-scene accuracy is the share of a scene's clips labelled with that
    scene, i.e. its recall, so mACC is numerically the same as :func:`uar`.
    """
    return uar(y_true, y_pred)


def weighted_accuracy(y_true: Sequence[Any], y_pred: Sequence[Any]) -> float:
    """WA: plain accuracy over items (the emotion literature's "weighted accuracy")."""
    return float(correct_mask(y_true, y_pred).mean())


def per_class_recall(
    y_true: Sequence[Any], y_pred: Sequence[Any], labels: Sequence[Hashable] | None = None
) -> dict[Hashable, float]:
    """Recall of each class, in ``labels`` order (default: sorted reference classes).

    A class of ``labels`` absent from the reference gets NaN: its recall is
    undefined, not zero.
    """
    classes, rec = _recalls(y_true, y_pred)
    found = dict(zip(classes, rec.tolist()))
    order = classes if labels is None else list(labels)
    return {c: float(found.get(c, math.nan)) for c in order}


def confusion_matrix(
    y_true: Sequence[Any],
    y_pred: Sequence[Any],
    labels: Sequence[Hashable],
    *,
    include_other: bool = True,
) -> np.ndarray:
    """Counts with rows = reference label, columns = predicted label, in ``labels`` order.

    Args:
        y_true: reference labels; each must be one of ``labels``.
        y_pred: predictions.
        labels: the class order of rows and columns.
        include_other: add a last column counting predictions outside
            ``labels`` (unparsed ones included), so every row sums to the
            class's number of items. Without it the matrix equals
            scikit-learn's ``confusion_matrix(y_true, y_pred, labels=labels)``.

    Returns:
        An int64 array of shape (k, k + 1) or (k, k).
    """
    t, p = _check_pair(y_true, y_pred)
    code = {c: i for i, c in enumerate(labels)}
    if len(code) != len(list(labels)):
        raise MetricsError("confusion matrix labels contain duplicates")
    unknown = sorted({str(x) for x in t if x not in code})
    if unknown:
        raise MetricsError(f"reference labels not in the label order: {', '.join(unknown)}")
    k = len(code)
    mat = np.zeros((k, k + 1), dtype=np.int64)
    for ti, pi in zip(t, p):
        mat[code[ti], k if is_unparsed(pi) else code.get(pi, k)] += 1
    return mat if include_other else mat[:, :k]


def classification_scores(y_true: Sequence[Any], y_pred: Sequence[Any]) -> ClassificationScores:
    """n, UAR, WA, unparsed count and per-class recalls in one pass."""
    classes, t_idx, p_idx = _encode(y_true, y_pred)
    k = len(classes)
    rec = np.bincount(t_idx[t_idx == p_idx], minlength=k) / np.bincount(t_idx, minlength=k)
    return ClassificationScores(
        n=len(t_idx),
        uar=float(rec.mean()),
        wa=float(np.mean(t_idx == p_idx)),
        unparsed=count_unparsed(list(y_pred)),
        recalls=dict(zip(classes, rec.tolist())),
    )


# --------------------------------------------------------------------------- bootstrap


def _cluster_sampler(
    groups: Sequence[Any] | None, n: int
) -> Callable[[np.random.Generator], np.ndarray]:
    """Return a function drawing one resample's item indices (whole clusters at a time)."""
    if groups is None:
        return lambda rng: rng.integers(0, n, size=n)
    g = list(groups)
    if len(g) != n:
        raise MetricsError(f"speaker column has {len(g)} entries but the data have {n}")
    if any(is_unparsed(x) for x in g):
        raise MetricsError("speaker column has missing values")
    codes = {c: i for i, c in enumerate(dict.fromkeys(g))}
    g_idx = np.fromiter((codes[x] for x in g), dtype=np.int64, count=n)
    order = np.argsort(g_idx, kind="stable")
    sizes = np.bincount(g_idx)
    starts = np.cumsum(sizes) - sizes
    n_groups = len(sizes)

    def draw(rng: np.random.Generator) -> np.ndarray:
        pick = rng.integers(0, n_groups, size=n_groups)
        size_p = sizes[pick]
        offsets = np.repeat(np.cumsum(size_p) - size_p, size_p)
        within = np.arange(int(size_p.sum())) - offsets
        return order[np.repeat(starts[pick], size_p) + within]

    return draw


def bootstrap_ci(
    metric: Callable[..., float],
    *arrays: Sequence[Any] | np.ndarray,
    groups: Sequence[Any] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> ConfidenceInterval:
    """Percentile bootstrap interval of ``metric(*arrays)``.

    Args:
        metric: called with the resampled arrays (numpy arrays indexed along
            their first axis), e.g. :func:`uar` with ``(y_true, y_pred)``.
        *arrays: parallel per-item data of equal length.
        groups: cluster id per item (the speaker). When given, clusters are
            drawn with replacement and bring all their items; when None, items
            are drawn independently (the plain bootstrap).
        n_resamples: number of bootstrap replicates.
        seed: seed of ``np.random.default_rng``, so reports are reproducible.
        confidence: two-sided coverage of the interval.

    Returns:
        ``(point, low, high)``: the metric on all data and the percentile
        interval of the replicates. Replicates where the metric is NaN (e.g.
        a WER with no reference words) are left out; all NaN gives NaN bounds.
    """
    if not arrays:
        raise MetricsError("bootstrap needs at least one data array")
    data = [np.asarray(a) if not isinstance(a, np.ndarray) else a for a in arrays]
    n = len(data[0])
    if n == 0:
        raise MetricsError("bootstrap needs at least one item")
    if any(len(a) != n for a in data):
        raise MetricsError(f"bootstrap arrays differ in length: {[len(a) for a in data]}")
    if n_resamples < 1:
        raise MetricsError(f"n_resamples must be at least 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise MetricsError(f"confidence must lie in (0, 1), got {confidence}")
    draw = _cluster_sampler(groups, n)
    rng = np.random.default_rng(seed)
    point = float(metric(*data))
    reps = np.empty(n_resamples)
    for r in range(n_resamples):
        idx = draw(rng)
        reps[r] = metric(*(a[idx] for a in data))
    reps = reps[~np.isnan(reps)]
    if reps.size == 0:
        return ConfidenceInterval(point, math.nan, math.nan)
    alpha = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(reps, [alpha, 100.0 - alpha])
    return ConfidenceInterval(point, float(low), float(high))


# --------------------------------------------------------------------------- tests


def mcnemar_exact(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> McNemarResult:
    """Exact McNemar test of two conditions scored on the same items.

    ``n01`` counts items condition A got wrong and B got right; ``n10`` the
    reverse. Under the null both are Binomial(n01 + n10, 1/2); the two-sided
    exact p-value is ``binomtest(min(n01, n10), n01 + n10, 0.5)``, and 1 when
    there are no discordant pairs (the conditions never disagree).
    """
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise MetricsError(f"paired results differ in shape: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise MetricsError("McNemar test needs at least one paired item")
    n01 = int(np.count_nonzero(~a & b))
    n10 = int(np.count_nonzero(a & ~b))
    if n01 + n10 == 0:
        return McNemarResult(0, 0, 1.0)
    from scipy.stats import binomtest

    p = binomtest(min(n01, n10), n01 + n10, 0.5).pvalue
    return McNemarResult(n01, n10, float(min(1.0, p)))


def spearman(levels: Sequence[float], values: Sequence[float]) -> SpearmanResult:
    """Spearman's ρ between a corruption grid and a metric (e.g. UAR per level).

    Several values per level (seeds) may be passed as repeated levels. With a
    constant input ρ is undefined and both fields are NaN.
    """
    x = np.asarray(levels, dtype=float)
    y = np.asarray(values, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise MetricsError(f"levels and values differ in shape: {x.shape} vs {y.shape}")
    if x.size < 3:
        raise MetricsError(f"Spearman correlation needs at least 3 points, got {x.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise MetricsError("Spearman correlation got NaN or infinite values")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return SpearmanResult(math.nan, math.nan)
    from scipy.stats import spearmanr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = spearmanr(x, y)
    return SpearmanResult(float(res.statistic), float(res.pvalue))


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1), input order."""
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise MetricsError(f"p-values must be a flat list, got shape {p.shape}")
    if p.size and (np.any(np.isnan(p)) or p.min() < 0.0 or p.max() > 1.0):
        raise MetricsError("p-values must lie in [0, 1] and not be NaN")
    m = p.size
    order = np.argsort(p, kind="stable")
    adj_sorted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj_sorted
    return out


def aggregate_seeds(values: Sequence[float], confidence: float = 0.95) -> SeedAggregate:
    """Mean over seeds with a Student-t interval for the mean, and the sample std.

    The t-interval (``mean ± t_{n-1} · s / √n``) suits the handful of seeds a
    run has, where a bootstrap over seeds would be too coarse. With one seed
    the spread is unknown: std and the interval are NaN.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size == 0:
        raise MetricsError("seed aggregation needs at least one value")
    if not np.all(np.isfinite(v)):
        raise MetricsError("seed aggregation got NaN or infinite values")
    mean = float(v.mean())
    if v.size == 1:
        return SeedAggregate(mean, math.nan, math.nan, math.nan, 1)
    from scipy.stats import t as student_t

    std = float(v.std(ddof=1))
    half = float(student_t.ppf(0.5 + confidence / 2.0, v.size - 1)) * std / math.sqrt(v.size)
    return SeedAggregate(mean, mean - half, mean + half, std, int(v.size))
