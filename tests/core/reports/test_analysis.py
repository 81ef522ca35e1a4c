"""The paper's statistics recomputed independently: paired Δ, Holm per family, pooled seeds."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest, spearmanr
from statsmodels.stats.multitest import multipletests

from cuelab.core.reports.build import build_report
from cuelab.core.runs import run_eval
from tests.core.runs.test_emotion_runs import config, make_manifest
from tests.helpers import num
from tests.helpers import read_csv as read

MODELS = ["reference", "oracle:-"]
SEEDS = "012"
B = 200


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    manifest = make_manifest(tmp_path_factory.mktemp("data"))
    out = tmp_path_factory.mktemp("runs") / "r"
    run_eval(config(manifest, out, models=MODELS, seeds=[0, 1, 2], bootstrap=B))
    build_report(out, plots=False)
    return out


def by_group(run: Path) -> dict[tuple[str, str, str], dict[str, dict[str, str]]]:
    out: dict[tuple[str, str, str], dict[str, dict[str, str]]] = {}
    for r in read(run / "predictions.csv"):
        out.setdefault((r["model"], r["condition"], r["seed"]), {})[r["utt_id"]] = r
    return out


def np_uar(y: np.ndarray, p: np.ndarray) -> float:
    """UAR written out: mean over reference classes of hits / support."""
    return float(np.mean([np.mean(p[y == c] == c) for c in np.unique(y)]))


def np_paired_bootstrap(
    y: list[str], preds: list[list[str]], spk: list[str], seed: int = 0
) -> tuple[float, float, float]:
    """Δ = mean UAR of preds[1:] minus UAR of preds[0]; whole speakers drawn per replicate."""
    ya = np.array(y)
    pa = [np.array(p) for p in preds]

    def delta(idx: np.ndarray) -> float:
        return float(
            np.mean([np_uar(ya[idx], p[idx]) for p in pa[1:]]) - np_uar(ya[idx], pa[0][idx])
        )

    speakers = list(dict.fromkeys(spk))
    members = [np.flatnonzero(np.array(spk) == s) for s in speakers]
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(B):
        pick = rng.integers(0, len(speakers), size=len(speakers))
        reps.append(delta(np.concatenate([members[i] for i in pick])))
    low, high = np.percentile(reps, [2.5, 97.5])
    return delta(np.arange(len(y))), float(low), float(high)


def test_delta_is_a_paired_speaker_bootstrap(run: Path) -> None:
    g = by_group(run)
    summary = {(r["model"], r["condition"], r["seed"]): r for r in read(run / "summary.csv")}
    base = g[("reference", "audio-only", "")]
    ids = sorted(base)
    y = [base[u]["label"] for u in ids]
    spk = [base[u]["speaker"] for u in ids]
    base_pred = [base[u]["prediction"] for u in ids]
    checked = 0
    for (model, cond, seed), row in summary.items():
        if model != "reference":
            continue
        if cond == "audio-only":
            assert row["delta_uar"] == row["delta_ci_low"] == row["delta_ci_high"] == ""
            continue
        seeds = list(SEEDS) if seed == "mean" else [seed]
        others = [[g[(model, cond, s)][u]["prediction"] for u in ids] for s in seeds]
        want = np_paired_bootstrap(y, [base_pred, *others], spk)
        got = (num(row["delta_uar"]), num(row["delta_ci_low"]), num(row["delta_ci_high"]))
        assert got == pytest.approx(want, abs=1e-6), (cond, seed)
        # Δ is the difference of the rows' own UARs
        assert got[0] == pytest.approx(
            num(row["uar"]) - num(summary[(model, "audio-only", "")]["uar"]), abs=1e-6
        )
        checked += 1
    assert checked == 2 + 4 * 4  # correct, conflict; 4 seeded conditions x (3 seeds + mean)


def majority(answers: list[str]) -> str:
    counts = Counter(answers)
    top = max(counts.values())
    return next(a for a in answers if counts[a] == top)  # first seed among the tied


def test_holm_within_each_model_and_family_and_pooled_seeds(run: Path) -> None:
    g = by_group(run)
    tests = read(run / "tests.csv")
    fam = {(t["model"], t["condition_a"], t["condition_b"], t["seed"]): t["family"] for t in tests}
    for model in MODELS:
        assert fam[(model, "correct", "conflict", "")] == "aligned-vs-perturbed"
        assert fam[(model, "correct", "shuffle", "pooled")] == "aligned-vs-perturbed"
        assert fam[(model, "correct", "corrupt:1", "pooled")] == "aligned-vs-perturbed"
        assert fam[(model, "audio-only", "conflict", "")] == "perturbed-vs-audio-only"
        assert fam[(model, "audio-only", "corrupt:1", "pooled")] == "perturbed-vs-audio-only"
        assert fam[(model, "audio-only", "correct", "")] == "other"
        assert fam[(model, "audio-only", "corrupt:0.2", "pooled")] == "other"
        assert fam[(model, "correct", "shuffle", "1")] == "per-seed"
    for t in tests:
        a = g[(t["model"], t["condition_a"], "")]
        if t["seed"] == "pooled":
            answers = {
                u: majority([g[(t["model"], t["condition_b"], s)][u]["prediction"] for s in SEEDS])
                for u in a
            }
        else:
            answers = {u: g[(t["model"], t["condition_b"], t["seed"])][u]["prediction"] for u in a}
        ok_a = np.array([a[u]["prediction"] == a[u]["label"] for u in sorted(a)])
        ok_b = np.array([answers[u] == a[u]["label"] for u in sorted(a)])
        n01, n10 = int(np.sum(~ok_a & ok_b)), int(np.sum(ok_a & ~ok_b))
        p = 1.0 if n01 + n10 == 0 else min(1.0, binomtest(min(n01, n10), n01 + n10).pvalue)
        assert (int(t["n01"]), int(t["n10"])) == (n01, n10)
        assert num(t["p_mcnemar"]) == pytest.approx(p, abs=1e-6)
    reference = [t for t in tests if t["model"] == "reference"]
    for family in ("aligned-vs-perturbed", "perturbed-vs-audio-only", "other"):
        mine = [t for t in reference if t["family"] == family]
        want = multipletests([num(t["p_mcnemar"]) for t in mine], method="holm")[1]
        assert [num(t["p_holm"]) for t in mine] == pytest.approx(list(want), abs=1e-6)
    assert len([t for t in reference if t["family"] == "aligned-vs-perturbed"]) == 3
    assert all(t["p_holm"] == "" for t in tests if t["family"] == "per-seed")
    assert all(t["p_holm"] == "" for t in tests if t["model"] == "oracle:-")
    analysis = json.loads((run / "run.json").read_text())["analysis"]
    assert analysis["holm"] == "family"


def test_spearman_uses_level_means_and_names_the_per_seed_variant(run: Path) -> None:
    summary = {(r["model"], r["condition"], r["seed"]): r for r in read(run / "summary.csv")}
    rows = {r["variant"]: r for r in read(run / "spearman.csv") if r["model"] == "reference"}
    levels = [0.0, 0.2, 0.6, 1.0]
    means = [num(summary[("reference", "correct", "")]["uar"])] + [
        np.mean([num(summary[("reference", f"corrupt:{p:g}", s)]["uar"]) for s in SEEDS])
        for p in levels[1:]
    ]
    res = spearmanr(levels, means)
    assert rows["level-means"]["n_points"] == "4"
    assert num(rows["level-means"]["rho"]) == pytest.approx(res.statistic, abs=1e-6)
    assert num(rows["level-means"]["p"]) == pytest.approx(res.pvalue, abs=1e-6)
    assert rows["per-seed"]["n_points"] == "10"


def test_spearman_over_few_levels_also_gives_the_exact_permutation_p(run: Path) -> None:
    # 4 level means: scipy's t-approximation is far off (p = 0 for rho = ±1); the exact
    # p enumerates all 4! pairings (two-sided: twice the smaller tail, capped at 1)
    from itertools import permutations

    summary = {(r["model"], r["condition"], r["seed"]): r for r in read(run / "summary.csv")}
    rows = {r["variant"]: r for r in read(run / "spearman.csv") if r["model"] == "reference"}
    levels = [0.0, 0.2, 0.6, 1.0]
    means = [num(summary[("reference", "correct", "")]["uar"])] + [
        np.mean([num(summary[("reference", f"corrupt:{p:g}", s)]["uar"]) for s in SEEDS])
        for p in levels[1:]
    ]
    rho = spearmanr(levels, means).statistic
    null = np.array([spearmanr(levels, perm).statistic for perm in permutations(means)])
    want = min(1.0, 2 * min(np.mean(null >= rho - 1e-12), np.mean(null <= rho + 1e-12)))
    assert num(rows["level-means"]["p_exact"]) == pytest.approx(want, abs=1e-6)
    assert want >= 2 / 24  # never below one pairing in each tail
    assert rows["per-seed"]["p_exact"] == ""  # 10 points: 10! pairings, not enumerated
