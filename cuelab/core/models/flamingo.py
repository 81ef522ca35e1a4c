"""Audio Flamingo 3 through transformers 5.x, with its optional think-mode adapter."""

from __future__ import annotations

from typing import Any, ClassVar

from cuelab.core.errors import ModelError
from cuelab.core.models.base import LoadOptions
from cuelab.core.models.hf_alm import AudioLMAdapter
from cuelab.core.models.loading import load_pretrained, resolve_location


class AudioFlamingo3Adapter(AudioLMAdapter):
    """AF3: ``<sound>`` opens the user turn, right before the instruction (as its chat
    template places it). Its shipped generation config samples, so generation always
    passes ``do_sample=False``; scoring never samples.

    Think mode (``LoadOptions.think``) applies the LoRA adapter in the checkpoint's
    ``think/`` subfolder through peft.
    """

    family: ClassVar[str] = "audio-flamingo-3"
    model_class_name: ClassVar[str] = "AudioFlamingo3ForConditionalGeneration"
    skip_modules: ClassVar[tuple[str, ...]] = (
        "model.audio_tower",
        "model.multi_modal_projector",
        "lm_head",
    )
    audio_placeholder: ClassVar[str] = "<sound>"

    @classmethod
    def load(cls, location: str, options: LoadOptions) -> AudioFlamingo3Adapter:
        """Load AF3 and, in think mode, its ``think/`` adapter."""
        import transformers

        checkpoint = resolve_location(location, options)
        think_dir = checkpoint.folder / "think"
        if options.think and not (think_dir / "adapter_config.json").is_file():
            raise ModelError(f"think mode needs {think_dir}/adapter_config.json, which is missing")
        processor = cls.load_processor(checkpoint, options)
        model_class = transformers.AudioFlamingo3ForConditionalGeneration
        model, device, quant = load_pretrained(model_class, checkpoint, options, cls.skip_modules)
        if options.think:
            model = _apply_think(model, think_dir, options)
        adapter = cls(model, processor, checkpoint, device, quant)
        adapter.think = options.think
        return adapter

    think: bool = False

    def describe(self) -> dict[str, object]:
        """Provenance, with the think-mode flag."""
        return {**super().describe(), "think": self.think}

    def generate_kwargs(self) -> dict[str, Any]:
        """Override the shipped sampling settings (temperature 0.7) for greedy decoding."""
        return {"temperature": None, "top_p": None, "top_k": None}


def _apply_think(model: Any, think_dir: Any, options: LoadOptions) -> Any:
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise ModelError("think mode needs the peft package: pip install 'cuelab[peft]'") from exc
    options.progress("applying the think-mode adapter")
    try:
        return PeftModel.from_pretrained(
            model, str(think_dir), is_trainable=False
        ).merge_and_unload()
    except (OSError, ValueError) as exc:
        raise ModelError(f"think-mode adapter {think_dir} cannot be applied: {exc}") from exc
