"""Closed-set label scoring pieces and free-answer parsing.

The model adapters score a label as the summed log-probability of its tokens
followed by an end-of-turn token (which makes the label set prefix-free:
"sad" can no longer win on the mass of "sadness"). Probabilities are a
softmax over those sums. The token bookkeeping here is model-free so it can be
tested without a model.

A generated answer is mapped to a label by :func:`parse_answer`; an answer
that names no label, or several, is *unparsed* and recorded as such, never
guessed.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from cuelab.core.errors import ModelError

T = TypeVar("T")
Tokenize = Callable[[str], list[int]]


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two id sequences."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


@dataclass(frozen=True)
class ScoredRow:
    """One row to score: the full (unexpanded) token ids and where the label span starts.

    Attributes:
        variant: index of the token variant.
        label: index of the label.
        ids: token ids of prompt + label + end-of-turn.
        span_start: index in ``ids`` of the first label token.
    """

    variant: int
    label: int
    ids: tuple[int, ...]
    span_start: int


def label_rows(
    tokenize: Tokenize,
    prompts: Sequence[str],
    labels: Sequence[str],
    end_of_turn: str,
) -> list[ScoredRow]:
    """Tokenise every prompt x label continuation and locate each label span.

    The pieces (prompt, then label + end-of-turn) are tokenised separately and compared
    with tokenising the whole text. When they differ (a BPE merge across the boundary),
    the whole text's tokens are used and the span starts where they leave the prompt's
    tokens; if the label would swallow prompt tokens that way, scoring it is ill-defined
    and a ModelError names the label.
    """
    rows = []
    for v, prompt in enumerate(prompts):
        prompt_ids = tokenize(prompt)
        for j, label in enumerate(labels):
            whole = tokenize(prompt + label + end_of_turn)
            pieces = prompt_ids + tokenize(label + end_of_turn)
            if whole != pieces and whole[: len(prompt_ids)] != prompt_ids:
                raise ModelError(
                    f"label {label!r} merges with the end of the prompt when tokenised; "
                    "end the prompt template with a newline or rename the label"
                )
            if whole[len(prompt_ids) :] == []:
                raise ModelError(f"label {label!r} tokenises to nothing")
            rows.append(ScoredRow(v, j, tuple(whole), len(prompt_ids)))
    return rows


def shared_prefix_len(prefix_ids: Sequence[int], rows: Sequence[ScoredRow]) -> int:
    """How many leading tokens of ``prefix_ids`` every row shares (the reusable prefix).

    It is one less than the full match when a row would otherwise have no token after
    the prefix, because the last prefix position's logits score the first suffix token
    and each row needs at least one token of its own.
    """
    n = len(prefix_ids)
    for row in rows:
        n = min(n, common_prefix_len(prefix_ids, row.ids), row.span_start)
    return n


def probabilities(logprob_sums: Sequence[float]) -> list[float]:
    """Softmax over summed label log-probabilities (stable against large magnitudes)."""
    top = max(logprob_sums)
    exps = [math.exp(x - top) for x in logprob_sums]
    total = sum(exps)
    return [e / total for e in exps]


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


class PrefixLRU(Generic[T]):
    """A small least-recently-used store of per-clip prefix caches.

    Keys are hashes of everything that changes the prefix (audio, prompt, model), so a
    live edit of the token text in the window reuses the clip's prefix.
    """

    def __init__(self, maxsize: int = 4) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[Hashable, T] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> T | None:
        """Return the stored value (marking it recent), or None."""
        if key in self._items:
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key]
        self.misses += 1
        return None

    def put(self, key: Hashable, value: T) -> None:
        """Store a value, dropping the least recently used beyond ``maxsize``."""
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)

    def clear(self) -> None:
        """Drop every stored prefix (e.g. when the model unloads)."""
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
