"""Audio Flamingo 3 through transformers 5.x, with its optional think-mode adapter.

The think adapter ships in the checkpoint's ``think/`` folder the way the
``nvidia/audio-flamingo-3-hf`` release lays it out: a peft LoRA
(``adapter_config.json`` + ``adapter_model.safetensors``) and the weights
trained outside LoRA in the same stage (``non_lora_trainables.bin``, a plain
state dict). The release's own recipe loads the state dict into the base model
with ``strict=False``, then the LoRA; CueLab does the same, checks that the
state dict's keys really name parameters of the model (``strict=False`` would
otherwise drop a misnamed file silently), loads the LoRA tensors itself and
refuses any that fit no module (peft would leave such a module at its initial,
do-nothing value), and merges the LoRA into the weights so scoring runs at the
base model's speed. Tensor names are accepted as transformers names them
(``model.language_model.layers…``), as the original VILA/llava release does
(``llm.model.layers…``, ``model.sound_tower…``, ``mm_projector…``), or as the
base weights of the ``-hf`` folder are named on disk
(``language_model.model.layers…``), renamed by transformers' own mapping.

Think mode also ends the user turn with the release's request,
:data:`THINK_SUFFIX`, after the token line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from cuelab.core import errors
from cuelab.core.errors import ModelError
from cuelab.core.models.base import LoadOptions, check_label_score
from cuelab.core.models.hf_alm import AudioLMAdapter
from cuelab.core.models.loading import load_pretrained, resolve_location
from cuelab.core.models.scoring_modes import check_scoring

THINK_FOLDER = "think"
#: What the release appends to the question in think mode.
THINK_SUFFIX = " Please think and reason about the input audio before you respond."
#: Known renames from the original VILA/llava names to transformers' (prefix -> prefix).
VILA_RENAMES = (
    ("model.llm.model.", "model.language_model."),
    ("llm.model.", "model.language_model."),
    ("model.llm.lm_head.", "lm_head."),
    ("llm.lm_head.", "lm_head."),
    ("model.sound_tower.", "model.audio_tower."),
    ("sound_tower.", "model.audio_tower."),
    ("model.sound_mm_projector.", "model.multi_modal_projector."),
    ("sound_mm_projector.", "model.multi_modal_projector."),
    ("model.mm_projector.", "model.multi_modal_projector."),
    ("mm_projector.", "model.multi_modal_projector."),
)
PEFT_PREFIX = "base_model.model."
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
        adapter.scoring = check_scoring(options.scoring)
        adapter.think = options.think
        adapter.think_info = info
        if options.think:
            adapter.user_suffix = THINK_SUFFIX
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
            f"think-mode weights {path} are a pickle file, which can run code when loaded",
            subject=path,
            remedy=errors.ALLOW_PICKLE,
        )


def _apply_think(
    model: Any, files: _ThinkFiles, options: LoadOptions
) -> tuple[Any, dict[str, object]]:
    """Load the non-LoRA weights, then the LoRA (every tensor placed), merge; summarise."""
    import json

    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

    info: dict[str, object] = {"folder": str(files.folder), "non_lora_tensors": 0}
    if files.non_lora is not None:
        options.progress(f"loading {files.non_lora.name}")
        info.update(_load_non_lora(model, files.non_lora))
    options.progress("applying the think-mode LoRA adapter")
    weights = files.folder / "adapter_model.safetensors"
    if not weights.is_file():
        weights = files.folder / "adapter_model.bin"
    state, renamed = _lora_state(_read_state(weights), _hf_renamer(model))
    modules = sorted({k.split(".lora_")[0][len(PEFT_PREFIX) :] for k in state if ".lora_" in k})
    if not modules:
        raise ModelError(f"think-mode adapter {weights} holds no LoRA tensor")
    own = dict(model.named_modules())
    missing = [m for m in modules if m not in own]
    if missing:
        raise ModelError(
            f"think-mode adapter {weights}: {len(missing)} of {len(modules)} LoRA modules "
            f"match no module of the model (first: {missing[0]})"
        )
    try:
        config = LoraConfig(**_lora_fields(json.loads((files.folder / "adapter_config.json")
                                                      .read_text(encoding="utf-8"))))  # fmt: skip
        config.target_modules = modules  # exactly the modules the file has weights for
        wrapped = get_peft_model(model, config)
        result = set_peft_model_state_dict(wrapped, state)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ModelError(f"think-mode adapter {files.folder} cannot be applied: {exc}") from exc
    unexpected = list(getattr(result, "unexpected_keys", []))
    unloaded = [k for k in getattr(result, "missing_keys", []) if ".lora_" in k]
    if unexpected or unloaded:
        first = (unexpected or unloaded)[0]
        raise ModelError(
            f"think-mode adapter {weights}: {len(unexpected)} tensors fit no LoRA weight and "
            f"{len(unloaded)} LoRA weights got no tensor (first: {first}); refusing to apply "
            "it partly"
        )
    merged = wrapped.merge_and_unload()
    merged.eval()
    info.update(lora_modules=len(modules), lora_tensors=len(state), lora_renamed=renamed)
    return merged, info


def _lora_fields(config: dict[str, Any]) -> dict[str, Any]:
    """The adapter_config.json keys this peft's LoraConfig knows (newer files have more)."""
    from dataclasses import fields

    from peft import LoraConfig

    known = {f.name for f in fields(LoraConfig)}
    return {k: v for k, v in config.items() if k in known}


def _rename(key: str) -> str:
    """A tensor name in transformers' naming (VILA/llava prefixes rewritten)."""
    for old, new in VILA_RENAMES:
        if key.startswith(old):
            return new + key[len(old) :]
    return key


def _hf_renamer(model: Any) -> Callable[[str], str]:
    """transformers' own renaming of checkpoint keys for ``model``, as a function of one key.

    ``from_pretrained`` renames the base weights of an ``-hf`` folder
    (``language_model.model.layers…`` → ``model.language_model.layers…``,
    ``language_model.lm_head`` → ``lm_head``, ``audio_tower`` → ``model.audio_tower``);
    a LoRA saved against those names must be renamed the same way. The renamings
    come from transformers' conversion mapping for this model, not from a copy of it.
    """
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import WeightRenaming, rename_source_key
    except ImportError:  # an older transformers without the mapping: names are already its own
        return lambda key: key
    renamings = [t for t in get_model_conversion_mapping(model) if isinstance(t, WeightRenaming)]
    params = dict.fromkeys(model.state_dict(), True)
    prefix = getattr(model, "base_model_prefix", None) or None

    def rename(key: str) -> str:
        return str(rename_source_key(key, renamings, [], prefix, params)[0])

    return rename


def _lora_state(
    state: dict[str, Any], hf_rename: Callable[[str], str] | None = None
) -> tuple[dict[str, Any], int]:
    """LoRA tensors keyed as peft expects (``base_model.model.<module>.lora_A.weight``).

    A module name is taken as it is when it already names a module, else through the
    VILA/llava renames, else through transformers' renaming of the base weights
    (``hf_rename``, applied to ``<module>.weight`` as it is to a base weight).
    """
    out: dict[str, Any] = {}
    renamed = 0
    for key, value in state.items():
        inner = key[len(PEFT_PREFIX) :] if key.startswith(PEFT_PREFIX) else key
        module, sep, rest = inner.partition(".lora_")
        new = _rename(inner)
        if sep and hf_rename is not None and new == inner:
            mapped = hf_rename(module + ".weight").removesuffix(".weight")
            new = mapped + sep + rest
        renamed += new != inner
        out[PEFT_PREFIX + new] = value
    return out, renamed


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

    Keys are matched as they are, with the ``model.`` prefix transformers 5 adds to the
    inner modules, or through the known VILA/llava renames. Unmatched keys are logged
    and counted (``non_lora_ignored`` in run.json); a file with no matching key at all
    is refused, since loading it would silently change nothing.
    """
    import torch

    state = _read_state(path)
    own = model.state_dict()
    hf_rename = _hf_renamer(model)
    matched: dict[str, Any] = {}
    unmatched: list[str] = []
    for key, value in state.items():
        bare = key[len(PEFT_PREFIX) :] if key.startswith(PEFT_PREFIX) else key
        options_ = (bare, f"model.{bare}", _rename(bare), hf_rename(bare))
        name = next((k for k in options_ if k in own), None)
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
