"""Audio Flamingo 3 think mode with a real peft adapter, and ``cuelab predict`` options.

A random LoRA (non-zero B) plus perturbed projector weights are written into
``think/`` of a tiny AF3 checkpoint as the release lays them out; the loaded
think model must equal a reference merged by hand (W + alpha/r * B @ A).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cuelab.cli import main
from cuelab.core.audio.io import load_audio
from cuelab.core.cues.norms import default_norms
from cuelab.core.errors import ModelError
from cuelab.core.models import tiny
from cuelab.core.models.base import Clip, LoadOptions
from cuelab.core.models.flamingo import THINK_SUFFIX, AudioFlamingo3Adapter
from cuelab.core.models.loading import resolve_location
from cuelab.core.models.registry import load_model
from cuelab.core.tasks.prompts import TaskPrompt
from tests.core.models.conftest import voiced_tone

TOLERANCE = 1e-4  # max abs difference of summed label log-probabilities, fp32
VARIANTS = [None, "ENERGY=LOW PITCH=HIGH VOICE_QUALITY=MODAL"]
FP32_CPU = {"quant": "fp32", "device": "cpu"}


@pytest.fixture(scope="module")
def think_dir(af3_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("af3-think") / "ckpt"
    shutil.copytree(af3_dir, folder)
    tiny.add_think_adapter(folder, non_lora="bin")
    return folder


@pytest.fixture(scope="module")
def base(think_dir: Path) -> AudioFlamingo3Adapter:
    adapter = load_model(f"audio-flamingo-3:{think_dir}", LoadOptions(**FP32_CPU))
    assert isinstance(adapter, AudioFlamingo3Adapter)
    return adapter


@pytest.fixture(scope="module")
def think(think_dir: Path) -> AudioFlamingo3Adapter:
    options = LoadOptions(**FP32_CPU, think=True, allow_pickle=True)
    adapter = load_model(f"audio-flamingo-3:{think_dir}", options)
    assert isinstance(adapter, AudioFlamingo3Adapter)
    return adapter


@pytest.fixture(scope="module")
def think_full(think: AudioFlamingo3Adapter, clip: Clip, task: TaskPrompt) -> np.ndarray:
    """Think-mode scores from full forward passes (no prefix cache): the slow reference."""
    return logprobs(think, clip, task, reuse=False)


def hand_merged(folder: Path) -> AudioFlamingo3Adapter:
    """The think model built without peft: non-LoRA weights copied, W += alpha/r * B @ A."""
    import torch
    from safetensors.torch import load_file
    from transformers import AudioFlamingo3ForConditionalGeneration, AutoProcessor

    model = AudioFlamingo3ForConditionalGeneration.from_pretrained(folder, dtype=torch.float32)
    config = json.loads((folder / "think" / "adapter_config.json").read_text())
    scale = config["lora_alpha"] / config["r"]
    lora = load_file(str(folder / "think" / "adapter_model.safetensors"))
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in torch.load(folder / "think" / "non_lora_trainables.bin").items():
            params[name].copy_(value)
        for key, a in lora.items():
            if ".lora_A." not in key:
                continue
            b = lora[key.replace(".lora_A.", ".lora_B.")]
            module = key.removeprefix("base_model.model.").removesuffix(".lora_A.weight")
            params[f"{module}.weight"].add_(scale * (b @ a))
    model.eval()
    processor = AutoProcessor.from_pretrained(folder)
    checkpoint = resolve_location(str(folder), LoadOptions())
    adapter = AudioFlamingo3Adapter(model, processor, checkpoint, "cpu", "fp32")
    adapter.user_suffix = THINK_SUFFIX  # the think prompt, as the release words it
    return adapter


def logprobs(adapter: AudioFlamingo3Adapter, clip: Clip, task: TaskPrompt, **mode) -> np.ndarray:
    adapter.prefix_reuse = mode.get("reuse", True)
    adapter.max_batch = mode.get("batch")
    adapter.prefixes.clear()
    try:
        return np.array(adapter.label_logprobs(clip, task, task.labels, VARIANTS))
    finally:
        adapter.prefix_reuse, adapter.max_batch = True, None


def test_think_equals_a_hand_merged_reference_and_changes_scores(
    base: AudioFlamingo3Adapter,
    think: AudioFlamingo3Adapter,
    think_dir: Path,
    clip: Clip,
    task: TaskPrompt,
) -> None:
    thought = logprobs(think, clip, task, batch=64)
    reference = logprobs(hand_merged(think_dir), clip, task, batch=64)
    assert np.abs(thought - reference).max() <= TOLERANCE
    # The adapter really is applied (the gap is ~0.5 here; the LoRA alone leaves ~0.3).
    assert np.abs(thought - logprobs(base, clip, task, batch=64)).max() > 1e-2
    info = think.describe()
    assert info["think"] is True and base.describe()["think"] is False
    assert info["think_adapter"]["non_lora_tensors"] == 4  # projector: 2 weights, 2 biases
    assert info["think_adapter"]["non_lora_ignored"] == 0
    assert info["think_adapter"]["lora_modules"] == 4 and info["think_adapter"]["lora_renamed"] == 0
    # the release's request ends the user turn, after the token line
    prompt = think.prompt_text(task, task.labels, VARIANTS[1])
    assert prompt.endswith(VARIANTS[1] + THINK_SUFFIX + "<|im_end|>\n<|im_start|>assistant\n")
    assert THINK_SUFFIX not in base.prompt_text(task, task.labels, VARIANTS[1])
    # Merged, not wrapped: the model runs at the base model's speed, without peft layers.
    assert type(think.model).__name__ == "AudioFlamingo3ForConditionalGeneration"
    assert not any("lora_" in name for name, _ in think.model.named_parameters())


def test_think_prefix_reuse_equals_full_pass(
    think: AudioFlamingo3Adapter, think_full: np.ndarray, clip: Clip, task: TaskPrompt
) -> None:
    full = think_full
    assert np.abs(logprobs(think, clip, task, batch=64) - full).max() <= TOLERANCE
    assert np.abs(logprobs(think, clip, task, batch=1) - full).max() <= TOLERANCE


def test_pickled_think_weights_need_allow_pickle(think_dir: Path) -> None:
    from cuelab.cli.remedies import cli_text
    from cuelab.core import errors

    with pytest.raises(ModelError, match=r"non_lora_trainables\.bin are a pickle") as info:
        load_model(f"audio-flamingo-3:{think_dir}", LoadOptions(**FP32_CPU, think=True))
    assert info.value.remedy == errors.ALLOW_PICKLE and "--allow-pickle" in cli_text(info.value)


def test_safetensors_think_weights_load_without_pickle(
    think_full: np.ndarray,
    think_dir: Path,
    tmp_path: Path,
    clip: Clip,
    task: TaskPrompt,
) -> None:
    # Same adapter, non-LoRA weights converted to safetensors under the inner modules'
    # names without transformers' ``model.`` prefix: both spellings must land.
    import torch
    from safetensors.torch import save_file

    folder = tmp_path / "ckpt"
    shutil.copytree(think_dir, folder)
    pickled = folder / "think" / "non_lora_trainables.bin"
    state = {k.removeprefix("model."): v for k, v in torch.load(pickled).items()}
    save_file(state, str(folder / "think" / "non_lora_trainables.safetensors"))
    pickled.unlink()
    adapter = load_model(f"audio-flamingo-3:{folder}", LoadOptions(**FP32_CPU, think=True))
    assert isinstance(adapter, AudioFlamingo3Adapter)
    assert np.abs(logprobs(adapter, clip, task, batch=64) - think_full).max() <= TOLERANCE


def test_think_weights_naming_nothing_are_refused(think_dir: Path, tmp_path: Path) -> None:
    import torch

    folder = tmp_path / "ckpt"
    shutil.copytree(think_dir, folder)
    torch.save(
        {"llm.mm_projector.0.weight": torch.zeros(2)}, folder / "think" / "non_lora_trainables.bin"
    )
    with pytest.raises(ModelError, match="name no parameter of the model"):
        load_model(
            f"audio-flamingo-3:{folder}", LoadOptions(**FP32_CPU, think=True, allow_pickle=True)
        )


def _vila_named(think_dir: Path, tmp_path: Path) -> Path:
    """The same adapter with the original VILA/llava tensor names (llm.model..., mm_projector)."""
    import torch
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "vila"
    shutil.copytree(think_dir, folder)
    lora = load_file(str(folder / "think" / "adapter_model.safetensors"))
    save_file({k.replace("base_model.model.model.language_model.", "base_model.model.llm.model."): v
               for k, v in lora.items()}, str(folder / "think" / "adapter_model.safetensors"))  # fmt: skip
    state = torch.load(folder / "think" / "non_lora_trainables.bin")
    torch.save({k.replace("model.multi_modal_projector.", "mm_projector."): v
                for k, v in state.items()}, folder / "think" / "non_lora_trainables.bin")  # fmt: skip
    return folder


def test_vila_named_think_weights_load_like_the_hf_names(
    think_dir: Path, think_full: np.ndarray, tmp_path: Path, clip: Clip, task: TaskPrompt
) -> None:
    folder = _vila_named(think_dir, tmp_path)
    options = LoadOptions(**FP32_CPU, think=True, allow_pickle=True)
    adapter = load_model(f"audio-flamingo-3:{folder}", options)
    info = adapter.describe()["think_adapter"]
    assert info["lora_renamed"] == 8 and info["non_lora_tensors"] == 4
    assert np.abs(logprobs(adapter, clip, task, batch=64) - think_full).max() <= TOLERANCE


def test_lora_tensors_that_fit_no_module_are_refused(think_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "bad"
    shutil.copytree(think_dir, folder)
    path = folder / "think" / "adapter_model.safetensors"
    lora = load_file(str(path))
    save_file(
        {k.replace("language_model.", "speech_model."): v for k, v in lora.items()}, str(path)
    )
    options = LoadOptions(**FP32_CPU, think=True, allow_pickle=True)
    with pytest.raises(ModelError, match=r"LoRA modules match no module of the model"):
        load_model(f"audio-flamingo-3:{folder}", options)
    # one tensor more than the modules have: never applied partly
    extra = "base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_C.weight"
    lora[extra] = next(iter(lora.values())).clone()
    save_file(lora, str(path))
    with pytest.raises(ModelError, match="refusing to apply it partly"):
        load_model(f"audio-flamingo-3:{folder}", options)


def test_the_folder_hash_covers_the_think_adapter(think_dir: Path, tmp_path: Path) -> None:
    from cuelab.core.models.loading import folder_digest

    folder = tmp_path / "hash"
    shutil.copytree(think_dir, folder)
    before = folder_digest(folder)
    config = folder / "think" / "adapter_config.json"
    config.write_text(config.read_text().replace('"r": 4', '"r": 4 '))
    assert folder_digest(folder) != before


def test_think_without_adapter_folder_is_one_line(af3_dir: Path) -> None:
    with pytest.raises(ModelError, match=r"think/adapter_config.json, which is missing"):
        load_model(f"audio-flamingo-3:{af3_dir}", LoadOptions(think=True))


def test_think_without_peft_says_pip_install_peft(
    think_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules is how Python itself marks a module unimportable: the real
    # ImportError path, no stand-in object for peft.
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(ModelError, match="pip install peft"):
        load_model(f"audio-flamingo-3:{think_dir}", LoadOptions(think=True, allow_pickle=True))


# ----- cuelab predict ------------------------------------------------------------------


@pytest.fixture(scope="module")
def wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A 140 Hz glide: VERY_HIGH against the demo profile's male PITCH edges, VERY_LOW
    # against its female ones.
    path = tmp_path_factory.mktemp("think-audio") / "tone.wav"
    sf.write(path, voiced_tone(1.0, f0=140.0), 16000)
    return path


def predict_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["predict", *argv, "--json"]) == 0
    return dict(json.loads(capsys.readouterr().out))


def predict_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["predict", *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("cuelab: error: ") and "\n" not in err
    return err


def test_predict_think_scores_with_the_adapter(
    capsys: pytest.CaptureFixture[str],
    wav: Path,
    think_dir: Path,
    think: AudioFlamingo3Adapter,
    task: TaskPrompt,
) -> None:
    model = f"audio-flamingo-3:{think_dir}"
    args = (str(wav), "--model", model, "--tokens", "none", "--labels", ",".join(task.labels))
    thought = predict_json(capsys, *args, "--think", "--allow-pickle")
    plain = predict_json(capsys, *args)
    assert thought["think"] is True and "think" not in plain
    audio, sr = load_audio(wav, sr=16000)
    expected = think.score_labels(Clip(audio, sr), task, task.labels, [None])[0].probs
    assert thought["probs"] == pytest.approx(expected, abs=1e-6)
    assert max(abs(thought["probs"][k] - plain["probs"][k]) for k in task.labels) > 1e-3


def test_predict_think_is_refused_for_other_families(
    capsys: pytest.CaptureFixture[str], wav: Path, qwen2_audio_dir: Path
) -> None:
    err = predict_error(capsys, str(wav), "--model", f"qwen2-audio:{qwen2_audio_dir}", "--think")
    assert "--think is only for audio-flamingo-3" in err


def test_predict_gender_selects_per_gender_edges(
    capsys: pytest.CaptureFixture[str], wav: Path, qwen2_audio_dir: Path
) -> None:
    model = f"qwen2-audio:{qwen2_audio_dir}"
    male = predict_json(capsys, str(wav), "--model", model, "--gender", "m")
    female = predict_json(capsys, str(wav), "--model", model, "--gender", "f")
    neither = predict_json(capsys, str(wav), "--model", model)
    assert (male["edges"]["PITCH"], female["edges"]["PITCH"]) == ("m", "f")
    assert neither["edges"]["PITCH"] == "global" and neither["gender"] is None
    assert "PITCH=VERY_HIGH" in male["tokens"] and "PITCH=VERY_LOW" in female["tokens"]
    assert male["edges"]["ENERGY"] == "global"  # only PITCH and FORMANTS are per gender
    assert male["probs"] != female["probs"]  # the token line reached the model


def test_predict_norms_profile_is_used_and_checked(
    capsys: pytest.CaptureFixture[str], wav: Path, qwen2_audio_dir: Path, tmp_path: Path
) -> None:
    model = f"qwen2-audio:{qwen2_audio_dir}"
    profile = default_norms()
    shifted = json.loads(json.dumps(profile.to_json()))
    shifted["edges"]["PITCH"] = {"global": [10.0, 11.0, 12.0, 13.0]}  # everything is VERY_LOW
    good = tmp_path / "norms.json"
    good.write_text(json.dumps(shifted), encoding="utf-8")
    record = predict_json(capsys, str(wav), "--model", model, "--norms", str(good), "--gender", "f")
    assert record["norms"] == str(good)
    assert "PITCH=VERY_LOW" in record["tokens"]
    assert record["edges"]["PITCH"] == "global"  # this profile has no female edges

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"kind": "something-else"}), encoding="utf-8")
    err = predict_error(capsys, str(wav), "--model", model, "--norms", str(bad))
    assert str(bad) in err and "norms" in err
    missing = tmp_path / "missing.json"
    err = predict_error(capsys, str(wav), "--model", model, "--norms", str(missing))
    assert str(missing) in err and "not found" in err


def test_predict_norms_and_gender_need_auto_tokens(
    capsys: pytest.CaptureFixture[str], wav: Path, qwen2_audio_dir: Path
) -> None:
    model = f"qwen2-audio:{qwen2_audio_dir}"
    err = predict_error(capsys, str(wav), "--model", model, "--tokens", "none", "--gender", "f")
    assert "only apply to --tokens auto" in err


def _converter_named(think_dir: Path, tmp_path: Path) -> Path:
    """The adapter in the names of the -hf folder's base weights on disk (issue 24, trap 11).

    ``language_model.model.layers…`` for the LoRA and ``multi_modal_projector…`` for the
    non-LoRA weights: the converter's names, which transformers renames when it loads them.
    """
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(think_dir / "model.safetensors"), "pt") as fh:
        base_keys = list(fh.keys())
    assert any(k.startswith("language_model.model.layers.") for k in base_keys)  # the disk names
    folder = tmp_path / "converter"
    shutil.copytree(think_dir, folder)
    lora = load_file(str(folder / "think" / "adapter_model.safetensors"))
    renamed = {k.replace("base_model.model.model.language_model.",
                         "base_model.model.language_model.model."): v for k, v in lora.items()}  # fmt: skip
    assert renamed != lora
    save_file(renamed, str(folder / "think" / "adapter_model.safetensors"))
    state = torch.load(folder / "think" / "non_lora_trainables.bin")
    torch.save({k.replace("model.multi_modal_projector.", "multi_modal_projector."): v
                for k, v in state.items()}, folder / "think" / "non_lora_trainables.bin")  # fmt: skip
    return folder


def test_think_weights_in_the_base_weights_names_load_like_the_hf_names(
    think_dir: Path, think_full: np.ndarray, tmp_path: Path, clip: Clip, task: TaskPrompt
) -> None:
    folder = _converter_named(think_dir, tmp_path)
    options = LoadOptions(**FP32_CPU, think=True, allow_pickle=True)
    adapter = load_model(f"audio-flamingo-3:{folder}", options)
    info = adapter.describe()["think_adapter"]
    assert info["lora_modules"] == 4 and info["lora_renamed"] == 8
    assert info["non_lora_tensors"] == 4 and info["non_lora_ignored"] == 0
    assert np.abs(logprobs(adapter, clip, task, batch=64) - think_full).max() <= TOLERANCE
    # a LoRA in those names that fits nothing is still refused
    from safetensors.torch import load_file, save_file

    path = folder / "think" / "adapter_model.safetensors"
    lora = load_file(str(path))
    save_file({k.replace(".layers.", ".blocks."): v for k, v in lora.items()}, str(path))
    with pytest.raises(ModelError, match=r"LoRA modules match no module of the model"):
        load_model(f"audio-flamingo-3:{folder}", options)
