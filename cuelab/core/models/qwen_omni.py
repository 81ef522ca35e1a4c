"""Qwen2.5-Omni: the thinker only (audio in, text out), from the full Omni checkpoint.

``Qwen2_5OmniProcessor`` imports torchvision for its video path, which has no CPU
build for every torch, so inputs are built from the tokenizer and the Whisper
feature extractor directly, the way the processor would for audio alone.
"""

from __future__ import annotations

from typing import Any, ClassVar

from cuelab.core.errors import ModelError
from cuelab.core.models.base import Clip, LoadOptions
from cuelab.core.models.hf_alm import AudioLMAdapter, _audio
from cuelab.core.models.loading import Checkpoint
from cuelab.core.models.suffix import PrefixState


class _OmniInputs:
    """Tokenizer + feature extractor, standing in for the processor (no torchvision)."""

    def __init__(self, tokenizer: Any, feature_extractor: Any) -> None:
        self.tokenizer = tokenizer
        self.feature_extractor = feature_extractor


class QwenOmniThinkerAdapter(AudioLMAdapter):
    """Qwen2.5-Omni thinker with mRoPE: suffixes after a cached prefix get explicit 3-D positions."""

    family: ClassVar[str] = "qwen2.5-omni"
    model_class_name: ClassVar[str] = "Qwen2_5OmniThinkerForConditionalGeneration"
    skip_modules: ClassVar[tuple[str, ...]] = ("model.audio_tower", "model.visual", "lm_head")
    system_prompt: ClassVar[str] = (
        "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of "
        "perceiving auditory and visual inputs, as well as generating text and speech."
    )
    audio_placeholder: ClassVar[str] = "<|audio_bos|><|AUDIO|><|audio_eos|>"
    audio_token: ClassVar[str] = "<|AUDIO|>"

    @classmethod
    def select_config(cls, config: Any) -> Any:
        """The thinker's config, from a full Omni config or a thinker-only one."""
        return getattr(config, "thinker_config", config)

    @classmethod
    def load_processor(cls, checkpoint: Checkpoint, options: LoadOptions) -> Any:
        """Tokenizer and feature extractor of the checkpoint (not the Omni processor)."""
        from transformers import AutoTokenizer, WhisperFeatureExtractor

        try:
            tokenizer = AutoTokenizer.from_pretrained(checkpoint.folder, local_files_only=True)
            features = WhisperFeatureExtractor.from_pretrained(
                checkpoint.folder, local_files_only=True
            )
        except (OSError, ValueError) as exc:
            raise ModelError(f"tokenizer of {checkpoint.location} cannot be loaded: {exc}") from exc
        return _OmniInputs(tokenizer, features)

    def model_inputs(self, text: str, clip: Clip) -> dict[str, Any]:
        """Expand the audio placeholder and compute features, as the Omni processor does."""
        fe = self.processor.feature_extractor
        feats = fe(
            [_audio(clip)],
            sampling_rate=16000,
            padding="max_length",
            return_attention_mask=True,
            return_tensors="pt",
        )
        mask = feats["attention_mask"]
        frames = (mask.sum(-1) - 1) // 2 + 1
        n_tokens = int(((frames - 2) // 2 + 1)[0])
        if text.count(self.audio_token) != 1:
            raise ModelError("the Omni prompt must hold exactly one audio placeholder")
        expanded = text.replace(self.audio_token, self.audio_token * n_tokens)
        enc = self.tokenizer([expanded], add_special_tokens=False, return_tensors="pt")
        return {
            "input_ids": enc["input_ids"],
            "attention_mask": enc["attention_mask"],
            "input_features": feats["input_features"],
            "feature_attention_mask": mask,
        }

    def after_prefix(self, state: PrefixState, inputs: dict[str, Any]) -> None:
        """Record the mRoPE offset of text after the audio (position = index + delta)."""
        import torch

        inner = self.model.model
        lengths = inputs["feature_attention_mask"].sum(-1)
        device = inputs["input_ids"].device
        _, delta = inner.get_rope_index(
            inputs["input_ids"],
            None,
            None,
            inputs["attention_mask"].to(device),
            False,
            lengths.to(device),
            None,
        )
        state.extra["rope_delta"] = torch.as_tensor(delta).reshape(-1)[0].item()

    def position_ids(self, state: PrefixState, starts: Any, width: int) -> Any:
        """Explicit 3-D positions: the thinker cannot infer them with a mask and a cache.

        Text after the audio sits at its index plus the prefix's mRoPE delta, on all
        three axes.
        """
        plain = super().position_ids(state, starts, width) + int(state.extra["rope_delta"])
        return plain[None].expand(3, -1, -1)
