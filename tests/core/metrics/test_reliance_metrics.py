"""The reliance and calibration metrics on synthetic data, against numpy written out."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cuelab.core.metrics import MetricsError
from cuelab.core.metrics import reliance as rl

LABELS = ["a", "b", "c"]


def np_uar(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean([np.mean(p[y == c] == c) for c in np.unique(y)]))


@pytest.fixture()
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(7)
    n = 120
    y = rng.choice(LABELS, n)
    audio = np.where(rng.random(n) < 0.5, y, rng.choice(LABELS, n))
    correct = np.where(rng.random(n) < 0.85, y, rng.choice(LABELS, n))
    conflict = np.where(rng.random(n) < 0.6, y, rng.choice(LABELS, n))
    speakers = [f"s{i % 12}" for i in range(n)]
    return y, audio, correct, conflict, speakers


def test_reliance_index_point_and_paired_interval(data: tuple) -> None:
    y, audio, correct, conflict, spk = data
    ci, gain, loss, kept = rl.reliance_index(
        y.tolist(), audio.tolist(), correct.tolist(), conflict.tolist(),
        groups=spk, n_resamples=300, seed=3,
    )  # fmt: skip
    want_gain = np_uar(y, correct) - np_uar(y, audio)
    assert want_gain > 0
    assert gain == pytest.approx(want_gain) and loss == pytest.approx(
        np_uar(y, correct) - np_uar(y, conflict)
    )
    assert ci.point == pytest.approx((np_uar(y, correct) - np_uar(y, conflict)) / want_gain)
    names = list(dict.fromkeys(spk))
    members = [np.flatnonzero(np.array(spk) == s) for s in names]
    rng = np.random.default_rng(3)
    reps = []
    for _ in range(300):
        idx = np.concatenate([members[i] for i in rng.integers(0, len(names), len(names))])
        g = np_uar(y[idx], correct[idx]) - np_uar(y[idx], audio[idx])
        reps.append(
            (np_uar(y[idx], correct[idx]) - np_uar(y[idx], conflict[idx])) / g if g > 0 else np.nan
        )
    reps_a = np.array(reps)
    kept_a = reps_a[~np.isnan(reps_a)]
    assert kept == kept_a.size
    assert (ci.low, ci.high) == pytest.approx(tuple(np.percentile(kept_a, [2.5, 97.5])))


def test_reliance_index_is_undefined_without_a_gain(data: tuple) -> None:
    y, audio, _, conflict, spk = data
    ci, gain, _, kept = rl.reliance_index(
        y.tolist(), audio.tolist(), audio.tolist(), conflict.tolist(), groups=spk, n_resamples=50
    )
    assert gain == 0 and math.isnan(ci.point) and math.isnan(ci.low) and kept == 0


def test_paired_delta_of_several_seeds_is_their_mean_minus_the_base(data: tuple) -> None:
    y, audio, correct, conflict, spk = data
    ci = rl.paired_delta(y.tolist(), audio.tolist(), [correct.tolist(), conflict.tolist()],
                         groups=spk, n_resamples=100)  # fmt: skip
    want = (np_uar(y, correct) + np_uar(y, conflict)) / 2 - np_uar(y, audio)
    assert ci.point == pytest.approx(want) and ci.low <= want <= ci.high


def test_majority_vote_breaks_ties_by_the_lowest_seed() -> None:
    votes = rl.majority_vote([["a", "b", "a", None], ["b", "b", "c", None], ["c", "a", "c", "a"]])
    assert votes == ["a", "b", "c", None]
    with pytest.raises(MetricsError):
        rl.majority_vote([["a"], ["a", "b"]])


def test_contextual_and_batch_calibration() -> None:
    rng = np.random.default_rng(0)
    p = rng.dirichlet([1, 2, 3], size=20)
    cf = np.array([0.2, 0.3, 0.5])
    got = rl.contextual_calibrate(p, cf)
    want = (p / cf) / (p / cf).sum(axis=1, keepdims=True)
    assert got == pytest.approx(want)
    per_row = rl.contextual_calibrate(p, np.tile(cf, (20, 1)))
    assert per_row == pytest.approx(want)
    batch, prior = rl.batch_calibrate(p)
    assert prior == pytest.approx(p.mean(axis=0))
    q = p / p.mean(axis=0)
    assert batch == pytest.approx(q / q.sum(axis=1, keepdims=True))
    # after batch calibration the mean distribution is closer to uniform
    assert np.ptp(batch.mean(axis=0)) < np.ptp(p.mean(axis=0))
    # a label that never gets any mass stays at none instead of turning the rows into NaN
    sure = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert rl.batch_calibrate(sure)[0] == pytest.approx(sure)
    assert rl.contextual_calibrate(sure, np.array([0.5, 0.5, 0.0])) == pytest.approx(sure)


def test_ece_of_a_perfectly_calibrated_and_an_overconfident_model() -> None:
    y = ["a"] * 10 + ["b"] * 10
    sure = np.array([[1.0, 0.0, 0.0]] * 10 + [[0.0, 1.0, 0.0]] * 10)
    assert rl.ece(sure, y, LABELS) == 0.0 and rl.nll(sure, y, LABELS) == 0.0
    wrong = np.array([[0.0, 1.0, 0.0]] * 20)  # always "b" with certainty: half wrong
    assert rl.ece(wrong, y, LABELS) == pytest.approx(0.5)
    assert rl.brier(wrong, y, LABELS) == pytest.approx(1.0)  # 10 x 2 + 10 x 0, over 20
    assert rl.nll(wrong, y, LABELS) == pytest.approx(0.5 * -math.log(1e-12))
    assert math.isnan(rl.ece(np.full((20, 3), np.nan), y, LABELS))
