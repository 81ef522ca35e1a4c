"""--scoring gives the same answers served (real HTTP server) and in-process, per method."""

from __future__ import annotations

from pathlib import Path

import pytest

from cuelab.core.errors import ModelError
from cuelab.core.models.base import Clip, LoadOptions
from cuelab.core.models.registry import load_model
from cuelab.core.models.scoring_modes import check_scoring
from cuelab.core.tasks.prompts import TaskPrompt
from tests.core.models.remote.conftest import Serve

TOKENS = [None, "ENERGY=HIGH PITCH=LOW", "ENERGY=LOW PITCH=HIGH"]


@pytest.mark.parametrize("scoring", ["auto", "continuation", "first-token"])
def test_served_and_in_process_give_the_same_label_probabilities(
    serve: Serve, qwen2_audio_dir: Path, clip: Clip, task: TaskPrompt, scoring: str
) -> None:
    _, url = serve()
    remote = load_model(f"openai:{url}", LoadOptions(scoring=scoring))
    local = load_model(f"qwen2-audio:{qwen2_audio_dir}", LoadOptions(device="cpu", scoring=scoring))
    got = remote.score_labels(clip, task, task.labels, TOKENS)
    want = local.score_labels(clip, task, task.labels, TOKENS)
    method = "continuation" if scoring == "auto" else scoring  # one default for both
    for g, w in zip(got, want):
        assert g.scoring == w.scoring == method
        assert g.label == w.label
        assert sum(w.probs.values()) == pytest.approx(1.0)
        for lab in task.labels:
            assert g.probs[lab] == pytest.approx(w.probs[lab], abs=1e-5)
    # the methods differ: first-token is not continuation in disguise
    if scoring == "first-token":
        other = load_model(f"qwen2-audio:{qwen2_audio_dir}", LoadOptions(device="cpu"))
        cont = other.score_labels(clip, task, task.labels, TOKENS[:1])[0]
        assert max(abs(cont.probs[lab] - want[0].probs[lab]) for lab in task.labels) > 1e-4
    remote.unload()


def test_generate_answers_greedily_and_parses_like_a_served_run(
    serve: Serve, qwen2_audio_dir: Path, clip: Clip, task: TaskPrompt
) -> None:
    _, url = serve()
    remote = load_model(f"openai:{url}", LoadOptions(scoring="generate"))
    local = load_model(
        f"qwen2-audio:{qwen2_audio_dir}", LoadOptions(device="cpu", scoring="generate")
    )
    got = remote.score_labels(clip, task, task.labels, TOKENS)
    want = local.score_labels(clip, task, task.labels, TOKENS)
    for g, w in zip(got, want):
        assert g.scoring == w.scoring == "generate"
        assert w.probs == {} and w.raw_output is not None
        assert (g.raw_output, g.label, g.unparsed) == (w.raw_output, w.label, w.unparsed)
        assert w.unparsed == (w.label is None)  # an unparsed answer is counted, not guessed
    assert local.describe()["scoring"] == "generate"
    remote.unload()


def test_scoring_choices_are_checked() -> None:
    assert check_scoring(None) == check_scoring("auto") == "continuation"
    assert check_scoring(" First-Token ") == "first-token"
    with pytest.raises(ModelError, match="not one of"):
        check_scoring("beam")
