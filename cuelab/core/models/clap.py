"""CLAP zero-shot baseline: audio-text similarity over label descriptions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from cuelab.core.errors import ModelError
from cuelab.core.models.base import Clip, LoadOptions, ModelAdapter, Prediction
from cuelab.core.models.loading import Checkpoint, load_pretrained, resolve_location
from cuelab.core.prompts import TaskPrompt

LABEL_TEMPLATE = "a person speaking in a {label} voice"


class ClapAdapter(ModelAdapter):
    """transformers ``ClapModel``: softmax over the audio's similarity to each label text.

    CLAP reads no instruction, so concept tokens cannot reach it: every token variant
    gets the same audio-only prediction. That makes it the floor of the comparison.
    Audio longer than the extractor's window is cut to its centre (not a random crop)
    so results are reproducible.
    """

    family: ClassVar[str] = "clap"
    skip_modules: ClassVar[tuple[str, ...]] = ("audio_model", "audio_projection", "text_projection")

    def __init__(
        self, model: Any, processor: Any, checkpoint: Checkpoint, device: str, quant: str
    ) -> None:
        self.model = model
        self.processor = processor
        self.checkpoint = checkpoint
        self.device = device
        self.quant = quant
        self.label_template = LABEL_TEMPLATE

    @classmethod
    def load(cls, location: str, options: LoadOptions) -> ClapAdapter:
        """Load a CLAP checkpoint and its processor from a folder or the local cache."""
        from transformers import AutoProcessor, ClapModel

        checkpoint = resolve_location(location, options)
        try:
            processor = AutoProcessor.from_pretrained(checkpoint.folder, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelError(f"processor of {location} cannot be loaded: {exc}") from exc
        model, device, quant = load_pretrained(ClapModel, checkpoint, options, cls.skip_modules)
        return cls(model, processor, checkpoint, device, quant)

    def score_labels(
        self,
        clip: Clip,
        task: TaskPrompt,
        labels: Sequence[str],
        token_texts: Sequence[str | None],
    ) -> list[Prediction]:
        """Zero-shot probabilities; identical for every token variant (see the class doc)."""
        import torch

        if self.model is None:
            raise ModelError(f"model {self.checkpoint.location} was unloaded")
        fe = self.processor.feature_extractor
        audio = _resample_centre(clip, fe.sampling_rate, fe.nb_max_samples)
        texts = [self.label_template.format(label=label) for label in labels]
        inputs = self.processor(
            text=texts,
            audio=[audio],
            sampling_rate=fe.sampling_rate,
            return_tensors="pt",
            padding=True,
        )
        device = next(self.model.parameters()).device
        inputs = {k: v.to(device) for k, v in inputs.items()}
        with torch.inference_mode():
            logits = self.model(**inputs).logits_per_audio[0].float()
        probs = torch.softmax(logits, dim=-1).tolist()
        best = labels[int(np.argmax(probs))]
        return [Prediction(best, dict(zip(labels, probs))) for _ in token_texts]

    def describe(self) -> dict[str, object]:
        """Provenance for run.json."""
        return {
            "family": self.family,
            "location": self.checkpoint.location,
            "revision": self.checkpoint.revision,
            "folder_hash": self.checkpoint.digest,
            "quant": self.quant,
            "device": self.device,
            "label_template": self.label_template,
        }

    def unload(self) -> None:
        """Drop the model."""
        self.model = None


def _resample_centre(clip: Clip, rate: int, max_samples: int) -> np.ndarray:
    import soxr

    audio = np.asarray(clip.audio, dtype=np.float32)
    if clip.sr != rate:
        audio = soxr.resample(audio, clip.sr, rate).astype(np.float32)
    if len(audio) > max_samples:
        start = (len(audio) - max_samples) // 2
        audio = audio[start : start + max_samples]
    return audio
