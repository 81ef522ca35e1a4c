"""Qwen2-Audio-7B-Instruct through transformers 5.x."""

from __future__ import annotations

from typing import ClassVar

from cuelab.core.models.hf_alm import AudioLMAdapter


class Qwen2AudioAdapter(AudioLMAdapter):
    """Qwen2-Audio-Instruct: Whisper-style audio tower, projector, Qwen-7B language model.

    The prompt follows the official chat template: the user turn opens with
    ``Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>`` and a newline, then the instruction.
    """

    family: ClassVar[str] = "qwen2-audio"
    model_class_name: ClassVar[str] = "Qwen2AudioForConditionalGeneration"
    # Full module paths in transformers 5.x (a bare "audio_tower" matches nothing).
    skip_modules: ClassVar[tuple[str, ...]] = (
        "model.audio_tower",
        "model.multi_modal_projector",
        "lm_head",
    )
    audio_placeholder: ClassVar[str] = "Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
