"""Several models on one clip, and concept sweeps: Qt-free functions run in workers.

The side-by-side panel keeps which extra models are loaded and their last answers in the
workbench (:class:`cuelab.core.workbench.CompareState`, at most four models, one answer per
model), and calls :func:`score_pair` and :func:`sweep` in workers, so the rules (one sweep
level per token variant) are tested without a window and read the same as a batch run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cuelab.core.cues import VOCAB, TokenSet
from cuelab.core.workbench import MAX_MODELS, CompareState, ModelAnswer
from cuelab.core.workbench import clean_probs as _probs

__all__ = ["MAX_MODELS", "CompareState", "ModelAnswer", "score_pair", "sweep", "sweep_texts"]


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
