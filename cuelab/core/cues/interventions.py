"""Token interventions: what the model is told about the acoustics.

Conditions (the string form is used on the command line and in run folders):

``audio-only``
    No tokens at all: the baseline prompt.
``correct``
    The clip's own (aligned) tokens.
``shuffle``
    Each clip gets the token set of *another* clip of the same split. The
    assignment is a uniformly drawn derangement (no clip keeps its own set,
    by index), so the marginal distribution of token sets is preserved
    exactly. Two clips may still carry equal token sets;
    :func:`shuffle_token_sets` reports how many receive a set equal to their
    own. Different seeds give different derangements.
``conflict``
    Ordinal inversion on the five-level concepts (VERY_LOW↔VERY_HIGH,
    LOW↔HIGH, MID stays) and, for VOICE_QUALITY, the involution in
    :data:`VQ_CONFLICT` (every condition is its own inverse).
``corrupt:P``
    Each position independently, with probability P, is replaced by a
    uniform draw from that concept's vocabulary *excluding the original
    token*, so a selected position always changes and the effective change
    rate equals P in expectation (reported by :func:`corrupt`).
``ablate:CONCEPT`` / ``invert:CONCEPT``
    Beyond the paper: drop one concept, or invert just that concept.

Every random intervention takes an explicit seed; per-clip draws use a
generator keyed by (seed, condition, utterance id) so results do not depend
on which other clips are in the batch or in which order they run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cuelab.core.cues.tokens import CONCEPTS, ORDINAL_CONCEPTS, VOCAB, TokenSet, check_concept
from cuelab.core.errors import TokenError

#: VOICE_QUALITY under ``conflict``: an involution pairing opposite phonation.
#: BREATHY↔PRESSED are the two ends of glottal adduction (loose vs tight);
#: MODAL↔ROUGH oppose regular and irregular vibration; CREAKY↔UNVOICED
#: oppose slow, strong pulsing and no pulsing at all.
VQ_CONFLICT: dict[str, str] = {
    "MODAL": "ROUGH",
    "ROUGH": "MODAL",
    "BREATHY": "PRESSED",
    "PRESSED": "BREATHY",
    "CREAKY": "UNVOICED",
    "UNVOICED": "CREAKY",
}


def invert_token(concept: str, token: str) -> str:
    """The conflicting value of one token."""
    if concept == "VOICE_QUALITY":
        return VQ_CONFLICT[token]
    vocab = VOCAB[concept]
    return vocab[len(vocab) - 1 - vocab.index(token)]


def conflict(tokens: TokenSet) -> TokenSet:
    """Invert every concept (ordinal inversion; VOICE_QUALITY via :data:`VQ_CONFLICT`)."""
    return TokenSet({c: invert_token(c, t) for c, t in tokens.items()})


def ablate(tokens: TokenSet, concept: str, mode: str = "drop") -> TokenSet:
    """Drop (``mode="drop"``) or invert (``mode="invert"``) a single concept."""
    name = check_concept(concept)
    if mode == "drop":
        return tokens.without(name)
    if mode == "invert":
        if name not in tokens:
            return tokens
        return tokens.replace(**{name: invert_token(name, tokens[name])})
    raise TokenError(f"unknown ablation mode '{mode}' (use drop or invert)")


@dataclass(frozen=True)
class CorruptResult:
    """A corrupted token set and how many positions actually changed."""

    tokens: TokenSet
    changed: int
    positions: int

    @property
    def rate(self) -> float:
        """Effective change rate of this set."""
        return self.changed / self.positions if self.positions else 0.0


def corrupt(tokens: TokenSet, p: float, rng: np.random.Generator) -> CorruptResult:
    """Replace each position with probability ``p`` by a different token of its vocabulary."""
    if not 0.0 <= p <= 1.0:
        raise TokenError(f"corruption probability must be in [0, 1] (got {p})")
    out: dict[str, str] = {}
    changed = 0
    for concept, token in tokens.items():
        hit = rng.random() < p
        if hit:
            choices = [t for t in VOCAB[concept] if t != token]
            out[concept] = choices[int(rng.integers(len(choices)))]
            changed += 1
        else:
            out[concept] = token
    return CorruptResult(TokenSet(out), changed, len(tokens))


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random permutation of ``range(n)`` with no fixed point (n ≥ 2).

    Rejection sampling: about e ≈ 2.7 draws are needed on average.
    """
    if n < 2:
        raise TokenError(f"shuffle needs at least 2 clips in the split (got {n})")
    idx = np.arange(n)
    while True:
        perm = rng.permutation(n)
        if not np.any(perm == idx):
            return perm


@dataclass(frozen=True)
class ShuffleResult:
    """Shuffled token sets, the source index of each, and same-content count."""

    tokens: list[TokenSet]
    source: list[int]
    same_content: int


def shuffle_token_sets(token_sets: Sequence[TokenSet], seed: int) -> ShuffleResult:
    """Give each clip the tokens of another clip of the split (see module docstring)."""
    rng = np.random.default_rng([seed, _stable_int("shuffle")])
    perm = derangement(len(token_sets), rng)
    out = [token_sets[int(j)] for j in perm]
    same = sum(a == b for a, b in zip(token_sets, out))
    return ShuffleResult(out, [int(j) for j in perm], int(same))


@dataclass(frozen=True)
class Condition:
    """A parsed intervention condition (see the module docstring for names)."""

    kind: str  # audio-only | correct | shuffle | conflict | corrupt | ablate | invert
    p: float = 0.0
    concept: str = ""

    @property
    def name(self) -> str:
        """Canonical string form, e.g. ``corrupt:0.3`` or ``ablate:PITCH``."""
        if self.kind == "corrupt":
            return f"corrupt:{self.p:g}"
        if self.kind in ("ablate", "invert"):
            return f"{self.kind}:{self.concept}"
        return self.kind

    @property
    def uses_tokens(self) -> bool:
        """False only for ``audio-only``."""
        return self.kind != "audio-only"

    @property
    def is_random(self) -> bool:
        """True when the condition depends on the seed."""
        return self.kind in ("shuffle", "corrupt")


_SIMPLE = ("audio-only", "correct", "shuffle", "conflict")


def parse_condition(text: str) -> Condition:
    """Parse a condition name; errors list the valid forms."""
    raw = text.strip()
    kind, _, arg = raw.partition(":")
    kind = kind.lower().replace("_", "-")
    if kind in ("audio", "audioonly", "none"):
        kind = "audio-only"
    if kind in _SIMPLE and not arg:
        return Condition(kind)
    if kind == "corrupt":
        try:
            p = float(arg)
        except ValueError:
            raise TokenError(
                f"condition '{raw}': corrupt needs a probability, e.g. corrupt:0.3"
            ) from None
        if not 0.0 <= p <= 1.0:
            raise TokenError(f"condition '{raw}': probability must be in [0, 1]")
        return Condition("corrupt", p=p)
    if kind in ("ablate", "invert") and arg:
        return Condition(kind, concept=check_concept(arg))
    raise TokenError(
        f"unknown condition '{raw}' (use audio-only, correct, shuffle, conflict, corrupt:P, "
        f"ablate:CONCEPT or invert:CONCEPT)"
    )


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def clip_rng(seed: int, condition: str, utt_id: str) -> np.random.Generator:
    """Generator for one clip's draws, independent of batch composition and order."""
    return np.random.default_rng([seed, _stable_int(condition), _stable_int(utt_id)])


def apply_condition(
    condition: Condition | str,
    token_sets: Sequence[TokenSet],
    utt_ids: Sequence[str],
    seed: int = 0,
) -> list[TokenSet | None]:
    """Apply a condition to the aligned token sets of one split.

    Returns one entry per clip: a token set, or None for ``audio-only``.
    """
    cond = parse_condition(condition) if isinstance(condition, str) else condition
    if len(token_sets) != len(utt_ids):
        raise TokenError("apply_condition: one utterance id per token set is required")
    if cond.kind == "audio-only":
        return [None] * len(token_sets)
    if cond.kind == "correct":
        return list(token_sets)
    if cond.kind == "conflict":
        return [conflict(t) for t in token_sets]
    if cond.kind == "shuffle":
        return list(shuffle_token_sets(token_sets, seed).tokens)
    if cond.kind == "corrupt":
        return [
            corrupt(t, cond.p, clip_rng(seed, cond.name, u)).tokens
            for t, u in zip(token_sets, utt_ids)
        ]
    mode = "drop" if cond.kind == "ablate" else "invert"
    return [ablate(t, cond.concept, mode) for t in token_sets]


__all__ = [
    "CONCEPTS",
    "ORDINAL_CONCEPTS",
    "VQ_CONFLICT",
    "Condition",
    "ablate",
    "apply_condition",
    "conflict",
    "corrupt",
    "derangement",
    "parse_condition",
    "shuffle_token_sets",
]
