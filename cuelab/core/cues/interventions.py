"""Token interventions: what the model is told about the acoustics.

Conditions (the string form is used on the command line and in run folders):

``audio-only``
    No tokens at all: the baseline prompt.
``correct``
    The clip's own (aligned) tokens.
``shuffle``
    The paper's definition: the token sets of the split are reassigned by a
    uniformly random permutation, so the marginal distribution of token sets
    is preserved exactly and a clip may keep its own set (about one clip per
    split does). :func:`shuffle_token_sets` reports how many keep their own
    set and how many receive one equal to it. Different seeds give different
    permutations.
``shuffle-derange``
    CueLab's stricter variant: a uniformly drawn derangement, so no clip keeps
    its own set by index (two clips may still carry equal sets).
``conflict``
    Ordinal inversion on the five-level concepts (VERY_LOW↔VERY_HIGH,
    LOW↔HIGH, MID stays) and, for VOICE_QUALITY, the involution in
    :data:`VQ_CONFLICT` (every condition is its own inverse).
``corrupt:P``
    The paper's definition: each position independently is kept with
    probability 1 − P and otherwise redrawn uniformly from that concept's
    whole vocabulary, which may return the same token. The effective change
    rate is therefore P·(1 − 1/|V|): 40 % of the five-level tokens at P = 0.5.
``corrupt-change:P``
    CueLab's variant: a redrawn position takes a *different* token, so the
    effective change rate is P. Both draw the same positions for a clip and
    seed (one generator stream per (seed, P, clip)); they differ only in the
    replacement. Runs record the effective change rate of every condition.
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


def corrupt(
    tokens: TokenSet, p: float, rng: np.random.Generator, *, always_change: bool = False
) -> CorruptResult:
    """Redraw each position with probability ``p`` (see ``corrupt:P`` in the module docstring).

    Args:
        tokens: the clip's own tokens.
        p: probability that a position is redrawn.
        rng: the clip's generator (:func:`clip_rng`).
        always_change: ``corrupt-change``: the redraw excludes the original token.
    """
    if not 0.0 <= p <= 1.0:
        raise TokenError(f"corruption probability must be in [0, 1] (got {p})")
    out: dict[str, str] = {}
    changed = 0
    for concept, token in tokens.items():
        if rng.random() < p:
            choices = [t for t in VOCAB[concept] if t != token or not always_change]
            out[concept] = choices[int(rng.integers(len(choices)))]
        else:
            out[concept] = token
        changed += out[concept] != token
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
    """Shuffled token sets, the source index of each, and how many stayed the same.

    Attributes:
        own: clips that received their own set (the permutation's fixed points).
        same_content: clips that received a set equal to their own (``own`` included).
    """

    tokens: list[TokenSet]
    source: list[int]
    same_content: int
    own: int = 0


def shuffle_token_sets(
    token_sets: Sequence[TokenSet], seed: int, *, derange: bool = False
) -> ShuffleResult:
    """Reassign the split's token sets: a permutation, or a derangement (see module docstring)."""
    name = "shuffle-derange" if derange else "shuffle"
    rng = np.random.default_rng([seed, _stable_int(name)])
    if derange:
        perm = derangement(len(token_sets), rng)
    else:
        if not token_sets:
            raise TokenError("shuffle needs at least 1 clip in the split")
        perm = rng.permutation(len(token_sets))
    out = [token_sets[int(j)] for j in perm]
    same = sum(a == b for a, b in zip(token_sets, out))
    own = sum(int(j) == i for i, j in enumerate(perm))
    return ShuffleResult(out, [int(j) for j in perm], int(same), int(own))


@dataclass(frozen=True)
class Condition:
    """A parsed intervention condition (see the module docstring for names)."""

    kind: str  # audio-only | correct | shuffle[-derange] | conflict | corrupt[-change] | ablate | invert
    p: float = 0.0
    concept: str = ""

    @property
    def name(self) -> str:
        """Canonical string form, e.g. ``corrupt:0.3`` or ``ablate:PITCH``."""
        if self.kind in CORRUPT_KINDS:
            return f"{self.kind}:{self.p:g}"
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
        return self.kind in SHUFFLE_KINDS or self.kind in CORRUPT_KINDS

    @property
    def stream(self) -> str:
        """The generator stream of a per-clip draw: ``corrupt`` and ``corrupt-change``
        at the same P share it (same positions, different replacements)."""
        return f"corrupt:{self.p:g}" if self.kind in CORRUPT_KINDS else self.name


SHUFFLE_KINDS = ("shuffle", "shuffle-derange")
CORRUPT_KINDS = ("corrupt", "corrupt-change")
_SIMPLE = ("audio-only", "correct", "conflict", *SHUFFLE_KINDS)


def parse_condition(text: str) -> Condition:
    """Parse a condition name; errors list the valid forms."""
    raw = text.strip()
    kind, _, arg = raw.partition(":")
    kind = kind.lower().replace("_", "-")
    if kind in ("audio", "audioonly", "none"):
        kind = "audio-only"
    if kind in _SIMPLE and not arg:
        return Condition(kind)
    if kind in CORRUPT_KINDS:
        try:
            p = float(arg)
        except ValueError:
            raise TokenError(
                f"condition '{raw}': {kind} needs a probability, e.g. {kind}:0.3"
            ) from None
        if not 0.0 <= p <= 1.0:
            raise TokenError(f"condition '{raw}': probability must be in [0, 1]")
        return Condition(kind, p=p)
    if kind in ("ablate", "invert") and arg:
        return Condition(kind, concept=check_concept(arg))
    raise TokenError(
        f"unknown condition '{raw}' (use audio-only, correct, shuffle, shuffle-derange, "
        f"conflict, corrupt:P, corrupt-change:P, ablate:CONCEPT or invert:CONCEPT)"
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
    if cond.kind in SHUFFLE_KINDS:
        derange = cond.kind == "shuffle-derange"
        return list(shuffle_token_sets(token_sets, seed, derange=derange).tokens)
    if cond.kind in CORRUPT_KINDS:
        change = cond.kind == "corrupt-change"
        return [
            corrupt(t, cond.p, clip_rng(seed, cond.stream, u), always_change=change).tokens
            for t, u in zip(token_sets, utt_ids)
        ]
    mode = "drop" if cond.kind == "ablate" else "invert"
    return [ablate(t, cond.concept, mode) for t in token_sets]


__all__ = [
    "CONCEPTS",
    "CORRUPT_KINDS",
    "ORDINAL_CONCEPTS",
    "SHUFFLE_KINDS",
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
