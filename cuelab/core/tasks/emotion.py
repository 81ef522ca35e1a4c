"""Speech emotion recognition as a task: label sets, and a free answer read as a label.

Closed-set scoring (one probability per label) needs no parsing; generated
text does. A generated answer is mapped to a label by :func:`parse_answer`; an
answer that names no label, or several, is *unparsed* and recorded as such,
never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cuelab.core.errors import ModelError
from cuelab.core.models.base import DEFAULT_LABELS

LABEL_SETS: dict[str, tuple[str, ...]] = {
    "iemocap": DEFAULT_LABELS,
    "aibo": ("angry", "emphatic", "neutral", "positive", "rest"),
}


def parse_labels(spec: str | Sequence[str]) -> tuple[str, ...]:
    """Return a label set from a name (``iemocap``, ``aibo``) or a comma-separated list.

    Raises:
        ModelError: the list is empty or has duplicates.
    """
    if not isinstance(spec, str):
        labels = tuple(str(label).strip() for label in spec)
    elif spec.strip().lower() in LABEL_SETS:
        return LABEL_SETS[spec.strip().lower()]
    else:
        labels = tuple(part.strip() for part in spec.split(","))
    labels = tuple(label for label in labels if label)
    if not labels:
        raise ModelError(f"label set {spec!r} is empty; use iemocap, aibo or a,b,c")
    if len(set(labels)) != len(labels):
        raise ModelError(f"label set {spec!r} has duplicate labels")
    return labels


_ALIASES: dict[str, tuple[str, ...]] = {
    "angry": ("anger", "angrily", "frustrated", "frustration", "mad"),
    "happy": ("happiness", "joy", "joyful", "excited", "excitement", "cheerful"),
    "sad": ("sadness", "sorrow", "unhappy"),
    "neutral": ("neutrality", "calm"),
    "positive": ("positivity",),
    "emphatic": ("emphasis",),
}
_ANSWER_LINE = re.compile(r"(?:answer|label|emotion|prediction)\s*(?:is)?\s*[:=-]\s*(.+)", re.I)


def _words(label: str) -> list[str]:
    return [label.lower(), *_ALIASES.get(label.lower(), ())]


def _mentioned(text: str, labels: Sequence[str]) -> list[str]:
    found = []
    lowered = text.lower()
    for label in labels:
        if any(re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", lowered) for w in _words(label)):
            found.append(label)
    return found


def _leading(text: str, labels: Sequence[str]) -> str | None:
    """The label the text opens with (after quotes, asterisks and spaces), if any."""
    head = text.strip().lstrip("\"'*`([ ").lower()
    for label in labels:
        for word in _words(label):
            if re.match(rf"{re.escape(word)}(?![\w-])", head):
                return label
    return None


def parse_answer(text: str, labels: Sequence[str]) -> str | None:
    """Map a free answer to one label, or None when it names none or several.

    Order of evidence: an explicit ``Answer: X`` line (the last one; the label it opens
    with, or the only one it names), then the first
    line if it names exactly one label, then the whole text if it names exactly one.
    Aliases (``anger`` for ``angry``, ...) count; a word inside another word does not.
    """
    explicit = _ANSWER_LINE.findall(text)
    if explicit:
        hits = _mentioned(explicit[-1], labels)
        lead = _leading(explicit[-1], labels)
        if lead is not None or len(hits) == 1:
            return lead or hits[0]
    stripped = text.strip()
    first = stripped.splitlines()[0] if stripped else ""
    for chunk in (first, stripped):
        hits = _mentioned(chunk, labels)
        if len(hits) == 1:
            return hits[0]
    return None
