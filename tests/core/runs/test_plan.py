"""The run plan: paper-exact shuffles within splits, and what each condition did to the tokens."""

from __future__ import annotations

import numpy as np
import pytest

from cuelab.core.cues.tokens import CONCEPTS
from cuelab.core.runs import RunConfig
from cuelab.core.runs.plan import VariantPlan
from tests.core.cues.test_interventions import random_sets

CONDITIONS = ("correct", "shuffle", "shuffle-derange", "corrupt:0.5", "corrupt-change:0.5",
              "conflict", "ablate:PITCH")  # fmt: skip


def _plan(splits: list[str] | None, n: int = 40) -> VariantPlan:
    config = RunConfig(manifest="m.csv", models=("reference",), conditions=CONDITIONS,
                       out="o", seeds=(0, 1))  # fmt: skip
    return VariantPlan(config, [f"u{i}" for i in range(n)], random_sets(n, seed=9), splits)


def _changed(plan: VariantPlan, condition: str, seed: int | None) -> float:
    """An independent count: token positions that differ from the clip's own set."""
    diffs = []
    for i, own in enumerate(plan.token_sets):
        got = plan.tokens(i, condition, seed)
        assert got is not None
        diffs += [got.to_dict().get(c) != own[c] for c in CONCEPTS]
    return float(np.mean(diffs))


def test_statistics_recompute_independently() -> None:
    plan = _plan(None)
    stats = plan.statistics()
    assert set(stats) == set(CONDITIONS)
    assert stats["correct"][""]["change_rate"] == 0.0 and stats["correct"][""]["same_tokens"] == 40
    assert stats["ablate:PITCH"][""]["change_rate"] == pytest.approx(1 / 6)
    for cond in ("shuffle", "shuffle-derange", "corrupt:0.5", "corrupt-change:0.5"):
        for seed in (0, 1):
            entry = stats[cond][str(seed)]
            assert entry["change_rate"] == pytest.approx(_changed(plan, cond, seed))
    # the paper's corruption changes fewer positions than the always-change variant
    paper = np.mean([stats["corrupt:0.5"][s]["change_rate"] for s in ("0", "1")])
    change = np.mean([stats["corrupt-change:0.5"][s]["change_rate"] for s in ("0", "1")])
    assert paper < change
    for seed in (0, 1):
        source = plan.shuffle_source[("shuffle", seed)]
        own = sum(j == i for i, j in enumerate(source))
        assert stats["shuffle"][str(seed)]["own"] == own
        assert stats["shuffle-derange"][str(seed)]["own"] == 0


def test_a_shuffle_without_a_split_stays_within_each_split() -> None:
    splits = ["train"] * 25 + ["test"] * 15
    plan = _plan(splits)
    for (condition, _seed), source in plan.shuffle_source.items():
        assert sorted(source) == list(range(40))
        assert all(splits[j] == splits[i] for i, j in enumerate(source)), condition
    assert len(plan.notes) == 1 and "within each of the manifest's 2 splits" in plan.notes[0]
    assert _plan(["train"] * 40).notes == []  # one split: nothing to say


def test_feature_progress_is_reported_per_clip(tmp_path) -> None:
    """The features stage advances once per clip, not once per chunk of 256."""
    from cuelab.core.cues.feature_cache import FeatureCache
    from cuelab.core.cues.norms import default_norms
    from cuelab.core.datasets import read_manifest
    from cuelab.core.jobs import JobControl, ProgressInfo
    from cuelab.core.runs.plan import compute_token_sets
    from tests.core.runs.test_emotion_runs import make_manifest

    rows = read_manifest(make_manifest(tmp_path / "data")).rows[:5]
    seen: list[ProgressInfo] = []
    control = JobControl(on_progress=seen.append)
    sets = compute_token_sets(rows, default_norms(), FeatureCache(tmp_path / "cache"), control, 1)
    assert all(s is not None for s in sets)
    done = [p.done for p in seen if p.message == "features"]
    assert done == [0, 1, 2, 3, 4, 5]
    assert all(p.total == 5 for p in seen)
