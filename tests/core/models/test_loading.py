"""Registry, offline resolution, safety refusals, memory checks and quantisation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cuelab.cli.remedies import cli_text
from cuelab.core import errors
from cuelab.core.errors import ModelError
from cuelab.core.models import loading
from cuelab.core.models.base import Clip, LoadOptions
from cuelab.core.models.registry import (
    DEMO_REFERENCE,
    REGISTRY,
    get_adapter_class,
    load_model,
    parse_spec,
)
from cuelab.core.tasks.prompts import TaskPrompt


def test_parse_spec() -> None:
    assert parse_spec("qwen2-audio:/m/Qwen2-Audio") == ("qwen2-audio", "/m/Qwen2-Audio")
    assert parse_spec("clap:laion/clap-htsat-unfused") == ("clap", "laion/clap-htsat-unfused")
    assert parse_spec("reference") == ("reference", str(DEMO_REFERENCE))
    with pytest.raises(ModelError, match="did you mean 'qwen2-audio'"):
        parse_spec("qwen2audio:/x")
    with pytest.raises(ModelError, match="no location"):
        parse_spec("clap")
    with pytest.raises(ModelError, match="did you mean 'clap'"):
        get_adapter_class("clapp")


def test_registry_is_lazy_and_complete() -> None:
    assert REGISTRY["reference"] == "cuelab.core.models.reference:ReferenceAdapter"
    assert REGISTRY["oracle"] == "cuelab.core.models.oracle:OracleAdapter"
    for family in ("qwen2-audio", "qwen2.5-omni", "audio-flamingo-3", "clap"):
        assert get_adapter_class(family).family == family


def test_missing_folder_and_uncached_hub_id(monkeypatch, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_model(f"qwen2-audio:{tmp_path / 'nowhere'}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelError) as info:
        load_model("qwen2-audio:Qwen/Qwen2-Audio-7B-Instruct")
    message = str(info.value)
    assert "`hf download Qwen/Qwen2-Audio-7B-Instruct`" in message
    assert "huggingface-cli" not in message
    assert "\n" not in message


def test_hub_id_resolves_from_the_local_cache(monkeypatch, tmp_path: Path, qwen2_audio_dir) -> None:
    cache = tmp_path / "hub"
    snapshot = cache / "models--acme--tiny-qwen2-audio" / "snapshots" / ("a" * 40)
    shutil.copytree(qwen2_audio_dir, snapshot)
    (cache / "models--acme--tiny-qwen2-audio" / "refs").mkdir()
    (cache / "models--acme--tiny-qwen2-audio" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    adapter = load_model("qwen2-audio:acme/tiny-qwen2-audio")
    assert adapter.describe()["revision"] == "a" * 40


def _copy_config_only(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "processor_config.json"):
        shutil.copy(src / name, dst / name)
    return dst


def test_remote_code_is_refused(tmp_path: Path, qwen2_audio_dir: Path) -> None:
    folder = _copy_config_only(qwen2_audio_dir, tmp_path / "remote")
    shutil.copy(qwen2_audio_dir / "model.safetensors", folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="asks to run its own Python code") as info:
        load_model(f"qwen2-audio:{folder}")
    assert info.value.remedy == errors.TRUST_REMOTE_CODE and "--" not in str(info.value)
    assert cli_text(info.value).endswith("; pass --trust-remote-code if you trust its source")


def test_pickle_weights_are_refused(tmp_path: Path, qwen2_audio_dir: Path) -> None:
    folder = _copy_config_only(qwen2_audio_dir, tmp_path / "pickled")
    (folder / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(ModelError, match="only pickle weights") as info:
        load_model(f"qwen2-audio:{folder}")
    assert info.value.remedy == errors.ALLOW_PICKLE and info.value.subject == folder
    assert "--allow-pickle" in cli_text(info.value) and "--" not in str(info.value)
    empty = _copy_config_only(qwen2_audio_dir, tmp_path / "empty")
    with pytest.raises(ModelError, match="no weights"):
        load_model(f"qwen2-audio:{empty}")


def test_memory_estimate_and_refusal(qwen2_audio_dir: Path) -> None:
    from transformers import AutoConfig, Qwen2AudioForConditionalGeneration

    config = AutoConfig.from_pretrained(qwen2_audio_dir)
    skip = ("model.audio_tower", "model.multi_modal_projector", "lm_head")
    fp32 = loading.estimate_bytes(Qwen2AudioForConditionalGeneration, config, "fp32", skip)
    bf16 = loading.estimate_bytes(Qwen2AudioForConditionalGeneration, config, "bf16", skip)
    nf4 = loading.estimate_bytes(Qwen2AudioForConditionalGeneration, config, "nf4", skip)
    model = Qwen2AudioForConditionalGeneration(config)
    assert fp32 == 4 * sum(p.numel() for p in model.parameters())
    assert fp32 == 2 * bf16 and nf4 < bf16
    with pytest.raises(ModelError, match="GiB on cpu but only"):
        loading.check_fits(1 << 50, "cpu", "model X at bf16")
    with pytest.raises(ModelError, match="no CUDA GPU"):
        loading.resolve_device("cuda") if not _has_cuda() else (_ for _ in ()).throw(
            ModelError("no CUDA GPU (skipped)")
        )


def _has_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def test_progress_messages(qwen2_audio_dir: Path) -> None:
    stages: list[str] = []
    load_model(f"qwen2-audio:{qwen2_audio_dir}", LoadOptions(on_progress=stages.append))
    assert stages[0].startswith("loading the processor")
    assert any(s.startswith("estimating memory") for s in stages)
    assert stages[-1] == "model ready"


QUANT_CASES = [
    ("qwen2-audio", "nf4", ("model.audio_tower", "model.multi_modal_projector", "lm_head")),
    ("qwen2-audio", "8bit", ("model.audio_tower", "model.multi_modal_projector", "lm_head")),
    ("audio-flamingo-3", "nf4", ("model.audio_tower", "model.multi_modal_projector", "lm_head")),
    ("qwen2.5-omni", "nf4", ("model.audio_tower", "lm_head")),
]


@pytest.mark.parametrize(("family", "quant", "kept"), QUANT_CASES)
def test_quantisation_keeps_audio_tower_projector_and_head(
    family_dirs: dict[str, Path],
    family: str,
    quant: str,
    kept: tuple[str, ...],
    clip: Clip,
    task: TaskPrompt,
) -> None:
    import bitsandbytes as bnb

    qtype = bnb.nn.Linear4bit if quant == "nf4" else bnb.nn.Linear8bitLt
    adapter = load_model(f"{family}:{family_dirs[family]}", LoadOptions(quant=quant, device="cpu"))
    modules = dict(adapter.model.named_modules())
    quantised = {name for name, module in modules.items() if isinstance(module, qtype)}
    language = {n for n in quantised if n.startswith("model.language_model.")}
    assert language, "the language model should be quantised"
    for prefix in kept:
        assert prefix in modules
        assert not any(n == prefix or n.startswith(prefix + ".") for n in quantised), prefix
    assert type(modules["lm_head"]).__name__ == "Linear"
    predictions = adapter.score_labels(clip, task, task.labels, [None, "ENERGY=HIGH"])
    assert all(np.isfinite(list(p.probs.values())).all() for p in predictions)
    assert adapter.describe()["quant"] == quant


def test_a_missing_backend_package_is_one_model_error(tmp_path, monkeypatch) -> None:
    import sys

    from cuelab.core.errors import ModelError
    from cuelab.core.models.registry import load_model

    monkeypatch.setitem(sys.modules, "transformers", None)  # makes `import transformers` fail
    with pytest.raises(ModelError, match="needs the Python package 'transformers'"):
        load_model(f"qwen2-audio:{tmp_path}")


def test_the_omni_thinker_loads_from_a_full_release_folder(omni_dir: Path) -> None:
    """thinker.*, talker.*, token2wav.* and spk_dict.pt, as released: only the thinker loads."""
    from safetensors import safe_open

    with safe_open(str(omni_dir / "model.safetensors"), "pt") as f:
        prefixes = {k.split(".")[0] for k in f.keys()}  # noqa: SIM118
    assert prefixes == {"thinker", "talker", "token2wav"}
    assert (omni_dir / "spk_dict.pt").is_file()  # a pickle beside safetensors: never read
    adapter = load_model(f"qwen2.5-omni:{omni_dir}", LoadOptions(device="cpu"))
    names = [n for n, _ in adapter.model.named_parameters()]  # type: ignore[attr-defined]
    assert names and not any("talker" in n or "token2wav" in n for n in names)
    assert type(adapter.model).__name__ == "Qwen2_5OmniThinkerForConditionalGeneration"  # type: ignore[attr-defined]
