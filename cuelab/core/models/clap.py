"""CLAP zero-shot baseline: audio-text similarity over label descriptions.

For speech emotion it scores label descriptions; for speech over background
(SSEU) :meth:`ClapAdapter.score_sseu` gives a softmax over scene prompts and a
sigmoid per event prompt. CLAP cannot transcribe, so it has no ASR answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from cuelab.core.errors import ModelError
from cuelab.core.models.base import Clip, LoadOptions, ModelAdapter, Prediction
from cuelab.core.models.capabilities import (
    Capability,
    ScoreRequest,
    SimilarityRequest,
    SimilarityResult,
)
from cuelab.core.models.loading import Checkpoint, load_pretrained, resolve_location

LABEL_TEMPLATE = "a person speaking in a {label} voice"
SCENE_TEMPLATE = "the sound of the {label}"
EVENT_TEMPLATE = "the sound of {label}"


class ClapAdapter(ModelAdapter):
    """transformers ``ClapModel``: softmax over the audio's similarity to each label text.

    CLAP reads no instruction, so concept tokens cannot reach it: every token variant
    gets the same audio-only prediction. That makes it the floor of the comparison.
    Audio longer than the extractor's window is cut to its centre (not a random crop)
    so results are reproducible.
    """

    family: ClassVar[str] = "clap"
    scoring_method: ClassVar[str] = "similarity"
    provides: ClassVar[frozenset[Capability]] = frozenset({Capability.SCORE, Capability.SIMILARITY})
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
        self.scene_template = SCENE_TEMPLATE
        self.event_template = EVENT_TEMPLATE
        # the batch engines load audio at this rate, so CLAP hears the set's full band
        self.sample_rate = int(processor.feature_extractor.sampling_rate)

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

    def score(self, request: ScoreRequest) -> list[Prediction]:
        """Zero-shot probabilities; identical for every token variant (see the class doc)."""
        import torch

        clip, labels, token_texts = request.clip, request.labels, request.token_texts
        texts = [self.label_template.format(label=label) for label in labels]
        logits = self._forward(clip, texts).logits_per_audio[0].float()
        probs = torch.softmax(logits, dim=-1).tolist()
        best = labels[int(np.argmax(probs))]
        return [Prediction(best, dict(zip(labels, probs))) for _ in token_texts]

    def score_sseu(
        self, clip: Clip, scenes: Sequence[str], events: Sequence[str]
    ) -> tuple[dict[str, float], dict[str, float]]:
        """:meth:`similarity` for ``scenes`` and ``events``."""
        return self.similarity(SimilarityRequest(clip, tuple(scenes), tuple(events)))

    def similarity(self, request: SimilarityRequest) -> SimilarityResult:
        """Zero-shot scene probabilities and event confidences for one clip.

        Scenes are exclusive: a softmax over CLAP's scaled similarities (its trained
        temperature, the usual zero-shot probability). Events are not: each gets the
        sigmoid of its cosine similarity with the audio, as SSEU-Bench maps embedding
        similarities to tag confidences; the unscaled cosine keeps the sigmoid away
        from 1, where confidences of different clips would tie and blur the mAP.
        Class names are shown as words (``car_passing`` → "car passing").

        Returns:
            ``(scene_probs, event_probs)``, each keyed by class (empty when no class).
        """
        import torch

        clip, scenes, events = request.clip, request.scenes, request.events
        if not scenes and not events:
            return {}, {}
        texts = [self.scene_template.format(label=label_words(s)) for s in scenes]
        texts += [self.event_template.format(label=label_words(e)) for e in events]
        out = self._forward(clip, texts)
        logits = out.logits_per_audio[0].double()
        audio_emb = torch.nn.functional.normalize(out.audio_embeds.double(), dim=-1)
        text_emb = torch.nn.functional.normalize(out.text_embeds.double(), dim=-1)
        cosine = (audio_emb @ text_emb.T)[0]
        n = len(scenes)
        scene_probs = torch.softmax(logits[:n], dim=-1).tolist() if n else []
        event_probs = torch.sigmoid(cosine[n:]).tolist()
        return dict(zip(scenes, scene_probs)), dict(zip(events, event_probs))

    def _forward(self, clip: Clip, texts: Sequence[str]) -> Any:
        """One CLAP pass: the clip's audio against ``texts``."""
        import torch

        if self.model is None:
            raise ModelError(f"model {self.checkpoint.location} was unloaded")
        fe = self.processor.feature_extractor
        audio = _resample_centre(clip, fe.sampling_rate, fe.nb_max_samples)
        inputs = self.processor(
            text=list(texts),
            audio=[audio],
            sampling_rate=fe.sampling_rate,
            return_tensors="pt",
            padding=True,
        )
        device = next(self.model.parameters()).device
        inputs = {k: v.to(device) for k, v in inputs.items()}
        with torch.inference_mode():
            return self.model(**inputs)

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
            "scene_template": self.scene_template,
            "event_template": self.event_template,
        }

    def unload(self) -> None:
        """Drop the model."""
        self.model = None


def label_words(label: str) -> str:
    """A label as words for a text prompt (``street_traffic`` -> ``street traffic``)."""
    return " ".join(label.replace("_", " ").split())


def _resample_centre(clip: Clip, rate: int, max_samples: int) -> np.ndarray:
    import soxr

    audio = np.asarray(clip.audio, dtype=np.float32)
    if clip.sr != rate:
        audio = soxr.resample(audio, clip.sr, rate).astype(np.float32)
    if len(audio) > max_samples:
        start = (len(audio) - max_samples) // 2
        audio = audio[start : start + max_samples]
    return audio
