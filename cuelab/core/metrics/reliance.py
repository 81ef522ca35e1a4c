"""Paired differences, reliance on tokens and calibration of label probabilities.

These are the quantities of the analysis section (README "Analysis",
docs/analysis.md): the paired speaker-bootstrap Δ UAR, the majority vote that
pools a seeded condition's predictions, swap rate / Jensen–Shannon distance /
helped / hurt between two conditions, the prediction-frequency baseline
(LISTEN), the token-reliance index, and ECE / Brier / NLL with batch and
contextual calibration. Everything is plain numpy/scipy over in-memory arrays.

Probabilities are rows of an ``(n, K)`` array in label order; a row of NaN is
an answer without probabilities (generated and parsed) and makes the
probability-based numbers of its group undefined (NaN).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from cuelab.core.metrics.base import MetricsError, is_unparsed
from cuelab.core.metrics.classification import ConfidenceInterval

__all__ = [
    "ECE_BINS",
    "NLL_FLOOR",
    "batch_calibrate",
    "brier",
    "contextual_calibrate",
    "ece",
    "frequency_baseline",
    "js_distances",
    "majority_vote",
    "nll",
    "paired_delta",
    "reliance_index",
    "swap_counts",
]

#: Equal-width bins of the top-label probability in the ECE.
ECE_BINS = 15
#: The probability of the true label is floored here before its log (a 0 would give inf).
NLL_FLOOR = 1e-12


def _uar(t: np.ndarray, p: np.ndarray) -> float:
    """UAR on integer codes (reference in [0, K), predictions -1 when unparsed or unknown).

    The same number as :func:`uar`, without re-encoding the labels: the
    bootstraps here call it thousands of times.
    """
    k = int(t.max()) + 1
    support = np.bincount(t, minlength=k)
    hits = np.bincount(t[t == p], minlength=k)
    present = support > 0
    return float(np.mean(hits[present] / support[present]))


def _replicate_uars(
    t: np.ndarray,
    preds: Sequence[np.ndarray],
    groups: Sequence[Any] | None,
    n_resamples: int,
    seed: int,
) -> np.ndarray:
    """UAR of each prediction list on every cluster-bootstrap replicate, shape (B, len(preds)).

    The replicates are :func:`~cuelab.core.metrics.classification.bootstrap_ci`'s
    (same sampler order, same generator calls), but each is a vector of cluster
    counts: a replicate's per-class support and hits are those counts times the
    per-cluster tables, so all replicates cost two matrix products per list.
    """
    if n_resamples < 1:
        raise MetricsError(f"n_resamples must be at least 1, got {n_resamples}")
    n = t.size
    if groups is None:
        g_idx = np.arange(n)
    else:
        g = list(groups)
        if len(g) != n:
            raise MetricsError(f"speaker column has {len(g)} entries but the data have {n}")
        if any(is_unparsed(x) for x in g):
            raise MetricsError("speaker column has missing values")
        first = {c: i for i, c in enumerate(dict.fromkeys(g))}
        g_idx = np.array([first[x] for x in g], dtype=np.int64)
    n_groups = int(g_idx.max()) + 1
    rng = np.random.default_rng(seed)
    counts = np.empty((n_resamples, n_groups))
    for r in range(n_resamples):
        counts[r] = np.bincount(rng.integers(0, n_groups, size=n_groups), minlength=n_groups)
    k = int(t.max()) + 1
    support = np.zeros((n_groups, k))
    np.add.at(support, (g_idx, t), 1.0)
    sup = counts @ support
    out = np.empty((n_resamples, len(preds)))
    for j, p in enumerate(preds):
        hit_table = np.zeros((n_groups, k))
        right = t == p
        np.add.at(hit_table, (g_idx[right], t[right]), 1.0)
        hits = counts @ hit_table
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = np.where(sup > 0, hits / sup, np.nan)
        out[:, j] = np.nanmean(recall, axis=1)
    return out


def _interval(point: float, reps: np.ndarray) -> tuple[ConfidenceInterval, int]:
    """Percentile 95 % interval of the defined (non-NaN) replicates, and their number."""
    kept = reps[~np.isnan(reps)]
    if kept.size == 0:
        return ConfidenceInterval(point, math.nan, math.nan), 0
    low, high = np.percentile(kept, [2.5, 97.5])
    return ConfidenceInterval(point, float(low), float(high)), int(kept.size)


def _codes(y_true: Sequence[Any], *preds: Sequence[Any]) -> tuple[np.ndarray, ...]:
    """Integer codes of the reference and of each prediction list, one class order for all."""
    t = list(y_true)
    if any(len(p) != len(t) for p in preds):
        raise MetricsError("paired predictions differ in length from the reference")
    if not t:
        raise MetricsError("no items to compare")
    classes = sorted(set(t))
    code = {c: i for i, c in enumerate(classes)}
    out = [np.array([code[x] for x in t], dtype=np.int64)]
    for p in preds:
        out.append(np.array([-1 if is_unparsed(x) else code.get(x, -1) for x in p], dtype=np.int64))
    return tuple(out)


def paired_delta(
    y_true: Sequence[Any],
    base: Sequence[Any],
    others: Sequence[Sequence[Any]],
    *,
    groups: Sequence[Any] | None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> ConfidenceInterval:
    """Δ = mean UAR of ``others`` minus UAR of ``base``, with a *paired* cluster bootstrap.

    All lists are over the same items in the same order. Each replicate
    resamples the clusters (speakers) once and takes every UAR on that same
    replicate, so the interval reflects the paired design. ``others`` holds one
    prediction list per seed (a seed-free condition passes one): Δ of a seeded
    condition is the mean over its seeds minus the base.
    """
    if not others:
        raise MetricsError("paired delta needs at least one comparison condition")
    t, b, *os = _codes(y_true, base, *others)
    point = float(np.mean([_uar(t, o) for o in os]) - _uar(t, b))
    reps = _replicate_uars(t, [b, *os], groups, n_resamples, seed)
    return _interval(point, reps[:, 1:].mean(axis=1) - reps[:, 0])[0]


def majority_vote(per_seed: Sequence[Sequence[Any]]) -> list[Any]:
    """Per item, the most frequent prediction over seeds (unparsed counts as an answer).

    Tie rule: among the tied answers, the one given by the lowest seed (the
    first list) wins; an exact, order-free rule given the seeds' order.
    """
    if not per_seed:
        raise MetricsError("majority vote needs at least one seed")
    n = len(per_seed[0])
    if any(len(p) != n for p in per_seed):
        raise MetricsError("seeds differ in their number of items")
    out = []
    for i in range(n):
        answers = [None if is_unparsed(p[i]) else p[i] for p in per_seed]
        counts: dict[Any, int] = {}
        for a in answers:
            counts[a] = counts.get(a, 0) + 1
        top = max(counts.values())
        out.append(next(a for a in answers if counts[a] == top))
    return out


def swap_counts(
    y_true: Sequence[Any], ref: Sequence[Any], other: Sequence[Any]
) -> tuple[float, int, int]:
    """(swap rate, helped, hurt) of ``other`` against ``ref`` on paired items.

    swap rate: share of items whose predicted label differs (an unparsed answer
    is its own value); helped: wrong under ``ref``, right under ``other``;
    hurt: right under ``ref``, wrong under ``other``.
    """
    t, a, b = _codes(y_true, ref, other)
    swaps = float(np.mean(a != b))
    helped = int(np.count_nonzero((a != t) & (b == t)))
    hurt = int(np.count_nonzero((a == t) & (b != t)))
    return swaps, helped, hurt


def _normalised(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=float)
    if p.ndim != 2 or p.shape[1] == 0:
        raise MetricsError(f"probabilities must be an (n, K) array, got shape {p.shape}")
    total = p.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return p / total


def js_distances(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen–Shannon distance (base 2, in [0, 1]) between paired rows of two distributions."""
    a, b = _normalised(p), _normalised(q)
    if a.shape != b.shape:
        raise MetricsError(f"distributions differ in shape: {a.shape} vs {b.shape}")
    m = (a + b) / 2.0

    def kl(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            terms = np.where(x > 0, x * np.log2(x / y), 0.0)
        return terms.sum(axis=1)

    div = np.clip((kl(a, m) + kl(b, m)) / 2.0, 0.0, 1.0)
    return np.sqrt(div)


def frequency_baseline(y_true: Sequence[Any], y_pred: Sequence[Any]) -> tuple[float, float]:
    """(UAR, WA) expected of a guesser that draws labels with the model's own frequencies.

    LISTEN (2026) compares a model with this baseline. With q_c the share of
    the model's answers that are class c (unparsed and out-of-set answers
    count in the denominator and are never right) and π_c the reference share,
    the guesser's recall of c is q_c, so UAR = mean_c q_c over the reference
    classes and WA = Σ_c π_c q_c.
    """
    t, p = _codes(y_true, y_pred)
    k = int(t.max()) + 1
    q = np.bincount(p[p >= 0], minlength=k)[:k] / p.size
    pi = np.bincount(t, minlength=k) / t.size
    return float(q.mean()), float(np.dot(pi, q))


def reliance_index(
    y_true: Sequence[Any],
    audio_only: Sequence[Any],
    correct: Sequence[Any],
    conflict: Sequence[Any],
    *,
    groups: Sequence[Any] | None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[ConfidenceInterval, float, float, int]:
    """Token-reliance index TRI = (UAR_correct − UAR_conflict) / (UAR_correct − UAR_audio-only).

    Returns ``((tri, low, high), gain, loss, kept)``: the index with its paired
    speaker-bootstrap interval, the gain of ``correct`` over audio-only, the
    loss of ``conflict`` against ``correct``, and the number of replicates
    where the index was defined (a gain ≤ 0 leaves it undefined: NaN).
    """
    t, a, c, f = _codes(y_true, audio_only, correct, conflict)
    u_c, u_a, u_f = _uar(t, c), _uar(t, a), _uar(t, f)
    point = (u_c - u_f) / (u_c - u_a) if u_c - u_a > 0 else math.nan
    reps = _replicate_uars(t, [a, c, f], groups, n_resamples, seed)
    gain = reps[:, 1] - reps[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        index = np.where(gain > 0, (reps[:, 1] - reps[:, 2]) / gain, np.nan)
    ci, kept = _interval(point, index)
    return ci, u_c - u_a, u_c - u_f, kept


# --------------------------------------------------------------------------- calibration


def _truth_index(y_true: Sequence[Any], labels: Sequence[Any]) -> np.ndarray:
    code = {c: i for i, c in enumerate(labels)}
    missing = sorted({str(y) for y in y_true if y not in code})
    if missing:
        raise MetricsError(f"reference labels not in the label order: {', '.join(missing)}")
    return np.array([code[y] for y in y_true], dtype=np.int64)


def ece(probs: np.ndarray, y_true: Sequence[Any], labels: Sequence[Any]) -> float:
    """Top-label expected calibration error over ``ECE_BINS`` equal-width bins.

    ECE = Σ_b (n_b / n) · |acc_b − conf_b|, where conf is the highest
    probability of a row and acc whether its label is the reference; bins are
    (0, 1/15], (1/15, 2/15], ... (Guo et al., 2017). NaN when a row has no
    probabilities.
    """
    p = _normalised(probs)
    if np.isnan(p).any():
        return math.nan
    t = _truth_index(y_true, labels)
    conf = p.max(axis=1)
    hit = (p.argmax(axis=1) == t).astype(float)
    bins = np.clip(np.ceil(conf * ECE_BINS).astype(int) - 1, 0, ECE_BINS - 1)
    total = 0.0
    for b in range(ECE_BINS):
        inside = bins == b
        if inside.any():
            total += inside.sum() / len(t) * abs(hit[inside].mean() - conf[inside].mean())
    return float(total)


def brier(probs: np.ndarray, y_true: Sequence[Any], labels: Sequence[Any]) -> float:
    """Multi-class Brier score: mean over items of Σ_c (p_c − 1[c = y])², in [0, 2]."""
    p = _normalised(probs)
    onehot = np.eye(p.shape[1])[_truth_index(y_true, labels)]
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def nll(probs: np.ndarray, y_true: Sequence[Any], labels: Sequence[Any]) -> float:
    """Mean negative log-likelihood (natural log) of the reference label, floored at ``NLL_FLOOR``."""
    p = _normalised(probs)
    t = _truth_index(y_true, labels)
    return float(np.mean(-np.log(np.maximum(p[np.arange(len(t)), t], NLL_FLOOR))))


def batch_calibrate(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batch calibration (Zhou et al., ICLR 2024): divide by the mean distribution, renormalise.

    Returns the calibrated rows and the mean distribution used. A label whose
    mean probability is 0 keeps probability 0 (there is nothing to divide).
    """
    p = _normalised(probs)
    prior = p.mean(axis=0)
    return _normalised(_divide(p, prior[None, :])), prior


def contextual_calibrate(probs: np.ndarray, content_free: np.ndarray) -> np.ndarray:
    """Contextual calibration (Zhao et al., 2021): divide by the content-free distribution.

    ``content_free`` is one distribution for every row, or one row per item.
    """
    p = _normalised(probs)
    cf = np.asarray(content_free, dtype=float)
    cf = _normalised(cf[None, :] if cf.ndim == 1 else cf)
    return _normalised(_divide(p, np.broadcast_to(cf, p.shape)))


def _divide(p: np.ndarray, by: np.ndarray) -> np.ndarray:
    """p / by, with 0 where ``by`` is 0 (a label with no mass stays at none)."""
    return np.divide(p, by, out=np.zeros_like(p), where=by > 0)
