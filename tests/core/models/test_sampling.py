"""Seeded sampling in free generation: reproducible per seed, varied across seeds, greedy kept."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import soundfile as sf
import torch

from cuelab.cli import main
from cuelab.core.errors import ModelError
from cuelab.core.models.base import Clip, LoadOptions, Sampling
from cuelab.core.models.hf_alm import AudioLMAdapter
from cuelab.core.models.registry import load_model
from cuelab.core.tasks.prompts import TaskPrompt
from tests.core.models.conftest import voiced_tone

FAMILIES = ("qwen2-audio", "qwen2.5-omni", "audio-flamingo-3")
HOT = {"temperature": 2.0, "top_p": 1.0}  # near-uniform draws from random weights


@pytest.fixture(scope="module")
def adapters(family_dirs: dict[str, Path]) -> dict[str, AudioLMAdapter]:
    loaded = {f: load_model(f"{f}:{family_dirs[f]}") for f in FAMILIES}
    assert all(isinstance(a, AudioLMAdapter) for a in loaded.values())
    return loaded  # type: ignore[return-value]


@pytest.mark.parametrize("family", FAMILIES)
def test_a_seed_gives_one_text_and_leaves_the_global_rng_alone(
    family: str, adapters: dict[str, AudioLMAdapter], clip: Clip, task: TaskPrompt
) -> None:
    adapter = adapters[family]
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    first = adapter.generate(clip, task, None, 6, Sampling(**HOT, seed=7))
    assert torch.equal(torch.get_rng_state(), before)  # the caller's random state is untouched
    torch.manual_seed(99)  # whatever the global state, the seed decides the draw
    assert adapter.generate(clip, task, None, 6, Sampling(**HOT, seed=7)) == first
    draws = {adapter.generate(clip, task, None, 6, Sampling(**HOT, seed=s)) for s in range(4)}
    assert len(draws) > 1


@pytest.mark.parametrize("family", FAMILIES)
def test_greedy_is_the_plain_do_sample_false_path(
    family: str, adapters: dict[str, AudioLMAdapter], clip: Clip, task: TaskPrompt
) -> None:
    """Without sampling the answer is exactly what ``generate(do_sample=False)`` gives."""
    adapter = adapters[family]
    tokens = "ENERGY=HIGH"
    inputs = adapter._to_model(
        adapter.model_inputs(adapter.chat_prompt(task.render(task.labels, tokens)), clip)
    )
    extra = {"temperature": None, "top_p": None, "top_k": None} if "flamingo" in family else {}
    with torch.inference_mode():
        out = adapter.model.generate(
            **inputs,
            do_sample=False,
            max_new_tokens=8,
            pad_token_id=adapter.tokenizer.pad_token_id,
            **extra,
        )
    new = out[0, inputs["input_ids"].shape[1] :]
    expected = adapter.tokenizer.decode(new, skip_special_tokens=True).strip()
    torch.manual_seed(5)
    assert adapter.generate(clip, task, tokens, 8) == expected
    torch.manual_seed(6)
    assert adapter.generate(clip, task, tokens, 8, None) == expected


@pytest.mark.parametrize("family", ["qwen2-audio", "audio-flamingo-3"])
def test_the_parameters_reach_the_model(
    family: str, adapters: dict[str, AudioLMAdapter], clip: Clip, task: TaskPrompt
) -> None:
    """A vanishing nucleus or temperature keeps only the top token: the greedy answer."""
    adapter = adapters[family]
    greedy = adapter.generate(clip, task, None, 8)
    for seed in (0, 1):
        narrow = Sampling(temperature=2.0, top_p=1e-9, seed=seed)
        cold = Sampling(temperature=1e-4, top_p=1.0, seed=seed)
        assert adapter.generate(clip, task, None, 8, narrow) == greedy
        assert adapter.generate(clip, task, None, 8, cold) == greedy


@pytest.mark.parametrize("family", ["qwen2-audio", "audio-flamingo-3"])
def test_shipped_sampling_settings_are_replaced(
    family: str, adapters: dict[str, AudioLMAdapter], clip: Clip, task: TaskPrompt
) -> None:
    """Released checkpoints (AF3, Qwen2-Audio) ship sampling settings in generation_config.

    Greedy must not sample with them, and a draw must use the run's settings, not them:
    with a shipped top-k of 1 every draw would be the greedy answer.
    """
    adapter = adapters[family]
    greedy = adapter.generate(clip, task, None, 8)
    shipped = copy.deepcopy(adapter.model.generation_config)
    try:
        adapter.model.generation_config.update(do_sample=True, temperature=0.7, top_k=1)
        assert adapter.generate(clip, task, None, 8) == greedy
        draws = {adapter.generate(clip, task, None, 8, Sampling(**HOT, seed=s)) for s in range(3)}
        assert len(draws) > 1
    finally:
        adapter.model.generation_config = shipped


def test_bad_settings_are_refused() -> None:
    for kwargs, message in (
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**64}, "seed"),
        ({"seed": 1.5}, "seed"),
    ):
        with pytest.raises(ModelError, match=message):
            Sampling(**kwargs)  # type: ignore[arg-type]
    assert Sampling().describe() == {"decoding": "sampling", "temperature": 0.7, "top_p": 0.9}


def test_oracle_ignores_and_reference_refuses_sampling(clip: Clip, task: TaskPrompt) -> None:
    oracle = load_model("oracle:-")
    said = Clip(clip.audio, 16000, "x", meta={"transcript": "hello there"})
    assert oracle.generate(said, task, None, 8, Sampling(seed=3)) == "hello there"
    with pytest.raises(ModelError, match="cannot generate"):
        load_model("reference").generate(clip, task, None, 8, Sampling())


@pytest.fixture(scope="module")
def wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "tone.wav"
    sf.write(path, voiced_tone(1.0), 16000)
    return path


def _predict(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["predict", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_predict_sample_flags(capsys, wav: Path, qwen2_audio_dir: Path) -> None:
    base = [str(wav), "--model", f"qwen2-audio:{qwen2_audio_dir}", "--tokens", "none"]
    gen = [*base, "--generate", "--max-new-tokens", "6", "--json"]
    answers = []
    for seed in ("1", "1", "2", "3", "4"):
        code, out, _ = _predict(capsys, *gen, "--sample", "--temperature", "2", "--seed", seed)
        assert code == 0
        record = json.loads(out)
        assert (record["temperature"], record["top_p"]) == (2, 0.9)
        assert record["decoding"] == {
            "do_sample": True, "temperature": 2.0, "top_p": 0.9, "top_k": 0, "num_beams": 1,
            "repetition_penalty": 1.0, "max_new_tokens": 6,
            "eos_token_id": record["decoding"]["eos_token_id"],
            "pad_token_id": record["decoding"]["pad_token_id"],
        }  # fmt: skip
        assert record["seed"] == int(seed)
        answers.append(record["raw_output"])
    assert answers[0] == answers[1] and len(set(answers[1:])) > 1
    code, out, _ = _predict(capsys, *gen)
    greedy = json.loads(out)
    assert code == 0 and greedy["decoding"]["do_sample"] is False and "seed" not in greedy
    assert greedy["decoding"]["repetition_penalty"] == 1.0
    for flags, message in (
        (["--generate", "--seed", "1"], "--seed needs --sample"),
        (["--sample"], "--sample needs --generate"),
        (["--generate", "--sample", "--top-p", "0"], "top_p must be in"),
    ):
        code, _, err = _predict(capsys, *base, *flags)
        assert code == 1 and message in err and err.count("\n") == 1


def _end_of_turn_first(adapter: object) -> int:
    """Give the real model a head that always answers the end of turn first."""
    import torch

    model = adapter.model  # type: ignore[attr-defined]
    head = model.lm_head
    biased = torch.nn.Linear(head.in_features, head.out_features, bias=True)
    with torch.no_grad():
        biased.weight.copy_(head.weight)
        biased.bias.zero_()
        eot = adapter.tokenizer.convert_tokens_to_ids("<|im_end|>")  # type: ignore[attr-defined]
        biased.bias[eot] = 1e4
    model.lm_head = biased
    return int(eot)


@pytest.mark.parametrize("family", ["qwen2-audio", "qwen2.5-omni", "audio-flamingo-3"])
def test_generation_stops_at_the_end_of_turn_even_when_the_config_names_none(
    family: str, family_dirs: dict[str, Path], clip: Clip, task: TaskPrompt
) -> None:
    adapter = load_model(f"{family}:{family_dirs[family]}", LoadOptions(device="cpu"))
    adapter.model.generation_config.eos_token_id = None  # as the full Omni release ships it
    eot = _end_of_turn_first(adapter)
    out = adapter.generate_full(clip, task, None, max_new_tokens=12)
    assert (out.finish_reason, out.tokens, out.text) == ("stop", 1, "")
    assert eot in out.decoding["eos_token_id"]
    assert out.prompt.endswith("<|im_start|>assistant\n") and "<|im_start|>user" in out.prompt


def test_greedy_ignores_the_checkpoint_s_sampling_and_penalties(
    qwen2_audio_dir: Path, clip: Clip, task: TaskPrompt
) -> None:
    adapter = load_model(f"qwen2-audio:{qwen2_audio_dir}", LoadOptions(device="cpu"))
    plain = adapter.generate_full(clip, task, None, max_new_tokens=10)
    shipped = adapter.model.generation_config
    # Qwen2-Audio-7B-Instruct's release: do_sample, top_k 20, top_p 0.5, temperature 0.7,
    # repetition_penalty 1.1 (here much stronger, so that applying it would show)
    shipped.do_sample, shipped.top_k, shipped.top_p, shipped.temperature = True, 20, 0.5, 0.7
    shipped.repetition_penalty = 50.0
    again = adapter.generate_full(clip, task, None, max_new_tokens=10)
    assert again.text == plain.text and again.decoding == plain.decoding
    assert again.decoding["do_sample"] is False and again.decoding["repetition_penalty"] == 1.0
    # the same penalty, asked for explicitly, does change the answer: the test can fail
    import torch
    from transformers import GenerationConfig

    inputs = adapter.model_inputs(plain.prompt, clip)
    with torch.inference_mode():
        penalised = adapter.model.generate(**inputs, generation_config=GenerationConfig(
            **{**plain.decoding, "repetition_penalty": 50.0}))  # fmt: skip
    text = adapter.tokenizer.decode(penalised[0, inputs["input_ids"].shape[1] :],
                                    skip_special_tokens=True).strip()  # fmt: skip
    assert text != plain.text
