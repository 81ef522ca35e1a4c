"""Krippendorff's alpha, Cohen's and Fleiss' kappa against hand-worked examples."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from cuelab.core.metrics.agreement import (
    alpha_bootstrap_ci,
    cohen_kappa,
    coincidence_matrix,
    fleiss_kappa,
    fleiss_kappa_counts,
    krippendorff_alpha,
    per_class_agreement,
)

N = None
# Krippendorff (2011), section C: 4 observers x 12 units, values 1-5, missing data.
OBSERVERS = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]
UNITS = [list(u) for u in zip(*OBSERVERS, strict=True)]


def _hand_coincidences() -> dict[tuple[int, int], Fraction]:
    """The paper's recipe, written out: every ordered pair of values from different
    observers in a unit adds 1/(m_u - 1) to o[c, k]; units with one value add nothing."""
    o: dict[tuple[int, int], Fraction] = {}
    for unit in UNITS:
        values = [v for v in unit if v is not None]
        m = len(values)
        if m < 2:
            continue
        for i, c in enumerate(values):
            for j, k in enumerate(values):
                if i != j:
                    o[(c, k)] = o.get((c, k), Fraction(0)) + Fraction(1, m - 1)
    return o


def test_nominal_alpha_of_the_papers_example_with_missing_data() -> None:
    o = _hand_coincidences()
    n_c = {c: sum(v for (a, _), v in o.items() if a == c) for c in range(1, 6)}
    n = sum(n_c.values())
    assert n == 40  # 41 values, one of them (unit 12) not pairable
    assert (o[(1, 1)], o[(1, 2)], o[(5, 5)]) == (7, Fraction(4, 3), 3)  # the paper's matrix
    observed = sum(v for (c, k), v in o.items() if c != k)
    expected = sum(n_c[c] * n_c[k] for c in n_c for k in n_c if c != k)
    hand = 1 - (n - 1) * observed / expected
    assert float(hand) == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(UNITS) == pytest.approx(float(hand), abs=1e-12)
    cats, matrix = coincidence_matrix(UNITS)
    assert cats == [1, 2, 3, 4, 5]
    for (c, k), v in o.items():
        assert matrix[c - 1, k - 1] == pytest.approx(float(v))


def test_ordinal_alpha_of_the_papers_example() -> None:
    o = _hand_coincidences()
    n_c = {c: sum(v for (a, _), v in o.items() if a == c) for c in range(1, 6)}
    n = sum(n_c.values())

    def d2(c: int, k: int) -> Fraction:
        lo, hi = min(c, k), max(c, k)
        return (sum(n_c[g] for g in range(lo, hi + 1)) - (n_c[c] + n_c[k]) / 2) ** 2

    observed = sum(v * d2(c, k) for (c, k), v in o.items())
    expected = sum(n_c[c] * n_c[k] * d2(c, k) for c in n_c for k in n_c)
    hand = 1 - (n - 1) * observed / expected
    assert float(hand) == pytest.approx(0.815, abs=5e-4)
    assert krippendorff_alpha(UNITS, "ordinal") == pytest.approx(float(hand), abs=1e-12)
    # The scale's order matters, the names do not.
    words = {1: "VERY_LOW", 2: "LOW", 3: "MID", 4: "HIGH", 5: "VERY_HIGH"}
    named = [[words[v] if v else None for v in u] for u in UNITS]
    order = [words[i] for i in range(1, 6)]
    assert krippendorff_alpha(named, "ordinal", order) == pytest.approx(float(hand))


def test_binary_two_observer_example() -> None:
    # Krippendorff (2011), section A: 2 observers, 10 units, alpha = 0.095.
    a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    # By hand: o00 = 10, o01 = o10 = 4, o11 = 2; n0 = 14, n1 = 6, n = 20.
    hand = 1 - (20 - 1) * (4 + 4) / (14 * 6 + 6 * 14)
    assert hand == pytest.approx(0.095, abs=5e-4)
    assert krippendorff_alpha(list(zip(a, b, strict=True))) == pytest.approx(hand)


def test_alpha_is_undefined_without_variation_or_pairs() -> None:
    assert math.isnan(krippendorff_alpha([["a", "a"], ["a", "a"]]))
    assert math.isnan(krippendorff_alpha([["a", None], [None, "b"]]))


def test_bootstrap_interval_holds_alpha_and_is_reproducible() -> None:
    lo, hi = alpha_bootstrap_ci(UNITS, n_boot=500, seed=3)
    assert lo < krippendorff_alpha(UNITS) < hi <= 1.0
    assert (lo, hi) == alpha_bootstrap_ci(UNITS, n_boot=500, seed=3)
    wide = alpha_bootstrap_ci(UNITS[:6] * 1, n_boot=500, seed=3)
    narrow = alpha_bootstrap_ci(UNITS[:6] * 20, n_boot=500, seed=3)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]  # more units, a narrower interval


def test_cohen_kappa_hand_worked() -> None:
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> po 0.7, pe 0.5*0.6+0.5*0.4 = 0.5.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    kappa, n = cohen_kappa(a, b)
    assert n == 50 and kappa == pytest.approx((0.7 - 0.5) / (1 - 0.5))
    # Units one of them skipped are left out of the pair.
    assert cohen_kappa([*a, "yes", None], [*b, None, "no"]) == (pytest.approx(0.4), 50)


def test_fleiss_kappa_of_fleiss_1971_style_table() -> None:
    # The textbook table: 10 subjects, 14 raters, 5 categories (kappa 0.210).
    counts = np.array([
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ])  # fmt: skip
    p_i = [(sum(x * (x - 1) for x in row)) / (14 * 13) for row in counts.tolist()]
    p_j = [sum(col) / 140 for col in zip(*counts.tolist(), strict=True)]
    hand = (sum(p_i) / 10 - sum(p * p for p in p_j)) / (1 - sum(p * p for p in p_j))
    assert hand == pytest.approx(0.210, abs=5e-4)
    assert fleiss_kappa_counts(counts) == pytest.approx(hand)
    # The same from a units x raters table.
    units = [[c for c in range(5) for _ in range(row[c])] for row in counts.tolist()]
    assert fleiss_kappa(units) == pytest.approx(hand)


def test_per_class_agreement_is_the_diagonal_share() -> None:
    got = per_class_agreement(UNITS)
    o = _hand_coincidences()
    n1 = sum(v for (c, _), v in o.items() if c == 1)
    assert got[1] == pytest.approx(float(o[(1, 1)] / n1))  # 7 / 9
    assert got[5] == 1.0
