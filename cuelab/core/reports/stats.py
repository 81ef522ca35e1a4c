"""The statistics of a run, computed from its predictions table.

Items are grouped by (model, condition, seed) and sorted by utterance id
before any computation, so a result does not depend on row order: a merged
sharded run gives the same numbers as the unsharded one, bootstrap included.
Unparsed answers (empty prediction cells) are wrong and counted. Rows with
no reference label are left out of every statistic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from cuelab.core import metrics
from cuelab.core.cues.interventions import parse_condition

AUDIO_ONLY = "audio-only"
CORRECT = "correct"
MEAN_SEED = "mean"


@dataclass
class Group:
    """The items of one (model, condition, seed), keyed by utterance id."""

    model: str
    condition: str
    seed: str
    items: dict[str, tuple[str, str | None, str]] = field(default_factory=dict)

    def arrays(self) -> tuple[list[str], list[str], list[str | None], list[str]]:
        """utt ids, references, predictions (None = unparsed) and speakers, by utt id."""
        ids = sorted(self.items)
        return (
            ids,
            [self.items[u][0] for u in ids],
            [self.items[u][1] for u in ids],
            [self.items[u][2] or u for u in ids],  # no speaker: the clip is its own cluster
        )


@dataclass(frozen=True)
class SummaryRow:
    """One row of summary.csv."""

    model: str
    condition: str
    seed: str
    n: int
    uar: float
    uar_ci_low: float
    uar_ci_high: float
    wa: float
    unparsed: float
    recalls: dict[str, float]
    ci_method: str
    n_speakers: int = 0
    ci_note: str = ""


#: Below this many speakers a speaker-clustered bootstrap interval is flagged in ``ci_note``.
MIN_CI_SPEAKERS = 5


def ci_note(n_speakers: int) -> str:
    """The warning for an interval resampled from too few speakers ("" when enough)."""
    if n_speakers >= MIN_CI_SPEAKERS:
        return ""
    return (
        f"only {n_speakers} speaker(s): the interval resamples {n_speakers} per-speaker "
        "clusters and is not a reliable 95 % CI"
    )


@dataclass(frozen=True)
class TestRow:
    """One paired McNemar test of tests.csv (A is the reference condition)."""

    model: str
    condition_a: str
    condition_b: str
    seed: str
    n: int
    n01: int
    n10: int
    p_mcnemar: float
    p_holm: float = math.nan
    family: str = ""


@dataclass(frozen=True)
class SpearmanRow:
    """Spearman's rho of UAR over the corruption grid of one model."""

    model: str
    n_points: int
    levels: str
    rho: float
    p: float
    #: exact permutation p over all pairings (NaN when there are too many to enumerate)
    p_exact: float = math.nan


def group_rows(
    rows: Sequence[tuple[str, str, str, str, str, str, str]],
) -> dict[tuple[str, str, str], Group]:
    """Group (utt_id, speaker, label, model, condition, seed, prediction) tuples."""
    groups: dict[tuple[str, str, str], Group] = {}
    for utt, speaker, label, model, condition, seed, pred in rows:
        if not label:
            continue
        g = groups.setdefault((model, condition, seed), Group(model, condition, seed))
        g.items[utt] = (label, pred or None, speaker)
    return groups


def ordered_keys(
    groups: dict[tuple[str, str, str], Group], models: Sequence[str], conditions: Sequence[str]
) -> list[tuple[str, str, str]]:
    """Group keys in configuration order (models, conditions, numeric seeds)."""

    def rank(key: tuple[str, str, str]) -> tuple[int, int, float, str]:
        m, c, s = key
        mi = models.index(m) if m in models else len(models)
        ci = conditions.index(c) if c in conditions else len(conditions)
        return mi, ci, float(s) if s.lstrip("-").isdigit() else -math.inf, m + c

    return sorted(groups, key=rank)


#: ``ci_method`` when no clip has a speaker: clips are resampled as if independent.
CLIP_BOOTSTRAP = "clip-bootstrap"
NO_SPEAKER_NOTE = (
    "no speaker column: clips are resampled as independent, which overstates the precision "
    "when a speaker recorded several clips; add speakers (cuelab import folders --speaker-regex)"
)


def speaker_ci(speakers: Sequence[str]) -> tuple[str, int, str]:
    """``(ci_method, n_speakers, ci_note)`` for the clips' speaker cells ("" = none).

    A clip without a speaker is resampled as its own cluster; when no clip has one, the
    interval is a plain clip bootstrap and says so, instead of counting every clip as a
    "speaker" (what a folder import without a speaker pattern used to report).
    """
    known = {s for s in speakers if s}
    missing = sum(1 for s in speakers if not s)
    if speakers and not known:
        return CLIP_BOOTSTRAP, 0, NO_SPEAKER_NOTE
    note = ci_note(len(known))
    if missing:
        extra = f"{missing} clip(s) have no speaker and are resampled as their own clusters"
        note = f"{note}; {extra}" if note else extra
    return "speaker-bootstrap", len(known), note


def score_group(g: Group, labels: Sequence[str], n_resamples: int, seed: int) -> SummaryRow:
    """n, UAR with its speaker-clustered bootstrap CI, WA, unparsed count, recalls."""
    _, y_true, y_pred, speakers = g.arrays()
    scores = metrics.classification_scores(y_true, y_pred)
    t_idx, p_idx = metrics.encode_labels(y_true, y_pred)
    ci = metrics.bootstrap_ci(
        metrics.uar, t_idx, p_idx, groups=speakers, n_resamples=n_resamples, seed=seed
    )
    recalls = {lab: float(scores.recalls.get(lab, math.nan)) for lab in labels}
    method, n_speakers, note = speaker_ci([item[2] for item in g.items.values()])
    return SummaryRow(
        g.model,
        g.condition,
        g.seed,
        scores.n,
        scores.uar,
        ci.low,
        ci.high,
        scores.wa,
        scores.unparsed,
        recalls,
        method,
        n_speakers,
        note,
    )


def seed_means(rows: Sequence[SummaryRow], labels: Sequence[str]) -> list[SummaryRow]:
    """``seed=mean`` rows (t-interval over seeds) for conditions run with several seeds."""
    by_cond: dict[tuple[str, str], list[SummaryRow]] = {}
    for r in rows:
        if r.seed:
            by_cond.setdefault((r.model, r.condition), []).append(r)
    out = []
    for (model, condition), rs in by_cond.items():
        if len(rs) < 2:
            continue
        agg = metrics.aggregate_seeds([r.uar for r in rs])
        recalls = {lab: float(np.mean([r.recalls[lab] for r in rs])) for lab in labels}
        out.append(
            SummaryRow(
                model,
                condition,
                MEAN_SEED,
                rs[0].n,
                agg.mean,
                # a t-interval over few seeds can leave [0, 1]; UAR cannot
                max(0.0, agg.ci_low),
                min(1.0, agg.ci_high),
                float(np.mean([r.wa for r in rs])),
                float(np.mean([r.unparsed for r in rs])),
                recalls,
                "t-over-seeds",
                rs[0].n_speakers,
                "" if len(rs) >= 3 else f"only {len(rs)} seeds: a t-interval over 2 values",
            )
        )
    return out


def summarise(
    groups: dict[tuple[str, str, str], Group],
    keys: Sequence[tuple[str, str, str]],
    labels: Sequence[str],
    n_resamples: int,
    seed: int,
) -> list[SummaryRow]:
    """Per-seed rows in ``keys`` order, each condition followed by its seed-mean row."""
    per_seed = [score_group(groups[k], labels, n_resamples, seed) for k in keys]
    means = {(r.model, r.condition): r for r in seed_means(per_seed, labels)}
    out: list[SummaryRow] = []
    for i, r in enumerate(per_seed):
        out.append(r)
        last = i + 1 == len(per_seed) or (per_seed[i + 1].model, per_seed[i + 1].condition) != (
            r.model,
            r.condition,
        )
        if last and (r.model, r.condition) in means:
            out.append(means[(r.model, r.condition)])
    return out


def _paired(a: Group, b: Group) -> tuple[list[bool], list[bool]]:
    common = sorted(set(a.items) & set(b.items))
    ok_a = [a.items[u][1] == a.items[u][0] for u in common]
    ok_b = [b.items[u][1] == b.items[u][0] for u in common]
    return ok_a, ok_b


def paired_tests(
    groups: dict[tuple[str, str, str], Group], keys: Sequence[tuple[str, str, str]]
) -> list[TestRow]:
    """Exact McNemar of every condition against audio-only and against correct.

    One test per model, condition and seed. Holm's correction family is one
    model's tests in this run, so adding a model never changes another model's
    ``p_holm``; the oracle (always right) is no family and gets no ``p_holm``.
    """
    tests: list[TestRow] = []
    for model, condition, seed in keys:
        for ref in (AUDIO_ONLY, CORRECT):
            if condition in (AUDIO_ONLY, ref) or (model, ref, "") not in groups:
                continue
            ok_a, ok_b = _paired(groups[(model, ref, "")], groups[(model, condition, seed)])
            if not ok_a:
                continue
            res = metrics.mcnemar_exact(ok_a, ok_b)
            tests.append(
                TestRow(model, ref, condition, seed, len(ok_a), res.n01, res.n10, res.p_value)
            )
    adjusted: dict[int, float] = {}
    for model in dict.fromkeys(t.model for t in tests):
        if is_oracle(model):
            continue
        family = [i for i, t in enumerate(tests) if t.model == model]
        corrected = metrics.holm([tests[i].p_mcnemar for i in family]).tolist()
        adjusted.update(zip(family, corrected))
    return [
        TestRow(
            t.model,
            t.condition_a,
            t.condition_b,
            t.seed,
            t.n,
            t.n01,
            t.n10,
            t.p_mcnemar,
            float(adjusted.get(i, math.nan)),
        )
        for i, t in enumerate(tests)
    ]


def is_oracle(spec: str) -> bool:
    """True for the oracle's model spec (``oracle:-``)."""
    return spec.strip().lower().split(":", 1)[0] == "oracle"


def corruption_levels(rows: Sequence[SummaryRow], model: str) -> list[tuple[float, SummaryRow]]:
    """(p, row) of one model's per-seed rows on the corruption grid, ``correct`` as p = 0."""
    out = []
    for r in rows:
        if r.model != model or r.seed == MEAN_SEED:
            continue
        cond = parse_condition(r.condition)
        if cond.kind == "corrupt":
            out.append((cond.p, r))
        elif cond.kind == CORRECT:
            out.append((0.0, r))
    return sorted(out, key=lambda x: x[0])


def spearman_rows(rows: Sequence[SummaryRow], models: Sequence[str]) -> list[SpearmanRow]:
    """Spearman's rho of UAR against p per model (seeds as repeated levels)."""
    out = []
    for model in models:
        points = corruption_levels(rows, model)
        levels = sorted({p for p, _ in points})
        if len(points) < 3 or len(levels) < 2:
            continue
        res = metrics.spearman([p for p, _ in points], [r.uar for _, r in points])
        text = ";".join(f"{p:g}" for p in levels)
        out.append(SpearmanRow(model, len(points), text, res.rho, res.p_value))
    return out


def confusion_long(g: Group, labels: Sequence[str]) -> list[tuple[str, str, str, str, str, int]]:
    """Long-form confusion counts (label × prediction, plus an ``unparsed`` column)."""
    _, y_true, y_pred, _ = g.arrays()
    mat = metrics.confusion_matrix(y_true, y_pred, labels, include_other=True)
    columns = [*labels, "unparsed"]
    return [
        (g.model, g.condition, g.seed, labels[i], columns[j], int(mat[i, j]))
        for i in range(len(labels))
        for j in range(len(columns))
    ]
