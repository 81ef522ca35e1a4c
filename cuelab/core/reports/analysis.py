"""The paper's statistics: Δ vs audio-only, test families with Holm, pooled seeds, Spearman.

:mod:`cuelab.core.reports.emotion` calls these; the definitions are in
README "Analysis" and docs/analysis.md:

* Δ UAR of every token condition against ``audio-only`` from a *paired*
  speaker bootstrap (both UARs on the same replicate); the ``seed=mean`` row
  takes the mean over seeds on each replicate.
* tests.csv rows carry a ``family``: ``aligned-vs-perturbed`` (correct against
  conflict, shuffle and the strongest ``corrupt:P``), ``perturbed-vs-audio-only``
  (those three against audio-only), ``other`` (every remaining pair) and
  ``per-seed`` (one seed of a seeded condition: shown, not in any family).
  A seeded condition is tested once on its pooled predictions (seed cell
  ``pooled``: the per-utterance majority over seeds). Holm runs within each
  (model, family); ``holm="all"`` gives the single per-model family of the
  per-condition, per-seed tests that CueLab used before.
* Spearman's rho over the corruption grid uses per-level means of UAR (seeds
  averaged); the ``per-seed`` variant (seeds as repeated levels) is kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from cuelab.core import metrics
from cuelab.core.cues.interventions import SHUFFLE_KINDS, parse_condition
from cuelab.core.metrics.reliance import majority_vote, paired_delta
from cuelab.core.reports import stats
from cuelab.core.reports.stats import AUDIO_ONLY, CORRECT, MEAN_SEED, Group, SpearmanRow, TestRow

HOLM_CHOICES = ("family", "all")
POOLED_SEED = "pooled"
FAMILIES = ("aligned-vs-perturbed", "perturbed-vs-audio-only", "other")
PER_SEED = "per-seed"
SPEARMAN_VARIANTS = ("level-means", "per-seed")

Key = tuple[str, str, str]


def _seeds_of(keys: Sequence[Key]) -> dict[tuple[str, str], list[str]]:
    """(model, condition) → its seeds, for seeded conditions, in key order."""
    out: dict[tuple[str, str], list[str]] = {}
    for m, c, s in keys:
        if s:
            out.setdefault((m, c), []).append(s)
    return out


def _paired_lists(
    base: Group, others: Sequence[Group]
) -> tuple[list[str], list[str | None], list[list[str | None]], list[str]]:
    """Reference, base predictions, each other's predictions and speakers on the common items."""
    common = set(base.items)
    for g in others:
        common &= set(g.items)
    ids = sorted(common)
    y = [base.items[u][0] for u in ids]
    speakers = [base.items[u][2] or u for u in ids]
    return (
        y,
        [base.items[u][1] for u in ids],
        [[g.items[u][1] for u in ids] for g in others],
        speakers,
    )


def delta_cells(
    groups: dict[Key, Group], keys: Sequence[Key], n_resamples: int, seed: int
) -> dict[Key, metrics.ConfidenceInterval]:
    """Δ UAR [CI] vs audio-only per (model, condition, seed), plus ``seed=mean`` rows."""
    out: dict[Key, metrics.ConfidenceInterval] = {}
    seeded = _seeds_of(keys)
    for key in keys:
        model, condition, _ = key
        base = groups.get((model, AUDIO_ONLY, ""))
        if base is None or condition == AUDIO_ONLY:
            continue
        y, b, others, spk = _paired_lists(base, [groups[key]])
        if y:
            out[key] = paired_delta(y, b, others, groups=spk, n_resamples=n_resamples, seed=seed)
    for (model, condition), seeds in seeded.items():
        base = groups.get((model, AUDIO_ONLY, ""))
        if base is None or condition == AUDIO_ONLY or len(seeds) < 2:
            continue
        y, b, others, spk = _paired_lists(base, [groups[(model, condition, s)] for s in seeds])
        if y:
            out[(model, condition, MEAN_SEED)] = paired_delta(
                y, b, others, groups=spk, n_resamples=n_resamples, seed=seed
            )
    return out


def pooled_group(
    groups: dict[Key, Group], model: str, condition: str, seeds: Sequence[str]
) -> Group:
    """The seeds of a condition pooled: per utterance the majority answer (lowest seed on a tie)."""
    parts = [groups[(model, condition, s)] for s in sorted(seeds, key=int)]
    common = sorted(set.intersection(*(set(g.items) for g in parts)))
    votes = majority_vote([[g.items[u][1] for u in common] for g in parts])
    pooled = Group(model, condition, POOLED_SEED)
    for u, vote in zip(common, votes):
        label, _, speaker = parts[0].items[u]
        pooled.items[u] = (label, vote, speaker)
    return pooled


def perturbed_conditions(conditions: Sequence[str]) -> set[str]:
    """conflict, the shuffle conditions and the strongest ``corrupt:P`` of a run."""
    out: set[str] = set()
    strongest: tuple[float, str] | None = None
    for name in conditions:
        cond = parse_condition(name)
        if cond.kind == "conflict" or cond.kind in SHUFFLE_KINDS:
            out.add(name)
        elif cond.kind == "corrupt" and (strongest is None or cond.p > strongest[0]):
            strongest = (cond.p, name)
    if strongest is not None:
        out.add(strongest[1])
    return out


def family_of(ref: str, condition: str, seed: str, perturbed: set[str]) -> str:
    """The Holm family of one test row (see the module docstring)."""
    if seed and seed != POOLED_SEED:
        return PER_SEED
    if condition in perturbed:
        if ref == CORRECT:
            return "aligned-vs-perturbed"
        if ref == AUDIO_ONLY:
            return "perturbed-vs-audio-only"
    return "other"


def family_tests(
    groups: dict[Key, Group], keys: Sequence[Key], holm: str = "family"
) -> list[TestRow]:
    """McNemar rows with their family: per seed, pooled over seeds, Holm as chosen.

    The per-seed and seed-free rows (and their ``p_holm`` under ``holm="all"``)
    are exactly those of :func:`cuelab.core.reports.stats.paired_tests`; each
    seeded condition adds a ``pooled`` row per reference after its seeds.
    """
    if holm not in HOLM_CHOICES:
        raise ValueError(f"holm must be one of {HOLM_CHOICES}, got {holm!r}")
    base = stats.paired_tests(groups, keys)
    seeded = _seeds_of(keys)
    perturbed = perturbed_conditions(list(dict.fromkeys(k[1] for k in keys)))
    rows: list[TestRow] = []
    for i, t in enumerate(base):
        row = replace(t, family=family_of(t.condition_a, t.condition_b, t.seed, perturbed))
        rows.append(row if holm == "all" else replace(row, p_holm=math.nan))
        nxt = base[i + 1] if i + 1 < len(base) else None
        seeds = seeded.get((t.model, t.condition_b))
        last = nxt is None or (nxt.model, nxt.condition_b) != (t.model, t.condition_b)
        if seeds and last:
            pooled = pooled_group(groups, t.model, t.condition_b, seeds)
            for ref in (AUDIO_ONLY, CORRECT):
                if (t.model, ref, "") not in groups or ref == t.condition_b:
                    continue
                ok_a, ok_b = stats._paired(groups[(t.model, ref, "")], pooled)
                if not ok_a:
                    continue
                res = metrics.mcnemar_exact(ok_a, ok_b)
                fam = family_of(ref, t.condition_b, POOLED_SEED, perturbed)
                rows.append(TestRow(t.model, ref, t.condition_b, POOLED_SEED, len(ok_a),
                                    res.n01, res.n10, res.p_value, math.nan, fam))  # fmt: skip
    if holm == "all":
        return rows
    adjusted: dict[int, float] = {}
    for model in dict.fromkeys(r.model for r in rows):
        if stats.is_oracle(model):
            continue
        for fam in FAMILIES:
            idx = [i for i, r in enumerate(rows) if r.model == model and r.family == fam]
            if idx:
                adjusted.update(zip(idx, metrics.holm([rows[i].p_mcnemar for i in idx]).tolist()))
    return [replace(r, p_holm=adjusted.get(i, math.nan)) for i, r in enumerate(rows)]


#: Up to this many points the exact permutation p of Spearman's rho is enumerated (8! pairings).
EXACT_SPEARMAN_MAX = 8


def exact_spearman_p(x: Sequence[float], y: Sequence[float]) -> float:
    """Two-sided exact permutation p of Spearman's rho (NaN above ``EXACT_SPEARMAN_MAX`` points).

    Over the 4-6 level means of a corruption grid, scipy's t-approximation is
    far off (rho = ±1 gives p = 0); the exact p enumerates every pairing of the
    values with the levels (scipy's ``permutation_test``), so it is never below
    2 / n!.
    """
    if len(x) > EXACT_SPEARMAN_MAX or len(x) < 3 or len(set(y)) < 2 or len(set(x)) < 2:
        return math.nan
    import numpy as np
    from scipy.stats import permutation_test, rankdata

    rx = rankdata(np.asarray(x, dtype=float))
    rx = (rx - rx.mean()) / np.linalg.norm(rx - rx.mean())

    def rho(v: np.ndarray, axis: int = -1) -> np.ndarray:
        r = rankdata(v, axis=axis)
        r = r - r.mean(axis=axis, keepdims=True)
        return np.sum(r * rx, axis=axis) / np.linalg.norm(r, axis=axis)

    res = permutation_test(
        (np.asarray(y, dtype=float),), rho, permutation_type="pairings",
        vectorized=True, n_resamples=np.inf, alternative="two-sided",
    )  # fmt: skip
    return float(min(1.0, res.pvalue))


def spearman_variants(
    rows: Sequence[stats.SummaryRow], models: Sequence[str]
) -> list[tuple[str, SpearmanRow]]:
    """(variant, row): ``level-means`` (UAR averaged over seeds per level), then ``per-seed``."""
    out: list[tuple[str, SpearmanRow]] = []
    per_seed = {r.model: r for r in stats.spearman_rows(rows, models)}
    for model in models:
        points = stats.corruption_levels(rows, model)
        levels = sorted({p for p, _ in points})
        if len(levels) >= 3:
            means = [float(sum(r.uar for q, r in points if q == p) / sum(1 for q, _ in points if q == p))
                     for p in levels]  # fmt: skip
            res = metrics.spearman(levels, means)
            text = ";".join(f"{p:g}" for p in levels)
            exact = exact_spearman_p(levels, means) if math.isfinite(res.rho) else math.nan
            out.append(("level-means", SpearmanRow(model, len(levels), text, res.rho, res.p_value,
                                                   exact)))  # fmt: skip
        if model in per_seed:
            row = per_seed[model]
            exact = math.nan
            if math.isfinite(row.rho):
                points = stats.corruption_levels(rows, model)
                exact = exact_spearman_p([p for p, _ in points], [r.uar for _, r in points])
            out.append(("per-seed", replace(row, p_exact=exact)))
    return out


def analysis_choices(holm: str, calibrate: Sequence[str]) -> dict[str, Any]:
    """What run.json records under ``analysis`` so a reader knows how the tables were made."""
    return {
        "holm": holm,
        "holm_families": list(FAMILIES) if holm == "family" else ["all tests of a model"],
        "seed_pooling": "majority over seeds per utterance; tie: lowest seed's answer",
        "spearman": "level-means (per-seed also written)",
        "delta": "paired speaker bootstrap vs audio-only",
        "calibrate": list(calibrate),
    }
