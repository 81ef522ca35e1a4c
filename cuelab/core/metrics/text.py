"""Word error rate and the English text normaliser it scores after.

An unparsed hypothesis counts as empty (every reference word a deletion),
following the convention of :mod:`cuelab.core.metrics`, which re-exports
everything here; import from there.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence

import numpy as np

from cuelab.core.metrics.base import MetricsError, is_unparsed

__all__ = ["normalise_text", "wer", "wer_counts", "wer_from_counts"]

_DECIMAL_MARK = re.compile(r"(?<=\d)[.,](?=\d)")
_APOSTROPHES = "'\u2019\u02bc"


def normalise_text(text: str) -> str:
    """English WER normaliser: lowercase, drop punctuation, collapse spaces.

    Apostrophes are deleted (``don't`` → ``dont``) and other punctuation
    becomes a space (``well-known`` → ``well known``), except a ``.`` or ``,``
    between digits (``3.5``, ``1,000``): numbers are left as written, not
    spelled out. Symbols such as ``%`` or ``$`` are kept. Unicode is NFKC
    normalised first so full-width and ligature forms compare equal.
    """
    s = unicodedata.normalize("NFKC", text).lower()
    keep = {m.start() for m in _DECIMAL_MARK.finditer(s)}
    chars = []
    for i, ch in enumerate(s):
        if ch in _APOSTROPHES:
            continue
        if unicodedata.category(ch).startswith("P") and i not in keep:
            chars.append(" ")
        else:
            chars.append(ch)
    return " ".join("".join(chars).split())


def wer_counts(
    references: Sequence[str], hypotheses: Sequence[str | None], *, normalise: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Word errors (S + D + I) and reference word counts per item.

    An unparsed hypothesis (None/NaN) counts as empty: every reference word
    is a deletion. Returning counts lets a bootstrap compute corpus WER
    (``errors.sum() / words.sum()``) without re-aligning.
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
