"""Fixtures with the released Qwen2 vocabulary, chat template and key names (all offline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cuelab.core.models import tiny
from cuelab.core.models.base import Clip, LoadOptions
from cuelab.core.models.registry import load_model
from cuelab.core.tasks.prompts import TaskPrompt


@pytest.fixture(scope="module")
def real_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny.build_qwen2_audio(tmp_path_factory.mktemp("qwen2-audio-real"), real_vocab=True)


def test_the_vocabulary_is_qwen2_s(real_dir: Path) -> None:
    from transformers import AutoProcessor

    tok = AutoProcessor.from_pretrained(real_dir, local_files_only=True).tokenizer
    ids = {t: tok.convert_tokens_to_ids(t) for t in
           ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>")}  # fmt: skip
    assert list(ids.values()) == list(range(151643, 151649))
    # ids of the released tokenizer (transformers' own Qwen2 tests use the same)
    assert tok("Hello world!", add_special_tokens=False)["input_ids"] == [9707, 1879, 0]
    pieces = {w: tok.convert_ids_to_tokens(tok(w, add_special_tokens=False)["input_ids"])
              for w in ("angry", "happy", "neutral", "sad")}  # fmt: skip
    assert pieces == {"angry": ["ang", "ry"], "happy": ["happy"], "neutral": ["neutral"],
                      "sad": ["sad"]}  # fmt: skip


def test_weights_are_saved_under_the_release_s_key_names(real_dir: Path) -> None:
    from safetensors import safe_open

    with safe_open(str(real_dir / "model.safetensors"), "pt") as f:
        tops = {".".join(k.split(".")[:2]) for k in f.keys()}  # noqa: SIM118
    assert {
        "language_model.model",
        "language_model.lm_head",
        "multi_modal_projector.linear",
    } <= tops
    assert any(t.startswith("audio_tower.") for t in tops)


def test_prompt_equals_the_released_chat_template_token_for_token(
    real_dir: Path, task: TaskPrompt
) -> None:
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(real_dir, local_files_only=True)
    adapter = load_model(f"qwen2-audio:{real_dir}", LoadOptions(device="cpu"))
    text = task.render(task.labels, "ENERGY=HIGH PITCH=LOW")
    conversation = [
        {"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": text}]}
    ]
    official = processor.apply_chat_template(
        conversation, tokenize=False, add_generation_prompt=True
    )
    ours = adapter.prompt_text(task, task.labels, "ENERGY=HIGH PITCH=LOW")
    tok = processor.tokenizer
    assert (
        tok(ours, add_special_tokens=False)["input_ids"]
        == tok(official, add_special_tokens=False)["input_ids"]
    )


def test_length_normalised_scoring_counts_angry_as_two_tokens(
    real_dir: Path, clip: Clip, task: TaskPrompt
) -> None:
    adapter = load_model(f"qwen2-audio:{real_dir}", LoadOptions(device="cpu", label_score="mean"))
    lengths = adapter.label_lengths(task, task.labels, [None])[0]  # type: ignore[attr-defined]
    assert dict(zip(task.labels, lengths)) == {"angry": 3, "happy": 2, "neutral": 2, "sad": 2}
    pred = adapter.score_labels(clip, task, task.labels, [None])[0]
    sums = adapter.label_logprobs(clip, task, task.labels, [None])[0]  # type: ignore[attr-defined]
    per_token = np.array(sums) / np.array(lengths)
    want = np.exp(per_token - per_token.max())
    assert [pred.probs[lab] for lab in task.labels] == pytest.approx(list(want / want.sum()))


def test_remote_first_token_scoring_reads_the_real_first_tokens(
    real_dir: Path, clip: Clip, task: TaskPrompt
) -> None:
    from tests.servers.openai_audio import AudioChatServer

    server = AudioChatServer(real_dir)
    url = server.start()
    try:
        remote = load_model(f"openai:{url}")
        tokens = remote.label_tokens(task.labels)  # type: ignore[attr-defined]
        assert tokens.ids == {"angry": (524, 884), "happy": (56521,), "neutral": (59568,),
                              "sad": (82114,)}  # fmt: skip
        assert tokens.end_of_turn == (151645, "<|im_end|>")
        assert remote.method(task.labels) == "continuation"  # type: ignore[attr-defined]
        remote.scoring = "first-token"  # type: ignore[attr-defined]
        assert remote.method(task.labels) == "first-token"  # type: ignore[attr-defined]
        local = load_model(f"qwen2-audio:{real_dir}", LoadOptions(device="cpu"))
        remote.scoring = "continuation"  # type: ignore[attr-defined]
        got = remote.score_labels(clip, task, task.labels, [None])[0]
        want = local.score_labels(clip, task, task.labels, [None])[0]
        assert got.probs == pytest.approx(want.probs, abs=1e-5)
        remote.unload()
    finally:
        server.stop()
