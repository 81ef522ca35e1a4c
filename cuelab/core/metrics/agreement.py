"""Inter-annotator agreement: Krippendorff's alpha, Cohen's and Fleiss' kappa.

Krippendorff's alpha is written from Krippendorff (2011), "Computing
Krippendorff's alpha-reliability" (the maintained packages are GPL). Data are
a reliability table: one sequence per unit, one value per annotator, ``None``
where an annotator gave no value. Following the paper:

- only *pairable* values count: a unit needs at least two values;
- the coincidence matrix is ``o_ck = sum_u (number of c-k pairs in u) / (m_u - 1)``
  over ordered pairs of values from different annotators, ``m_u`` the number of
  values in unit ``u``; its margins are ``n_c`` and their sum ``n``;
- ``alpha = 1 - (n - 1) * sum o_ck d2_ck / sum n_c n_k d2_ck``, where the
  difference ``d2`` is 0/1 for nominal data and, for ordinal data,
  ``(sum_{g=c..k} n_g - (n_c + n_k) / 2) ** 2``.

The bootstrap interval resamples units with replacement. Each unit's share of
the coincidence matrix depends only on how many of each value it holds, so
units are grouped by that pattern and a resample is a multinomial draw of
pattern counts (the same distribution as drawing units, at a cost that does
not grow with the number of units). Only numpy is used here.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Literal

import numpy as np

from cuelab.core.metrics.base import MetricsError

Level = Literal["nominal", "ordinal"]
Table = Sequence[Sequence[Hashable | None]]


def categories_of(units: Table, order: Sequence[Hashable] | None = None) -> list[Hashable]:
    """The categories in use: ``order`` (ordinal scale) or sorted by their text.

    Raises:
        MetricsError: a value missing from ``order``.
    """
    used = {v for unit in units for v in unit if v is not None}
    if order is not None:
        missing = used - set(order)
        if missing:
            raise MetricsError(f"values {sorted(map(str, missing))} are not in the given order")
        return list(order)
    return sorted(used, key=str)


def unit_coincidences(units: Table, categories: Sequence[Hashable]) -> np.ndarray:
    """Each unit's share of the coincidence matrix, shape (units, C, C).

    Units with fewer than two values contribute zeros (they are not pairable).
    """
    counts = value_counts(units, categories)
    m = counts.sum(axis=1)
    # ordered pairs of different annotators: n_c n_k, minus the n_c self-pairs on the diagonal
    pairs = counts[:, :, None] * counts[:, None, :]
    size = len(categories)
    pairs[:, np.arange(size), np.arange(size)] -= counts
    pairable = m >= 2
    out = np.zeros_like(pairs)
    out[pairable] = pairs[pairable] / (m[pairable] - 1)[:, None, None]
    return out


def value_counts(units: Table, categories: Sequence[Hashable]) -> np.ndarray:
    """How many times each category occurs in each unit, shape (units, C)."""
    index = {c: i for i, c in enumerate(categories)}
    rows, cols = [], []
    for u, unit in enumerate(units):
        for v in unit:
            if v is not None:
                rows.append(u)
                cols.append(index[v])
    counts = np.zeros((len(units), len(categories)))
    np.add.at(counts, (np.asarray(rows, dtype=int), np.asarray(cols, dtype=int)), 1.0)
    return counts


def coincidence_matrix(
    units: Table, order: Sequence[Hashable] | None = None
) -> tuple[list[Hashable], np.ndarray]:
    """(categories, o) for a reliability table."""
    cats = categories_of(units, order)
    return cats, unit_coincidences(units, cats).sum(axis=0)


def delta2(n_c: np.ndarray, level: Level) -> np.ndarray:
    """The squared difference function d2_ck for the margins ``n_c`` (categories in order)."""
    size = len(n_c)
    if level == "nominal":
        return 1.0 - np.eye(size)
    if level == "ordinal":
        cum = np.concatenate([[0.0], np.cumsum(n_c)])
        lo = np.minimum.outer(np.arange(size), np.arange(size))
        hi = np.maximum.outer(np.arange(size), np.arange(size))
        between = cum[hi + 1] - cum[lo]  # sum of n_g for g from c to k, inclusive
        return (between - (n_c[:, None] + n_c[None, :]) / 2.0) ** 2
    raise MetricsError(f"level {level!r}: use nominal or ordinal")


def alpha_from_coincidences(o: np.ndarray, level: Level = "nominal") -> float:
    """Krippendorff's alpha from a coincidence matrix; NaN when undefined.

    Undefined means fewer than two pairable values, or every value in one
    category (no expected disagreement).
    """
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if n < 2:
        return math.nan
    d2 = delta2(n_c, level)
    expected = float((np.outer(n_c, n_c) * d2).sum())
    if expected <= 0:
        return math.nan
    return 1.0 - (n - 1) * float((o * d2).sum()) / expected


def krippendorff_alpha(
    units: Table, level: Level = "nominal", order: Sequence[Hashable] | None = None
) -> float:
    """Krippendorff's alpha of a reliability table (units x annotators, None = missing).

    Args:
        units: one sequence of values per unit.
        level: ``nominal`` or ``ordinal`` (then ``order`` gives the scale; without
            it, the values' own sort order).
        order: the categories from lowest to highest.
    """
    _cats, o = coincidence_matrix(units, order)
    return alpha_from_coincidences(o, level)


def alpha_bootstrap_ci(
    units: Table,
    level: Level = "nominal",
    order: Sequence[Hashable] | None = None,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of alpha, resampling units with replacement.

    Resamples where alpha is undefined (one category only) are left out;
    (NaN, NaN) when there are no pairable units or no defined resample.
    """
    cats = categories_of(units, order)
    per_unit = unit_coincidences(units, cats)
    pairable = per_unit.sum(axis=(1, 2)) > 0
    per_unit = per_unit[pairable]
    n_units = len(per_unit)
    if n_units == 0 or n_boot <= 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    patterns, freq = np.unique(per_unit.reshape(n_units, -1), axis=0, return_counts=True)
    draws = rng.multinomial(n_units, freq / n_units, size=n_boot)  # units per pattern
    coincidences = (draws @ patterns).reshape(n_boot, len(cats), len(cats))
    values = []
    for o in coincidences:
        a = alpha_from_coincidences(o, level)
        if math.isfinite(a):
            values.append(a)
    if not values:
        return math.nan, math.nan
    tail = (1.0 - confidence) / 2.0 * 100.0
    lo, hi = np.percentile(values, [tail, 100.0 - tail])
    return float(lo), float(hi)


def per_class_agreement(units: Table) -> dict[Hashable, float]:
    """For each category, o_cc / n_c: how often a value of c is paired with another c.

    This is the chance-uncorrected agreement on one class (for two annotators,
    the specific agreement 2 n_cc / (n_c. + n_.c)).
    """
    cats, o = coincidence_matrix(units)
    n_c = o.sum(axis=1)
    return {c: float(o[i, i] / n_c[i]) if n_c[i] > 0 else math.nan for i, c in enumerate(cats)}


def cohen_kappa(a: Sequence[Hashable | None], b: Sequence[Hashable | None]) -> tuple[float, int]:
    """Cohen's kappa of two annotators over the units both labelled; (kappa, n).

    NaN when no unit is shared or chance agreement is 1 (both always said the same one label).

    Raises:
        MetricsError: the sequences differ in length.
    """
    if len(a) != len(b):
        raise MetricsError(f"cohen_kappa: {len(a)} and {len(b)} values")
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    n = len(pairs)
    if n == 0:
        return math.nan, 0
    po = sum(1 for x, y in pairs if x == y) / n
    cats = {x for x, _ in pairs} | {y for _, y in pairs}
    pe = sum(
        (sum(1 for x, _ in pairs if x == c) / n) * (sum(1 for _, y in pairs if y == c) / n)
        for c in cats
    )
    return ((po - pe) / (1.0 - pe) if pe < 1.0 else math.nan), n


def fleiss_kappa_counts(counts: np.ndarray) -> float:
    """Fleiss' kappa from a units x categories table of rating counts.

    Each unit's agreement is ``sum_j n_ij (n_ij - 1) / (n_i (n_i - 1))``; units
    may have different numbers of ratings (at least two each; others are left
    out). Category proportions ``p_j`` pool every rating.
    """
    counts = np.asarray(counts, dtype=float)
    n_i = counts.sum(axis=1)
    counts, n_i = counts[n_i >= 2], n_i[n_i >= 2]
    if len(counts) == 0:
        return math.nan
    p_i = (counts * (counts - 1)).sum(axis=1) / (n_i * (n_i - 1))
    p_j = counts.sum(axis=0) / counts.sum()
    p_bar, pe = float(p_i.mean()), float((p_j**2).sum())
    return (p_bar - pe) / (1.0 - pe) if pe < 1.0 else math.nan


def fleiss_kappa(units: Table) -> float:
    """Fleiss' kappa of a reliability table (units x annotators, None = missing)."""
    return fleiss_kappa_counts(value_counts(units, categories_of(units)))
