from __future__ import annotations

import itertools

import numpy as np
import pytest

from cuelab.core.cues.interventions import (
    VQ_CONFLICT,
    ablate,
    apply_condition,
    conflict,
    corrupt,
    derangement,
    parse_condition,
    shuffle_token_sets,
)
from cuelab.core.cues.tokens import CONCEPTS, VOCAB, TokenSet
from cuelab.core.errors import TokenError


def random_sets(n: int, seed: int = 0) -> list[TokenSet]:
    rng = np.random.default_rng(seed)
    return [
        TokenSet({c: VOCAB[c][int(rng.integers(len(VOCAB[c])))] for c in CONCEPTS})
        for _ in range(n)
    ]


def test_conflict_is_ordinal_inversion_and_an_involution() -> None:
    levels = VOCAB["ENERGY"]
    for i, tok in enumerate(levels):
        inv = conflict(TokenSet({"ENERGY": tok}))["ENERGY"]
        assert inv == levels[4 - i]
    assert conflict(TokenSet({"PITCH": "MID"}))["PITCH"] == "MID"
    assert conflict(TokenSet({"BRIGHTNESS": "VERY_DARK"}))["BRIGHTNESS"] == "VERY_BRIGHT"
    for ts in random_sets(50):
        assert conflict(conflict(ts)) == ts
    assert sorted(VQ_CONFLICT) == sorted(VOCAB["VOICE_QUALITY"])
    assert all(VQ_CONFLICT[VQ_CONFLICT[k]] == k and VQ_CONFLICT[k] != k for k in VQ_CONFLICT)


@pytest.mark.parametrize("n", [2, 3, 7, 40])
def test_shuffle_derange_is_a_derangement_preserving_marginals(n: int) -> None:
    sets = random_sets(n, seed=n)
    for seed in range(5):
        res = shuffle_token_sets(sets, seed, derange=True)
        assert all(src != i for i, src in enumerate(res.source)) and res.own == 0
        assert sorted(res.source) == list(range(n))
        assert sorted(map(str, res.tokens)) == sorted(map(str, sets))
        assert res.same_content == sum(a == b for a, b in zip(sets, res.tokens))


def test_shuffle_is_a_uniform_permutation_that_may_keep_a_clip_s_own_set() -> None:
    sets = random_sets(10, seed=5)
    owns = []
    for seed in range(3000):
        res = shuffle_token_sets(sets, seed)
        assert sorted(res.source) == list(range(10))
        assert res.own == sum(src == i for i, src in enumerate(res.source))
        assert res.same_content == sum(a == b for a, b in zip(sets, res.tokens)) >= res.own
        owns.append(res.own)
    # a uniform permutation has one fixed point on average, and none with probability ~1/e
    assert np.mean(owns) == pytest.approx(1.0, abs=0.06)
    assert np.mean([o == 0 for o in owns]) == pytest.approx(np.exp(-1), abs=0.03)
    # and every permutation of three clips is equally likely (chi-square, 5 dof)
    counts: dict[tuple[int, ...], int] = {}
    for seed in range(6000):
        key = tuple(shuffle_token_sets(random_sets(3), seed).source)
        counts[key] = counts.get(key, 0) + 1
    assert len(counts) == 6
    chi2 = sum((c - 1000) ** 2 / 1000 for c in counts.values())
    assert chi2 < 20.5  # p < 0.001 under uniformity


def test_shuffle_seeds_differ_and_repeat() -> None:
    sets = random_sets(30)
    a, b, a2 = (shuffle_token_sets(sets, s).source for s in (1, 2, 1))
    assert a == a2
    assert a != b


def test_derangement_is_uniform_for_n3() -> None:
    rng = np.random.default_rng(0)
    counts: dict[tuple[int, ...], int] = {}
    for _ in range(3000):
        key = tuple(int(x) for x in derangement(3, rng))
        counts[key] = counts.get(key, 0) + 1
    assert set(counts) == {(1, 2, 0), (2, 0, 1)}
    assert abs(counts[(1, 2, 0)] - 1500) < 150
    with pytest.raises(TokenError, match="at least 2"):
        derangement(1, rng)


def test_corrupt_zero_is_identity_and_corrupt_change_one_changes_everything() -> None:
    rng = np.random.default_rng(0)
    for ts in random_sets(30):
        same = corrupt(ts, 0.0, rng)
        assert same.tokens == ts and same.changed == 0
        full = corrupt(ts, 1.0, rng, always_change=True)
        assert full.changed == 6 and full.rate == 1.0
        assert all(full.tokens[c] != ts[c] for c in CONCEPTS)


def _expected_paper_rate(p: float) -> float:
    """P(changed) per position: redrawn with p, then a different token with 1 - 1/|V|."""
    return float(np.mean([p * (1 - 1 / len(VOCAB[c])) for c in CONCEPTS]))


@pytest.mark.parametrize("p", [0.3, 0.5, 1.0])
def test_paper_corrupt_redraws_from_the_whole_vocabulary(p: float) -> None:
    rng = np.random.default_rng(1)
    sets = random_sets(4000, seed=3)
    results = [corrupt(ts, p, rng) for ts in sets]
    changed = [[r.tokens[c] != ts[c] for c in CONCEPTS] for r, ts in zip(results, sets)]
    rate = float(np.mean(changed))
    assert rate == pytest.approx(_expected_paper_rate(p), abs=0.01)  # 0.40 at p = 0.5
    assert sum(r.changed for r in results) == int(np.sum(changed))  # its own count agrees
    # five-level concepts change with p * 4/5: at p = 0.5, 40 %, not 50 %
    energy = np.mean([r.tokens["ENERGY"] != ts["ENERGY"] for r, ts in zip(results, sets)])
    assert energy == pytest.approx(p * 0.8, abs=0.02)
    assert {r.tokens["VOICE_QUALITY"] for r in results} == set(VOCAB["VOICE_QUALITY"])


def test_corrupt_change_rate_is_p_and_draws_the_same_positions() -> None:
    sets = random_sets(3000, seed=4)
    ids = [f"u{i}" for i in range(len(sets))]
    paper = apply_condition("corrupt:0.4", sets, ids, seed=2)
    change = apply_condition("corrupt-change:0.4", sets, ids, seed=2)
    rate = np.mean([[c[k] != t[k] for k in CONCEPTS] for c, t in zip(change, sets)])
    assert rate == pytest.approx(0.4, abs=0.015)
    for p_set, c_set, own in zip(paper, change, sets):
        # what the paper's draw changed, the always-change draw changed too (same positions)
        assert all(c_set[k] != own[k] for k in CONCEPTS if p_set[k] != own[k])
    with pytest.raises(TokenError):
        corrupt(sets[0], 1.5, np.random.default_rng(0))


def test_ablate_drop_and_invert() -> None:
    ts = random_sets(1)[0]
    dropped = ablate(ts, "pitch")
    assert list(dropped) == [c for c in CONCEPTS if c != "PITCH"]
    inv = ablate(ts, "PITCH", "invert")
    assert inv["PITCH"] == conflict(ts)["PITCH"]
    assert all(inv[c] == ts[c] for c in CONCEPTS if c != "PITCH")


def test_parse_condition_names() -> None:
    assert parse_condition("corrupt:0.25").name == "corrupt:0.25"
    assert parse_condition("corrupt_change:0.25").name == "corrupt-change:0.25"
    assert parse_condition("shuffle-derange").is_random and parse_condition("shuffle").is_random
    assert parse_condition("ablate:pitch").name == "ablate:PITCH"
    assert parse_condition("audio-only").uses_tokens is False
    for bad in ["corrupt:x", "corrupt:2", "ablate:LOUD", "mystery"]:
        with pytest.raises(TokenError):
            parse_condition(bad)


def test_apply_condition_is_deterministic_and_order_independent() -> None:
    sets = random_sets(20)
    ids = [f"u{i}" for i in range(20)]
    a = apply_condition("corrupt:0.5", sets, ids, seed=7)
    b = apply_condition("corrupt:0.5", sets, ids, seed=7)
    c = apply_condition("corrupt:0.5", sets, ids, seed=8)
    assert a == b and a != c
    # the same clip gets the same draw whatever else is in the batch
    rev = apply_condition("corrupt:0.5", sets[::-1], ids[::-1], seed=7)
    assert rev[::-1] == a
    assert apply_condition("audio-only", sets, ids) == [None] * 20
    assert apply_condition("correct", sets, ids) == sets
    for cond in ["conflict", "shuffle", "shuffle-derange", "ablate:ENERGY", "invert:ENERGY"]:
        out = apply_condition(cond, sets, ids, seed=1)
        assert len(out) == 20 and all(isinstance(t, TokenSet) for t in out)


def test_all_pairs_of_ordinal_inversion() -> None:
    for concept in ("ENERGY", "BRIGHTNESS", "DYNAMICS"):
        vocab = VOCAB[concept]
        for a, b in itertools.combinations(range(5), 2):
            ta = conflict(TokenSet({concept: vocab[a]}))[concept]
            tb = conflict(TokenSet({concept: vocab[b]}))[concept]
            assert vocab.index(ta) > vocab.index(tb)  # order reverses
