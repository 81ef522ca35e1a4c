"""Audio Flamingo 3 through transformers 5.x, with its optional think-mode adapter.

The think adapter ships in the checkpoint's ``think/`` folder the way the
``nvidia/audio-flamingo-3-hf`` release lays it out: a peft LoRA
(``adapter_config.json`` + ``adapter_model.safetensors``) and the weights
trained outside LoRA in the same stage (``non_lora_trainables.bin``, a plain
state dict). The release's own recipe loads the state dict into the base model
with ``strict=False``, then the LoRA; CueLab does the same, checks that the
state dict's keys really name parameters of the model (``strict=False`` would
otherwise drop a misnamed file silently), and merges the LoRA into the weights
so scoring runs at the base model's speed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from cuelab.core.errors import ModelError
from cuelab.core.models.base import LoadOptions, check_label_score
from cuelab.core.models.hf_alm import AudioLMAdapter
from cuelab.core.models.loading import load_pretrained, resolve_location

THINK_FOLDER = "think"
NON_LORA_STEM = "non_lora_trainables"
_PEFT_HINT = "pip install peft (or pip install 'cuelab[peft]')"

log = logging.getLogger(__name__)


class AudioFlamingo3Adapter(AudioLMAdapter):
    """AF3: ``<sound>`` opens the user turn, right before the instruction (as its chat
    template places it). Its first conversion's generation config samples; like every
    family, generation here ignores shipped settings (see
    :meth:`~cuelab.core.models.hf_alm.AudioLMAdapter.generate_full`): greedy unless a
    seeded draw (:class:`~cuelab.core.models.base.Sampling`) is asked for.

    Think mode (``LoadOptions.think``) applies the adapter in the checkpoint's ``think/``
    folder (see the module docstring).
    """

    family: ClassVar[str] = "audio-flamingo-3"
    model_class_name: ClassVar[str] = "AudioFlamingo3ForConditionalGeneration"
    skip_modules: ClassVar[tuple[str, ...]] = (
        "model.audio_tower",
        "model.multi_modal_projector",
        "lm_head",
    )
    audio_placeholder: ClassVar[str] = "<sound>"

    think: bool = False
    think_info: dict[str, object] | None = None

    @classmethod
    def load(cls, location: str, options: LoadOptions) -> AudioFlamingo3Adapter:
        """Load AF3 and, in think mode, its ``think/`` adapter.

        Raises:
            ModelError: besides the usual refusals, think mode without peft, without a
                ``think/`` adapter, or with pickle-only think weights and no
                ``allow_pickle``; all of them before any weight is read.
        """
        import transformers

        checkpoint = resolve_location(location, options)
        think_files = (
            _think_files(checkpoint.folder / THINK_FOLDER, options) if options.think else None
        )
        processor = cls.load_processor(checkpoint, options)
        model_class = transformers.AudioFlamingo3ForConditionalGeneration
        model, device, quant = load_pretrained(model_class, checkpoint, options, cls.skip_modules)
        info = None
        if think_files is not None:
            model, info = _apply_think(model, think_files, options)
        adapter = cls(model, processor, checkpoint, device, quant)
        adapter.label_score = check_label_score(options.label_score)
        adapter.think = options.think
        adapter.think_info = info
        return adapter

    def describe(self) -> dict[str, object]:
        """Provenance, with the think-mode flag and what the think adapter changed."""
        info = {**super().describe(), "think": self.think}
        if self.think_info is not None:
            info["think_adapter"] = self.think_info
        return info


@dataclass(frozen=True)
class _ThinkFiles:
    """The checked contents of a ``think/`` folder."""

    folder: Path
    non_lora: Path | None


def _think_files(folder: Path, options: LoadOptions) -> _ThinkFiles:
    """Check peft and the ``think/`` folder before any weight is read."""
    try:
        import peft  # noqa: F401
    except ImportError as exc:
        raise ModelError(f"think mode needs the peft package: {_PEFT_HINT}") from exc
    if not (folder / "adapter_config.json").is_file():
        raise ModelError(f"think mode needs {folder}/adapter_config.json, which is missing")
    if not (folder / "adapter_model.safetensors").is_file():
        if not (folder / "adapter_model.bin").is_file():
            raise ModelError(f"think adapter {folder} has no adapter_model.safetensors")
        _refuse_pickle(folder / "adapter_model.bin", options)
    safe = folder / f"{NON_LORA_STEM}.safetensors"
    pickled = folder / f"{NON_LORA_STEM}.bin"
    if safe.is_file():
        return _ThinkFiles(folder, safe)
    if pickled.is_file():
        _refuse_pickle(pickled, options)
        return _ThinkFiles(folder, pickled)
    return _ThinkFiles(folder, None)


def _refuse_pickle(path: Path, options: LoadOptions) -> None:
    if not options.allow_pickle:
        raise ModelError(
            f"think-mode weights {path} are a pickle file, which can run code when loaded; "
            "convert them to safetensors or pass --allow-pickle if you trust the source"
        )


def _apply_think(
    model: Any, files: _ThinkFiles, options: LoadOptions
) -> tuple[Any, dict[str, object]]:
    """Load the non-LoRA weights, then merge the LoRA; return the model and a summary."""
    from peft import PeftModel

    info: dict[str, object] = {"folder": str(files.folder), "non_lora_tensors": 0}
    if files.non_lora is not None:
        options.progress(f"loading {files.non_lora.name}")
        info.update(_load_non_lora(model, files.non_lora))
    options.progress("applying the think-mode LoRA adapter")
    try:
        merged = PeftModel.from_pretrained(
            model, str(files.folder), is_trainable=False
        ).merge_and_unload()
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(f"think-mode adapter {files.folder} cannot be applied: {exc}") from exc
    merged.eval()
    return merged, info


def _read_state(path: Path) -> dict[str, Any]:
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return dict(load_file(str(path)))
        # weights_only: even an allowed pickle may hold tensors and containers only.
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"think-mode weights {path} cannot be read: {exc}") from exc
    if not isinstance(state, dict):
        raise ModelError(f"think-mode weights {path} are not a state dict")
    return dict(state)


def _load_non_lora(model: Any, path: Path) -> dict[str, object]:
    """Copy the stage's non-LoRA weights into ``model`` (cast to each parameter's dtype).

    Keys are matched as they are, or with the ``model.`` prefix transformers 5 adds to the
    inner modules. Unmatched keys are logged and counted; a file with no matching key at
    all is refused, since loading it would silently change nothing.
    """
    import torch

    state = _read_state(path)
    own = model.state_dict()
    matched: dict[str, Any] = {}
    unmatched: list[str] = []
    for key, value in state.items():
        name = next((k for k in (key, f"model.{key}") if k in own), None)
        if name is None or not isinstance(value, torch.Tensor):
            unmatched.append(key)
        elif tuple(value.shape) != tuple(own[name].shape):
            raise ModelError(
                f"think-mode weights {path}: {key} has shape {tuple(value.shape)}, "
                f"the model's has {tuple(own[name].shape)}"
            )
        else:
            matched[name] = value
    if state and not matched:
        raise ModelError(
            f"think-mode weights {path} name no parameter of the model (first key {next(iter(state))})"
        )
    if unmatched:
        log.warning(
            "think-mode weights %s: %d keys ignored, e.g. %s", path, len(unmatched), unmatched[0]
        )
    with torch.no_grad():
        model.load_state_dict(matched, strict=False)
    return {"non_lora_tensors": len(matched), "non_lora_ignored": len(unmatched)}
