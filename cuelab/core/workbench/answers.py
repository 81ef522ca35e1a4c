"""Answers the workbench shows: one model's prediction for a clip and token set, and the
models shown side by side with their last answers (at most :data:`MAX_MODELS`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: Models shown side by side, the primary model included.
MAX_MODELS = 4


def clean_probs(probs: dict[str, float], labels: Sequence[str]) -> dict[str, float]:
    """Probabilities in label order; a missing or non-finite value becomes 0."""
    out = {}
    for label in labels:
        v = float(probs.get(label, 0.0))
        out[label] = v if math.isfinite(v) else 0.0
    return out


@dataclass(frozen=True)
class PredictionUpdate:
    """Audio-only and with-tokens answers for one clip and token set.

    Attributes:
        labels: the label set, in display order.
        audio_only: probability per label without tokens.
        with_tokens: probability per label with ``token_text`` (None if no tokens).
        token_text: the token text exactly as sent.
        model_s: time spent in the model.
        latency_s: from the edit that asked for it to its arrival on screen.
        clip_key: which clip (path or name) it belongs to.
        model_spec: the model that answered.
        region: the analysed part of the clip (None: all of it).
    """

    labels: tuple[str, ...]
    audio_only: dict[str, float]
    with_tokens: dict[str, float] | None
    token_text: str
    model_s: float
    latency_s: float
    clip_key: str
    model_spec: str = ""
    region: tuple[float, float] | None = None

    @property
    def top_audio(self) -> str:
        """Most probable label without tokens."""
        return max(self.audio_only, key=self.audio_only.__getitem__)

    @property
    def top_tokens(self) -> str | None:
        """Most probable label with tokens."""
        if not self.with_tokens:
            return None
        return max(self.with_tokens, key=self.with_tokens.__getitem__)

    @property
    def shown(self) -> dict[str, float]:
        """The answer this update stands for: with its tokens, or audio only without."""
        return self.with_tokens if self.with_tokens is not None else self.audio_only


@dataclass(frozen=True)
class ModelAnswer:
    """One model's audio-only and with-tokens probabilities for the shown clip."""

    spec: str
    labels: tuple[str, ...]
    audio_only: dict[str, float]
    with_tokens: dict[str, float] | None
    token_text: str
    clip_key: str


@dataclass
class CompareState:
    """The extra models (in load order) and the last answer of every shown model."""

    models: dict[str, Any] = field(default_factory=dict)
    answers: dict[str, ModelAnswer] = field(default_factory=dict)

    def room(self, primary: str) -> int:
        """How many more models may be added beside ``primary`` ('' when none)."""
        used = len(self.models) + (1 if primary and primary not in self.models else 0)
        return MAX_MODELS - used

    def add(self, spec: str, adapter: Any, primary: str) -> None:
        """Keep ``adapter`` as ``spec``; refused (ValueError) past :data:`MAX_MODELS`."""
        if spec == primary or spec in self.models:
            raise ValueError(f"{spec} is already shown")
        if self.room(primary) <= 0:
            raise ValueError(f"at most {MAX_MODELS} models side by side")
        self.models[spec] = adapter

    def remove(self, spec: str) -> Any:
        """Forget ``spec`` and its answer; returns its adapter (for unloading) or None."""
        self.answers.pop(spec, None)
        return self.models.pop(spec, None)

    def columns(self, primary: str) -> list[str]:
        """The model specs shown, the primary model first."""
        return ([primary] if primary else []) + [s for s in self.models if s != primary]

    def clear_answers(self) -> None:
        """Drop every answer (another clip, region or label set)."""
        self.answers.clear()
