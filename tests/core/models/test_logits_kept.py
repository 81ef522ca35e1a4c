"""Vocabulary logits are computed only where they are read, and nothing read changes.

Every in-process ALM family (and Qwen2-Audio with the released 151k-word Qwen2
vocabulary) is scored with the projection limited to the read positions and
compared with a plain transformers recomputation that projects every position.
A hook on ``lm_head`` counts the positions it really projects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cuelab.core.models import tiny
from cuelab.core.models.base import Clip, LoadOptions
from cuelab.core.models.hf_alm import AudioLMAdapter
from cuelab.core.models.registry import load_model
from cuelab.core.models.scoring import label_rows, probabilities
from cuelab.core.tasks.prompts import TaskPrompt

VARIANTS = [None, "ENERGY=HIGH PITCH=LOW BRIGHTNESS=MID", "ENERGY=LOW PITCH=HIGH"]


@pytest.fixture(scope="module")
def real_vocab_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny.build_qwen2_audio(tmp_path_factory.mktemp("qwen2-audio-real"), real_vocab=True)


@pytest.fixture(scope="module")
def folders(family_dirs: dict[str, Path], real_vocab_dir: Path) -> dict[str, tuple[str, Path]]:
    named = {name: (name, folder) for name, folder in family_dirs.items()}
    named["qwen2-audio-real-vocab"] = ("qwen2-audio", real_vocab_dir)
    return named


CASES = ["qwen2-audio", "qwen2.5-omni", "audio-flamingo-3", "qwen2-audio-real-vocab"]


def _load(folders: dict[str, tuple[str, Path]], case: str) -> AudioLMAdapter:
    family, folder = folders[case]
    adapter = load_model(f"{family}:{folder}", LoadOptions(quant="fp32", device="cpu"))
    assert isinstance(adapter, AudioLMAdapter)
    return adapter


def _full_projection_sums(adapter: AudioLMAdapter, clip: Clip, task: TaskPrompt) -> np.ndarray:
    """Summed label log-probabilities from ``model(**inputs).logits`` over every position."""
    import torch

    prompts = [adapter.chat_prompt(task.render(task.labels, t)) for t in VARIANTS]
    rows = label_rows(adapter.tokenize, prompts, task.labels, adapter.end_of_turn)
    out = np.zeros((len(VARIANTS), len(task.labels)))
    for row in rows:
        text = prompts[row.variant] + task.labels[row.label] + adapter.end_of_turn
        inputs = adapter._to_model(adapter.model_inputs(text, clip))
        with torch.inference_mode():
            logits = adapter.model(**inputs).logits[0]
        ids = inputs["input_ids"][0]
        start = row.span_start + len(ids) - len(row.ids)
        assert logits.shape[0] == len(ids)  # the plain forward projects every position
        logp = torch.log_softmax(logits.float(), dim=-1)
        picked = logp[torch.arange(start - 1, len(ids) - 1), ids[start:]]
        out[row.variant, row.label] = float(picked.sum())
    return out


class _Counter:
    """Counts the positions ``lm_head`` projects (a forward hook on the real module)."""

    def __init__(self, head: Any) -> None:
        self.positions = 0
        self.handle = head.register_forward_hook(self._hook)

    def _hook(self, module: Any, args: Any, output: Any) -> None:
        self.positions += int(np.prod(output.shape[:-1]))


@pytest.mark.parametrize("case", CASES)
def test_label_probabilities_equal_the_full_projection(
    folders: dict[str, tuple[str, Path]], case: str, clip: Clip, task: TaskPrompt
) -> None:
    adapter = _load(folders, case)
    reference = _full_projection_sums(adapter, clip, task)
    head = adapter.model.lm_head
    for batch, reuse in ((None, True), (1, True), (None, False)):
        adapter.max_batch, adapter.prefix_reuse = batch, reuse
        adapter.prefixes.clear()
        counter = _Counter(head)
        try:
            sums = np.array(adapter.label_logprobs(clip, task, task.labels, VARIANTS))
        finally:
            counter.handle.remove()
        for got, want in zip(sums, reference):
            assert np.abs(np.array(probabilities(got)) - np.array(probabilities(want))).max() < 1e-6
        assert np.abs(sums - reference).max() < 1e-4
        # Only read positions were projected: the prefix pass projects 1 of its hundreds.
        read = sum(len(adapter.tokenize(lab + adapter.end_of_turn)) for lab in task.labels)
        assert counter.positions <= len(VARIANTS) * (read + 2 * len(task.labels)) + 1


@pytest.mark.parametrize("case", ["qwen2-audio", "qwen2.5-omni", "audio-flamingo-3"])
def test_generation_projects_only_the_last_position(
    folders: dict[str, tuple[str, Path]], case: str, clip: Clip, task: TaskPrompt
) -> None:
    import torch

    adapter = _load(folders, case)
    head = adapter.model.lm_head
    counter = _Counter(head)
    try:
        answer = adapter.generate_full(clip, task, VARIANTS[1], max_new_tokens=6)
    finally:
        counter.handle.remove()
    assert adapter.model.lm_head is head  # the wrapper is gone after the call
    assert counter.positions == answer.tokens  # one position per generated token
    # The same greedy tokens as transformers' own generate, left to its defaults.
    from transformers import GenerationConfig

    inputs = adapter._to_model(adapter.model_inputs(answer.prompt, clip))
    config = GenerationConfig(**adapter.decoding(6, None))
    plain = _Counter(head)
    try:
        with torch.inference_mode():
            out = adapter.model.generate(**inputs, generation_config=config)
    finally:
        plain.handle.remove()
    new = [int(t) for t in out[0, inputs["input_ids"].shape[1] :]]
    assert len(new) == answer.tokens
    assert adapter.tokenizer.decode(new, skip_special_tokens=True).strip() == answer.text
    if not adapter.keeps_logits:  # without the wrapper the prefill projects every position
        assert plain.positions >= inputs["input_ids"].shape[1]
