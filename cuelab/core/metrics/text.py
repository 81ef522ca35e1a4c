"""Word error rate, scored after Whisper's English text normaliser (or raw).

An unparsed hypothesis counts as empty (every reference word a deletion),
following the convention of :mod:`cuelab.core.metrics`, which re-exports
everything here; import from there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

from cuelab.core.metrics.base import MetricsError, is_unparsed

__all__ = ["NORMALISER", "normalise_text", "wer", "wer_counts", "wer_from_counts"]

#: What run records say the WER was computed after.
NORMALISER = "Whisper English text normaliser (whisper_normalizer.english.EnglishTextNormalizer)"


@lru_cache(maxsize=1)
def _whisper() -> Callable[[str], str]:
    try:
        from whisper_normalizer.english import EnglishTextNormalizer
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise MetricsError(
            "WER needs the whisper-normalizer package (pip install whisper-normalizer)"
        ) from exc
    return EnglishTextNormalizer()


def normalise_text(text: str) -> str:
    """Whisper's English text normaliser, as ASR leaderboards and audio eval kits apply it.

    Lower case, punctuation and symbols removed, contractions expanded,
    numbers written as digits, British spellings mapped to American ones
    ("colour" → "color"), fillers ("um", "hmm") dropped. It comes from the
    maintained ``whisper-normalizer`` package, a copy of the normaliser that
    ships with OpenAI's Whisper, never from CueLab's own rules.
    """
    return " ".join(_whisper()(str(text)).split())


def wer_counts(
    references: Sequence[str], hypotheses: Sequence[str | None], *, normalise: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Word errors (S + D + I) and reference word counts per item.

    With ``normalise`` (the default) both sides go through :func:`normalise_text`
    first; without it the texts are compared as written, split on white space
    (the "raw" WER). An unparsed hypothesis (None/NaN) counts as empty: every
    reference word is a deletion. Returning counts lets a bootstrap compute
    corpus WER (``errors.sum() / words.sum()``) without re-aligning.
    """
    refs, hyps = list(references), list(hypotheses)
    if len(refs) != len(hyps):
        raise MetricsError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if not refs:
        raise MetricsError("no items to score (empty references)")
    import jiwer

    errors = np.zeros(len(refs), dtype=np.int64)
    words = np.zeros(len(refs), dtype=np.int64)
    for i, (ref, hyp) in enumerate(zip(refs, hyps)):
        if not isinstance(ref, str):
            raise MetricsError(f"reference {i} is not text ({ref!r})")
        h = "" if is_unparsed(hyp) else str(hyp)
        r_norm, h_norm = (normalise_text(ref), normalise_text(h)) if normalise else (ref, h)
        r_words, h_words = r_norm.split(), h_norm.split()
        words[i] = len(r_words)
        if not r_words or not h_words:
            errors[i] = len(r_words) + len(h_words)
            continue
        out = jiwer.process_words(" ".join(r_words), " ".join(h_words))
        errors[i] = out.substitutions + out.deletions + out.insertions
    return errors, words


def wer(
    references: Sequence[str], hypotheses: Sequence[str | None], *, normalise: bool = True
) -> float:
    """Corpus word error rate: all word errors over all reference words.

    Raises:
        MetricsError: when the references hold no words at all.
    """
    errors, words = wer_counts(references, hypotheses, normalise=normalise)
    if words.sum() == 0:
        raise MetricsError("references contain no words; WER is undefined")
    return float(errors.sum() / words.sum())


def wer_from_counts(errors: np.ndarray, words: np.ndarray) -> float:
    """Corpus WER from :func:`wer_counts` output (NaN when there are no words)."""
    total = int(np.sum(words))
    return float(np.sum(errors) / total) if total else math.nan
