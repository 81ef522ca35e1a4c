"""Prefix-cache reuse equals a full forward pass, for every ALM family (fp32)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cuelab.core.errors import ModelError
from cuelab.core.models.base import Clip, LoadOptions
from cuelab.core.models.hf_alm import AudioLMAdapter
from cuelab.core.models.registry import load_model
from cuelab.core.tasks.prompts import TaskPrompt

TOLERANCE = 1e-4  # max abs difference of summed label log-probabilities, fp32
VARIANTS = [
    None,
    "ENERGY=HIGH PITCH=LOW BRIGHTNESS=MID",
    "ENERGY=LOW PITCH=HIGH BRIGHTNESS=MID DYNAMICS=STATIC FORMANTS=MID VOICE_QUALITY=MODAL",
]
FAMILIES = ["qwen2-audio", "qwen2.5-omni", "audio-flamingo-3"]


@pytest.fixture(scope="module")
def adapters(family_dirs: dict[str, Path]) -> dict[str, AudioLMAdapter]:
    loaded = {}
    for family, folder in family_dirs.items():
        adapter = load_model(f"{family}:{folder}", LoadOptions(quant="fp32", device="cpu"))
        assert isinstance(adapter, AudioLMAdapter)
        loaded[family] = adapter
    return loaded


def _logprobs(adapter: AudioLMAdapter, clip: Clip, task: TaskPrompt, **mode) -> np.ndarray:
    adapter.prefix_reuse = mode.get("reuse", True)
    adapter.max_batch = mode.get("batch")
    adapter.prefixes.clear()
    try:
        return np.array(adapter.label_logprobs(clip, task, task.labels, VARIANTS))
    finally:
        adapter.prefix_reuse, adapter.max_batch = True, None


@pytest.mark.parametrize("family", FAMILIES)
def test_prefix_reuse_equals_full_pass(
    adapters: dict[str, AudioLMAdapter], family: str, clip: Clip, task: TaskPrompt
) -> None:
    adapter = adapters[family]
    full = _logprobs(adapter, clip, task, reuse=False)
    batched = _logprobs(adapter, clip, task, batch=64)
    sequential = _logprobs(adapter, clip, task, batch=1)
    chunked = _logprobs(adapter, clip, task, batch=2 * len(task.labels))  # 2 variants a pass
    assert full.shape == (len(VARIANTS), len(task.labels))
    assert np.all(np.isfinite(full))
    assert np.abs(batched - full).max() <= TOLERANCE
    assert np.abs(sequential - full).max() <= TOLERANCE
    assert np.abs(chunked - full).max() <= TOLERANCE
    # The token line changes the scores: the variants really are different suffixes.
    assert np.abs(full[0] - full[2]).max() > 1e-6


@pytest.mark.parametrize("family", FAMILIES)
def test_prefix_is_encoded_once_per_clip(
    adapters: dict[str, AudioLMAdapter], family: str, clip: Clip, task: TaskPrompt
) -> None:
    adapter = adapters[family]
    adapter.prefixes.clear()
    first = adapter.score_labels(clip, task, task.labels, VARIANTS[:2])
    misses = adapter.prefixes.misses
    edited = adapter.score_labels(clip, task, task.labels, ["ENERGY=MID"])
    assert adapter.prefixes.misses == misses  # the live edit reused the clip's prefix
    assert len(first) == 2 and len(edited) == 1
    for prediction in first + edited:
        assert prediction.label in task.labels
        assert sum(prediction.probs.values()) == pytest.approx(1.0)
    other = Clip(audio=clip.audio[::-1].copy(), sr=16000)
    adapter.score_labels(other, task, task.labels, [None])
    assert adapter.prefixes.misses == misses + 1


def test_processor_expansion_matches_the_cached_rows(
    adapters: dict[str, AudioLMAdapter], clip: Clip, task: TaskPrompt
) -> None:
    # The naive path tokenises the whole text through the processor; the cached path
    # splices expanded prefix ids with suffix ids. Same ids, or equality means nothing.
    adapter = adapters["qwen2-audio"]
    prompt = adapter.chat_prompt(task.render(task.labels, VARIANTS[1]))
    whole = adapter.model_inputs(prompt + "sad" + adapter.end_of_turn, clip)["input_ids"][0]
    prefix_text = adapter.head() + task.render(task.labels, None)
    prefix = adapter.model_inputs(prefix_text, clip)["input_ids"][0]
    suffix = adapter.tokenize(prompt[len(prefix_text) :] + "sad" + adapter.end_of_turn)
    assert whole.tolist() == prefix.tolist() + suffix


@pytest.mark.parametrize("family", ["qwen2-audio", "audio-flamingo-3", "qwen2.5-omni"])
def test_generation_is_deterministic(
    adapters: dict[str, AudioLMAdapter], family: str, clip: Clip, task: TaskPrompt
) -> None:
    adapter = adapters[family]
    first = adapter.generate(clip, task, "ENERGY=HIGH", max_new_tokens=6)
    assert isinstance(first, str)
    assert adapter.generate(clip, task, "ENERGY=HIGH", max_new_tokens=6) == first


def test_describe_and_unload(adapters: dict[str, AudioLMAdapter], qwen2_audio_dir: Path) -> None:
    info = adapters["qwen2-audio"].describe()
    assert info["family"] == "qwen2-audio"
    assert (info["quant"], info["device"], info["dtype"]) == ("fp32", "cpu", "float32")
    assert isinstance(info["folder_hash"], str) and len(info["folder_hash"]) == 16
    spare = load_model(f"qwen2-audio:{qwen2_audio_dir}")
    spare.unload()
    with pytest.raises(Exception, match="unloaded"):
        spare.score_labels(Clip(np.zeros(16000, np.float32)), *_task_args())


def _task_args():
    from cuelab.core.tasks.prompts import load_task

    task = load_task("ser")
    return task, task.labels, [None]


@pytest.mark.parametrize("family", ["qwen2-audio", "qwen2.5-omni", "audio-flamingo-3"])
def test_length_normalised_scoring_is_the_mean_per_label_token(
    family: str, family_dirs: dict[str, Path], clip: Clip, task: TaskPrompt
) -> None:
    folder = family_dirs[family]
    mean = load_model(f"{family}:{folder}", LoadOptions(device="cpu", label_score="mean"))
    assert mean.describe()["label_score"] == "mean"
    texts = [None, "ENERGY=HIGH PITCH=LOW"]
    sums = mean.label_logprobs(clip, task, task.labels, texts)  # type: ignore[attr-defined]
    tok = mean.tokenizer  # type: ignore[attr-defined]
    for preds, row in zip(mean.score_labels(clip, task, task.labels, texts), sums):
        # independent count: the label's own tokens plus the end of turn
        n = [len(tok(lab, add_special_tokens=False)["input_ids"]) + 1 for lab in task.labels]
        per_token = np.array(row) / np.array(n)
        want = np.exp(per_token - per_token.max())
        want /= want.sum()
        assert preds.scoring == "continuation-mean"
        assert [preds.probs[lab] for lab in task.labels] == pytest.approx(list(want), abs=1e-9)
    with pytest.raises(ModelError, match="label score 'max'"):
        load_model(f"{family}:{folder}", LoadOptions(device="cpu", label_score="max"))
