"""Several models on one clip, and concept sweeps: the state, free of Qt.

The side-by-side panel keeps which extra models are loaded and their last
answers here, and calls :func:`score_pair` and :func:`sweep` in workers, so the
rules (at most four models, one answer per model, one sweep level per token
variant) are tested without a window and read the same as a batch run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cuelab.core.cues.tokens import VOCAB, TokenSet

#: Models shown side by side, the session's own model included.
MAX_MODELS = 4


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
        """The model specs shown, the session's own model first."""
        return ([primary] if primary else []) + [s for s in self.models if s != primary]

    def clear_answers(self) -> None:
        """Drop every answer (another clip, region or label set)."""
        self.answers.clear()


def _probs(probs: dict[str, float], labels: Sequence[str]) -> dict[str, float]:
    """Probabilities in label order; a missing or non-finite value becomes 0 (as the
    predictions panel shows them: ``cuelab.ui.session._clean``, which imports Qt)."""
    out = {}
    for label in labels:
        v = float(probs.get(label, 0.0))
        out[label] = v if math.isfinite(v) else 0.0
    return out


def score_pair(
    adapter: Any, spec: str, clip: Any, task: Any, labels: Sequence[str], text: str, key: str
) -> ModelAnswer:
    """``adapter``'s audio-only and with-``text`` answers, as the predictions panel shows them."""
    preds = adapter.score_labels(clip, task, list(labels), [None, text or None])
    return ModelAnswer(
        spec=spec,
        labels=tuple(labels),
        audio_only=_probs(preds[0].probs, labels),
        with_tokens=_probs(preds[1].probs, labels) if text else None,
        token_text=text,
        clip_key=key,
    )


def sweep_texts(tokens: TokenSet, concept: str) -> list[tuple[str, str]]:
    """(level, token text) for every level of ``concept``, the other tokens as they are."""
    return [(level, tokens.replace(**{concept: level}).text()) for level in VOCAB[concept]]


def sweep(
    adapter: Any, clip: Any, task: Any, labels: Sequence[str], tokens: TokenSet, concept: str
) -> dict[str, list[float]]:
    """Each label's probability at each level of ``concept`` (one model call for all levels)."""
    texts = [text for _level, text in sweep_texts(tokens, concept)]
    preds = adapter.score_labels(clip, task, list(labels), texts)
    rows = [_probs(p.probs, labels) for p in preds]
    return {lab: [row[lab] for row in rows] for lab in labels}
