"""Closed-set label scoring pieces: label token rows, prefix sharing, softmax, a prefix LRU.

The model adapters score a label as the summed log-probability of its tokens
followed by an end-of-turn token (which makes the label set prefix-free:
"sad" can no longer win on the mass of "sadness"). Probabilities are a
softmax over those sums. The token bookkeeping here is model-free so it can be
tested without a model.

Mapping a generated answer to a label is the task's job
(:func:`cuelab.core.tasks.emotion.parse_answer`).
"""

from __future__ import annotations

import math
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
