"""From eGeMAPS descriptors to six concept scores and tokens.

Following the seed paper, each concept is a small group of eGeMAPS
low-level-descriptor means (voiced frames only for the ``_sma3nz`` ones):

============  ==========================================================  =====
concept       descriptors (sign so that higher = more of the concept)
============  ==========================================================  =====
ENERGY        loudness
PITCH         F0 in semitones re 27.5 Hz
BRIGHTNESS    alpha ratio (+), Hammarberg index (−), slopes 0–500 Hz (+)
              and 500–1500 Hz (+)
DYNAMICS      spectral flux
FORMANTS      F1, F2, F3 centre frequencies
============  ==========================================================  =====

Each descriptor is robustly standardised with the norms profile's median and
IQR, and the concept score is the mean of its standardised descriptors. The
score is binned into five tokens with quantile edges fixed by the profile
(per gender for PITCH and FORMANTS when both the profile and the clip have a
gender). The descriptor table is :mod:`cuelab.core.cues.descriptors`; the
standardisation against a profile is :func:`cuelab.core.cues.norms.concept_scores`.
VOICE_QUALITY is categorical and comes from the rules in
:mod:`cuelab.core.cues.voice_quality`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cuelab.core.cues.descriptors import BINNED_CONCEPTS, CONCEPT_DESCRIPTORS, GENDERED_CONCEPTS
from cuelab.core.cues.norms import NormsProfile, concept_scores, default_norms, robust_z
from cuelab.core.cues.tokens import CONCEPTS, VOCAB, TokenSet, TokenTemplate
from cuelab.core.cues.voice_quality import classify_voice_quality

if TYPE_CHECKING:
    from cuelab.core.cues.extract import ClipFeatures
    from cuelab.core.cues.feature_cache import FeatureCache


@dataclass(frozen=True)
class ConceptResult:
    """Concept scores and tokens of one clip, with how they were reached.

    Attributes:
        scores: continuous score per binned concept (NaN when undefined,
            e.g. PITCH of a clip with no voiced frame).
        tokens: the resulting token set (all six concepts).
        edges_used: per binned concept, ``"global"``, ``"m"`` or ``"f"``.
        notes: human-readable remarks (fallbacks taken, undefined scores).
        vq_reason: why VOICE_QUALITY got its token.
    """

    scores: dict[str, float]
    tokens: TokenSet
    edges_used: dict[str, str]
    notes: tuple[str, ...] = ()
    vq_reason: str = ""
    robust: dict[str, float] = field(default_factory=dict)

    def text(self, template: TokenTemplate | None = None) -> str:
        """Token text as sent to a model."""
        return self.tokens.text(template)

    def to_json(self, path: str = "") -> dict[str, object]:
        """JSON-ready record (NaN → None), the ``cuelab tokens --json`` line."""
        return {
            "path": path,
            "scores": {k: (None if math.isnan(v) else round(v, 6)) for k, v in self.scores.items()},
            "tokens": self.tokens.to_dict(),
            "text": self.text(),
            "edges": dict(self.edges_used),
            "voice_quality_reason": self.vq_reason,
            "notes": list(self.notes),
        }


def bin_index(score: float, edges: list[float]) -> int:
    """Index 0–4 of ``score`` among four increasing quantile edges (MID for NaN)."""
    if not math.isfinite(score):
        return 2
    return int(np.searchsorted(np.asarray(edges), score, side="right"))


def compute_concepts(
    descriptors: Mapping[str, float],
    voiced_ratio: float,
    norms: NormsProfile | None = None,
    gender: str | None = None,
) -> ConceptResult:
    """Scores and tokens of one clip from its descriptor means.

    Args:
        descriptors: eGeMAPS LLD means (voiced-only for ``_sma3nz``).
        voiced_ratio: fraction of voiced frames (drives UNVOICED).
        norms: the norms profile (default: the shipped demo profile).
        gender: ``"m"``, ``"f"`` or None; selects per-gender edges for
            PITCH and FORMANTS when the profile has them.
    """
    norms = norms or default_norms()
    g = (gender or "").strip().lower() or None
    scores = concept_scores(descriptors, norms)
    tokens: dict[str, str] = {}
    edges_used: dict[str, str] = {}
    notes: list[str] = []
    for concept in BINNED_CONCEPTS:
        key = "global"
        if concept in GENDERED_CONCEPTS and g is not None:
            if g in norms.edges[concept]:
                key = g
            else:
                notes.append(f"{concept}: profile has no '{g}' edges, global edges used")
        edges_used[concept] = key
        if not math.isfinite(scores[concept]):
            notes.append(f"{concept}: undefined (no voiced frames), MID used")
        tokens[concept] = VOCAB[concept][bin_index(scores[concept], norms.edges[concept][key])]
    z = robust_z(descriptors, norms)
    vq, reason = classify_voice_quality(z, voiced_ratio, norms.voice_quality)
    tokens["VOICE_QUALITY"] = vq
    return ConceptResult(
        scores=scores,
        tokens=TokenSet(tokens),
        edges_used=edges_used,
        notes=tuple(notes),
        vq_reason=reason,
        robust=z,
    )


def concepts_for_features(
    features: ClipFeatures, norms: NormsProfile | None = None, gender: str | None = None
) -> ConceptResult:
    """:func:`compute_concepts` on a :class:`~cuelab.core.cues.extract.ClipFeatures`."""
    return compute_concepts(features.descriptors, features.voiced_ratio, norms, gender)


def concepts_for_file(
    path: str | Path,
    norms: NormsProfile | None = None,
    gender: str | None = None,
    cache: FeatureCache | None = None,
) -> ConceptResult:
    """Extract features of an audio file (cached) and compute its concepts."""
    from cuelab.core.cues.feature_cache import extract_file

    feats = extract_file(path, cache=cache)
    return concepts_for_features(feats, norms, gender)


__all__ = [
    "BINNED_CONCEPTS",
    "CONCEPTS",
    "CONCEPT_DESCRIPTORS",
    "GENDERED_CONCEPTS",
    "VOCAB",
    "ConceptResult",
    "NormsProfile",
    "TokenSet",
    "compute_concepts",
    "concept_scores",
    "concepts_for_features",
    "concepts_for_file",
    "default_norms",
    "robust_z",
]
