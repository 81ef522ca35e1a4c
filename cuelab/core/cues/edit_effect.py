"""An audio edit's effect on the concept tokens: scores and tokens before and after.

The DSP and its acoustic measurement live in :mod:`cuelab.core.audio` (the
layer below); this module adds what only the cue layer knows: which concepts
each edit is meant to move, the eGeMAPS concept scores and tokens of the input
and of the output, and a flag for every concept whose token moved although the
edit does not target it (resynthesis alone moves ENERGY on some clips; a pitch
shift moves eGeMAPS's formant estimates, which follow F0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cuelab.core.audio.edit_engines import apply_edit
from cuelab.core.audio.edit_measure import check_edit, measure_edit
from cuelab.core.audio.edits import EditChain, check_engine, parse_edit
from cuelab.core.cues.concepts import ConceptResult, concepts_for_features
from cuelab.core.cues.extract import extract_signal
from cuelab.core.cues.norms import NormsProfile

# The concepts each edit kind is meant to move (a move elsewhere is flagged).
TARGET_CONCEPTS: dict[str, frozenset[str]] = {
    "pitch": frozenset({"PITCH"}),
    "pitch-range": frozenset({"PITCH", "DYNAMICS"}),
    "tempo": frozenset({"DYNAMICS"}),
    "gain": frozenset({"ENERGY"}),
    "loudness": frozenset({"ENERGY"}),
    "tilt": frozenset({"BRIGHTNESS", "ENERGY"}),
    "formant": frozenset({"FORMANTS", "BRIGHTNESS"}),
    "jitter": frozenset({"VOICE_QUALITY"}),
    "shimmer": frozenset({"VOICE_QUALITY"}),
    "breathiness": frozenset({"VOICE_QUALITY", "BRIGHTNESS"}),
    "resynth": frozenset(),
}


def target_concepts(chain: EditChain) -> frozenset[str]:
    """The union of the concepts the chain's edits target."""
    out: frozenset[str] = frozenset()
    for kind in chain.kinds():
        out |= TARGET_CONCEPTS[kind]
    return out


def _json_float(v: float) -> float | None:
    return None if not math.isfinite(v) else round(float(v), 6)


@dataclass
class EditReport:
    """An edited signal and everything measured about it (the ``cuelab edit --json`` object)."""

    chain: EditChain
    engine: str
    audio: np.ndarray
    sr: int
    measured: dict[str, Any]
    before: ConceptResult
    after: ConceptResult
    flags: list[str] = field(default_factory=list)

    def concepts_moved(self) -> list[str]:
        """Concepts whose token changed, in the tokens' order."""
        return [c for c, t in self.before.tokens.items() if self.after.tokens[c] != t]

    def to_json(self) -> dict[str, Any]:
        """The record with the issue's keys first (``edit`` … ``flags``), then detail."""
        requested = {e.kind: (None if math.isnan(e.amount) else e.amount) for e in self.chain.edits}
        measured = {
            k: (_json_float(v) if isinstance(v, float) else v) for k, v in self.measured.items()
        }
        return {
            "edit": self.chain.text(),
            "engine": self.engine,
            "requested": requested,
            "measured": measured,
            "tokens_before": self.before.tokens.to_dict(),
            "tokens_after": self.after.tokens.to_dict(),
            "flags": list(self.flags),
            "scores_before": {k: _json_float(v) for k, v in self.before.scores.items()},
            "scores_after": {k: _json_float(v) for k, v in self.after.scores.items()},
            "concepts_moved": self.concepts_moved(),
            "targets": sorted(target_concepts(self.chain)),
        }


def concept_flags(chain: EditChain, before: ConceptResult, after: ConceptResult) -> list[str]:
    """One flag per concept whose token moved though no edit in ``chain`` targets it."""
    targets = target_concepts(chain)
    return [
        f"{concept} moved {before.tokens[concept]} -> {after.tokens[concept]} "
        f"(not a target of {chain.text()})"
        for concept in before.tokens
        if concept not in targets and after.tokens[concept] != before.tokens[concept]
    ]


def edit_and_measure(
    x: np.ndarray,
    sr: int,
    chain: EditChain | str,
    engine: str = "world",
    *,
    norms: NormsProfile | None = None,
    gender: str | None = None,
    seed: int = 0,
    tracker: str = "auto",
) -> EditReport:
    """Apply ``chain`` to ``x`` and measure it acoustically and in concept tokens.

    Raises:
        EditError: a bad edit or engine.
        FeatureError: openSMILE failed on the input or the output.
    """
    if isinstance(chain, str):
        chain = parse_edit(chain)
    engine = check_engine(engine, chain)
    y = apply_edit(x, sr, chain, engine, seed=seed)
    measured = measure_edit(x, y, sr, tracker=tracker)
    before = concepts_for_features(extract_signal(x, sr, name="the input audio"), norms, gender)
    after_feats = extract_signal(y, sr, name=f"the edited audio ({chain.text()})")
    after = concepts_for_features(after_feats, norms, gender)
    flags = check_edit(chain, measured) + concept_flags(chain, before, after)
    return EditReport(chain, engine, y, sr, measured, before, after, flags)
