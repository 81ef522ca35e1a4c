"""Metrics checked against scikit-learn, scipy, statsmodels and jiwer."""

from __future__ import annotations

import math

import jiwer
import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    recall_score,
)
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests

from cuelab.core import metrics as m
from cuelab.core.errors import CueLabError

LABELS = ["ang", "hap", "neu", "sad"]


@pytest.fixture
def preds() -> tuple[list[str], list[str | None]]:
    """Skewed reference, noisy predictions with a few unparsed ones."""
    rng = np.random.default_rng(1)
    y_true = list(rng.choice(LABELS, size=300, p=[0.1, 0.2, 0.5, 0.2]))
    y_pred: list[str | None] = [
        t if rng.random() < 0.6 else str(rng.choice(LABELS)) for t in y_true
    ]
    for i in (3, 50, 51, 200):
        y_pred[i] = None
    y_pred[7] = "unparsed"
    y_pred[8] = float("nan")  # type: ignore[call-overload]
    return y_true, y_pred


def _sk(y_pred: list[str | None]) -> list[str]:
    return ["<unparsed>" if m.is_unparsed(p) else str(p) for p in y_pred]


# --------------------------------------------------------------------------- classification


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_uar_equals_sklearn(preds: tuple[list[str], list[str | None]]) -> None:
    y_true, y_pred = preds
    yp = _sk(y_pred)
    assert m.uar(y_true, y_pred) == pytest.approx(balanced_accuracy_score(y_true, yp), abs=1e-12)
    ref = recall_score(y_true, yp, labels=LABELS, average="macro")
    assert m.uar(y_true, y_pred) == pytest.approx(ref, abs=1e-12)
    assert m.macc(y_true, y_pred) == m.uar(y_true, y_pred)
    assert m.weighted_accuracy(y_true, y_pred) == pytest.approx(accuracy_score(y_true, yp))


def test_per_class_recall_and_summary(preds: tuple[list[str], list[str | None]]) -> None:
    y_true, y_pred = preds
    rec = m.per_class_recall(y_true, y_pred, labels=[*LABELS, "fru"])
    sk = recall_score(y_true, _sk(y_pred), labels=LABELS, average=None)
    assert [rec[c] for c in LABELS] == pytest.approx(list(sk))
    assert math.isnan(rec["fru"])  # not in the reference: undefined, not 0
    s = m.classification_scores(y_true, y_pred)
    assert s.n == 300
    assert s.unparsed == 6 == m.count_unparsed(y_pred)
    assert s.uar == pytest.approx(m.uar(y_true, y_pred))
    assert s.wa == pytest.approx(m.weighted_accuracy(y_true, y_pred))
    assert list(s.recalls) == LABELS


def test_unparsed_counts_as_wrong() -> None:
    y_true = ["a", "a", "b", "b"]
    assert m.weighted_accuracy(y_true, ["a", None, "b", "unparsed"]) == 0.5
    assert m.correct_mask(y_true, ["a", None, "b", "unparsed"]).tolist() == [
        True,
        False,
        True,
        False,
    ]


def test_confusion_matrix_matches_sklearn(preds: tuple[list[str], list[str | None]]) -> None:
    y_true, y_pred = preds
    cm = m.confusion_matrix(y_true, y_pred, LABELS)
    assert cm.shape == (4, 5)
    np.testing.assert_array_equal(
        cm[:, :4], sk_confusion_matrix(y_true, _sk(y_pred), labels=LABELS)
    )
    assert cm[:, 4].sum() == 6  # the unparsed column
    np.testing.assert_array_equal(cm.sum(axis=1), [y_true.count(c) for c in LABELS])
    np.testing.assert_array_equal(
        m.confusion_matrix(y_true, y_pred, LABELS, include_other=False), cm[:, :4]
    )


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_class_never_predicted_and_predicted_only() -> None:
    y_true = ["a", "a", "b", "b", "c"]
    y_pred = ["a", "a", "a", "a", "d"]  # b and c never predicted; d not in the reference
    assert m.uar(y_true, y_pred) == pytest.approx(1 / 3)
    assert m.uar(y_true, y_pred) == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    # scikit-learn's plain macro recall would average in "d" as a fourth class.
    assert recall_score(y_true, y_pred, average="macro", zero_division=0) == pytest.approx(0.25)


def test_one_class_only() -> None:
    assert m.uar(["x"] * 4, ["x", "x", "y", None]) == 0.5
    assert m.per_class_recall(["x"] * 4, ["x"] * 4) == {"x": 1.0}


@pytest.mark.parametrize(
    ("y_true", "y_pred", "match"),
    [
        ([], [], "empty"),
        (["a"], [], "1 items but predictions have 0"),
        (["a", None], ["a", "a"], "missing"),
    ],
)
def test_classification_errors(y_true: list, y_pred: list, match: str) -> None:
    with pytest.raises(m.MetricsError, match=match):
        m.uar(y_true, y_pred)


def test_confusion_matrix_rejects_unknown_reference_label() -> None:
    with pytest.raises(CueLabError, match="not in the label order: z"):
        m.confusion_matrix(["a", "z"], ["a", "a"], ["a", "b"])


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_is_seeded(preds: tuple[list[str], list[str | None]]) -> None:
    y_true, y_pred = preds
    a = m.bootstrap_ci(m.uar, y_true, y_pred, n_resamples=200, seed=7)
    b = m.bootstrap_ci(m.uar, y_true, y_pred, n_resamples=200, seed=7)
    c = m.bootstrap_ci(m.uar, y_true, y_pred, n_resamples=200, seed=8)
    assert a == b
    assert a != c
    assert a.point == pytest.approx(m.uar(y_true, y_pred))
    assert a.low < a.point < a.high
    point, low, high = a  # unpacks as a tuple
    assert (point, low, high) == tuple(a)


def test_clustered_ci_wider_when_speakers_are_correlated() -> None:
    # 20 speakers x 15 items; every item of a speaker is right or every item is wrong.
    rng = np.random.default_rng(3)
    speakers = np.repeat(np.arange(20), 15)
    speaker_right = rng.random(20) < 0.6
    correct = speaker_right[speakers].astype(float)
    mean = lambda c: float(np.mean(c))  # noqa: E731
    item = m.bootstrap_ci(mean, correct, n_resamples=1000, seed=0)
    clustered = m.bootstrap_ci(mean, correct, groups=speakers, n_resamples=1000, seed=0)
    assert item.point == clustered.point
    assert clustered.low <= clustered.point <= clustered.high
    assert (clustered.high - clustered.low) > 2.5 * (item.high - item.low)


def test_clustered_resample_keeps_speakers_whole() -> None:
    speakers = ["s1"] * 3 + ["s2"] * 5 + ["s3"] * 2
    values = np.array([1, 1, 1, 2, 2, 2, 2, 2, 3, 3])
    seen: list[np.ndarray] = []

    def record(v: np.ndarray) -> float:
        seen.append(v.copy())
        return float(v.mean())

    m.bootstrap_ci(record, values, groups=speakers, n_resamples=50, seed=0)
    for v in seen[1:]:  # seen[0] is the point estimate
        counts = np.bincount(v, minlength=4)
        assert counts[1] % 3 == 0 and counts[2] % 5 == 0 and counts[3] % 2 == 0


def test_bootstrap_errors() -> None:
    with pytest.raises(m.MetricsError, match="at least one item"):
        m.bootstrap_ci(m.uar, [], [])
    with pytest.raises(m.MetricsError, match="differ in length"):
        m.bootstrap_ci(m.uar, ["a"], ["a", "b"])
    with pytest.raises(m.MetricsError, match="speaker column has 1 entries"):
        m.bootstrap_ci(m.uar, ["a", "b"], ["a", "b"], groups=["s"])


def test_bootstrap_over_wer_counts() -> None:
    errors, words = m.wer_counts(["a b c", "d e", "f"], ["a b c", "d", "g h"])
    ci = m.bootstrap_ci(m.wer_from_counts, errors, words, n_resamples=100, seed=0)
    assert ci.point == pytest.approx(3 / 6)  # 0 + 1 deletion + (1 sub + 1 ins)
    assert 0.0 <= ci.low <= ci.point <= ci.high


# --------------------------------------------------------------------------- paired tests


def test_mcnemar_matches_statsmodels() -> None:
    rng = np.random.default_rng(5)
    a = rng.random(120) < 0.55
    b = np.where(rng.random(120) < 0.2, ~a, a)
    res = m.mcnemar_exact(a, b)
    assert res.n01 == int(np.sum(~a & b))  # a wrong, b right
    assert res.n10 == int(np.sum(a & ~b))
    table = [[np.sum(~a & ~b), res.n01], [res.n10, np.sum(a & b)]]
    assert res.p_value == pytest.approx(sm_mcnemar(table, exact=True).pvalue, abs=1e-12)


def test_mcnemar_no_discordant_pairs() -> None:
    assert m.mcnemar_exact([True, False], [True, False]) == (0, 0, 1.0)
    with pytest.raises(m.MetricsError):
        m.mcnemar_exact([], [])
    with pytest.raises(m.MetricsError, match="shape"):
        m.mcnemar_exact([True], [True, False])


def test_spearman_matches_scipy() -> None:
    grid = [0.0, 0.25, 0.5, 0.75, 1.0] * 2
    values = [0.61, 0.55, 0.52, 0.40, 0.41, 0.60, 0.57, 0.50, 0.44, 0.38]
    res = m.spearman(grid, values)
    ref = spearmanr(grid, values)
    assert res.rho == pytest.approx(ref.statistic)
    assert res.p_value == pytest.approx(ref.pvalue)
    assert res.rho < 0
    const = m.spearman([0, 1, 2], [0.5, 0.5, 0.5])
    assert math.isnan(const.rho) and math.isnan(const.p_value)
    with pytest.raises(m.MetricsError, match="at least 3"):
        m.spearman([0, 1], [0.1, 0.2])


def test_holm_matches_statsmodels() -> None:
    p = [0.01, 0.04, 0.03, 0.5, 0.005, 0.2, 0.04]
    ours = m.holm(p)
    ref = multipletests(p, method="holm")[1]
    np.testing.assert_allclose(ours, ref, atol=1e-15)
    assert np.all(ours <= 1.0)
    order = np.argsort(p)
    assert np.all(np.diff(ours[order]) >= 0)  # monotone in the raw p order
    assert m.holm([0.9, 0.8]).tolist() == [1.0, 1.0]
    assert m.holm([]).size == 0
    with pytest.raises(m.MetricsError):
        m.holm([0.1, 1.5])


def test_aggregate_seeds_t_interval() -> None:
    from scipy import stats

    vals = [0.52, 0.55, 0.49, 0.58, 0.51]
    agg = m.aggregate_seeds(vals)
    lo, hi = stats.t.interval(0.95, 4, loc=np.mean(vals), scale=stats.sem(vals))
    assert agg.mean == pytest.approx(np.mean(vals))
    assert (agg.ci_low, agg.ci_high) == pytest.approx((lo, hi))
    assert agg.std == pytest.approx(np.std(vals, ddof=1))
    assert agg.n == 5
    one = m.aggregate_seeds([0.5])
    assert one.mean == 0.5 and math.isnan(one.std) and math.isnan(one.ci_low)
    with pytest.raises(m.MetricsError):
        m.aggregate_seeds([])


# --------------------------------------------------------------------------- WER


SENTENCES = [
    "Hello,  World!",
    "I'm gonna pay $20 at 3 o'clock.",
    "Mr. Smith's colour is twenty-five percent!",
    "It costs 3.50 or 1,000 units",
    "Um, the meeting starts at nine tomorrow.",
    "  ",
    "We've realised it's the FIRST of May, 2024.",
]


def _transformers_normaliser():
    """transformers' own copy of Whisper's normaliser, with the released spelling map."""
    import importlib.resources
    import json

    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    mapping = importlib.resources.files("whisper_normalizer") / "normalizers" / "english.json"
    return EnglishTextNormalizer(json.loads(mapping.read_text(encoding="utf-8")))


@pytest.mark.parametrize("text", SENTENCES)
def test_normalise_text_is_whisper_s_english_normaliser(text: str) -> None:
    assert m.normalise_text(text) == " ".join(_transformers_normaliser()(text).split())


def test_normaliser_does_what_leaderboards_expect() -> None:
    assert m.normalise_text("Hello,  World!") == "hello world"
    assert m.normalise_text("I'm gonna pay $20") == "i am going to pay $20"
    assert m.normalise_text("the colour grey") == "the color gray"
    assert m.normalise_text("twenty-five") == "25"
    assert m.normalise_text("Um, hmm.") == ""


def test_wer_matches_jiwer_on_normalised_text_and_raw() -> None:
    refs = ["The cat sat on the MAT.", "Hello, world! I'm home.", "We walked twenty miles"]
    hyps = ["the cat sat on a mat", "hello there world i am home", "we walked 20 miles"]
    normalised = [m.normalise_text(t) for t in refs], [m.normalise_text(t) for t in hyps]
    assert m.wer(refs, hyps) == pytest.approx(jiwer.wer(*normalised))
    assert m.wer(refs, hyps, normalise=False) == pytest.approx(jiwer.wer(refs, hyps))
    assert m.wer(refs, hyps, normalise=False) > m.wer(refs, hyps)
    assert m.NORMALISER.startswith("Whisper English text normaliser")


def test_wer_unparsed_and_empty() -> None:
    assert m.wer(["red green blue", "dog"], [None, "dog"]) == pytest.approx(3 / 4)
    errors, words = m.wer_counts(["", "cat"], ["big dog", "cat"])
    assert errors.tolist() == [2, 0] and words.tolist() == [0, 1]
    with pytest.raises(m.MetricsError, match="no words"):
        m.wer(["", "um"], ["a", ""])
    with pytest.raises(m.MetricsError, match="empty"):
        m.wer([], [])


# --------------------------------------------------------------------------- mAP


def test_average_precision_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(11)
    y = rng.random(200) < 0.3
    s = np.round(rng.random(200) + 0.5 * y, 1)  # rounding makes many ties
    assert m.average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert math.isnan(m.average_precision(np.zeros(5), np.arange(5.0)))


def test_map_matches_sklearn_macro() -> None:
    rng = np.random.default_rng(12)
    y = (rng.random((150, 6)) < 0.25).astype(int)
    s = rng.random((150, 6)) + 0.4 * y
    ref = average_precision_score(y, s, average="macro")
    assert m.mean_average_precision(y, s) == pytest.approx(ref, abs=1e-12)
    # An event with no positive item is left out of the average.
    y[:, 2] = 0
    keep = [0, 1, 3, 4, 5]
    ref = average_precision_score(y[:, keep], s[:, keep], average="macro")
    assert m.mean_average_precision(y, s) == pytest.approx(ref, abs=1e-12)
    with pytest.raises(m.MetricsError, match="no event has a positive"):
        m.mean_average_precision(np.zeros((3, 2)), np.ones((3, 2)))
    with pytest.raises(m.MetricsError, match="matching"):
        m.mean_average_precision(y, s[:, :3])


def test_encoded_labels_give_the_same_numbers(preds: tuple[list[str], list[str | None]]) -> None:
    y_true, y_pred = preds
    t_idx, p_idx = m.encode_labels(y_true, y_pred)
    assert m.uar(t_idx, p_idx) == pytest.approx(m.uar(y_true, y_pred))
    assert m.weighted_accuracy(t_idx, p_idx) == pytest.approx(m.weighted_accuracy(y_true, y_pred))
    speakers = [i % 13 for i in range(len(y_true))]
    slow = m.bootstrap_ci(m.uar, y_true, y_pred, groups=speakers, n_resamples=100, seed=2)
    fast = m.bootstrap_ci(m.uar, t_idx, p_idx, groups=speakers, n_resamples=100, seed=2)
    assert fast == pytest.approx(slow)
    parsed = ["neu" if m.is_unparsed(p) else p for p in y_pred]
    as_arrays = m.uar(np.array(y_true), np.array(parsed))
    assert as_arrays == pytest.approx(m.uar(y_true, parsed))
