"""The data an adapter takes and gives: a clip in, predictions and generations out.

A leaf module (numpy only) so that the requests in
:mod:`cuelab.core.models.capabilities` and the adapter contract in
:mod:`cuelab.core.models.base` can both name these shapes without importing each
other; :mod:`cuelab.core.models.base` re-exports them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from cuelab.core.errors import ModelError

if TYPE_CHECKING:
    from cuelab.core.cues.extract import ClipFeatures


@dataclass(frozen=True)
class Sampling:
    """Seeded sampling for free generation; ``None`` in its place means greedy decoding.

    Greedy answers do not depend on a seed, so several seeds of a greedy run repeat one
    answer. Sampling draws a different answer per seed, which is what a spread over seeds
    measures; the seed makes each draw reproducible.

    Attributes:
        temperature: softmax temperature (> 0).
        top_p: nucleus mass kept (0 < top_p <= 1); top-k filtering is off.
        seed: seeds the draw (>= 0); the same seed gives the same text.
    """

    temperature: float = 0.7
    top_p: float = 0.9
    seed: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ModelError(f"sampling temperature must be above 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ModelError(f"sampling top_p must be in (0, 1], got {self.top_p}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ModelError(f"sampling seed must be an integer, got {self.seed!r}")
        if not 0 <= self.seed < 2**64:
            raise ModelError(f"sampling seed must be in [0, 2**64), got {self.seed}")

    def describe(self) -> dict[str, object]:
        """The decoding parameters, for run records and JSON output."""
        return {"decoding": "sampling", "temperature": self.temperature, "top_p": self.top_p}


@dataclass
class Clip:
    """One audio clip to analyse.

    Attributes:
        audio: mono float32 samples at ``sr``.
        sr: sample rate (16 kHz everywhere in CueLab).
        utt_id: the clip's id in its manifest (or the file name).
        features: eGeMAPS features from :mod:`cuelab.core.cues.extract`, when already computed;
            adapters that need them compute them otherwise.
        meta: the manifest row (label, transcript, gender, ...).
    """

    audio: np.ndarray
    sr: int = 16000
    utt_id: str = ""
    features: ClipFeatures | None = None
    meta: dict[str, str] = field(default_factory=dict)


@dataclass
class Prediction:
    """A model's answer for one clip under one prompt variant.

    Attributes:
        label: the chosen label, or None when a free answer did not parse.
        probs: a probability per label (empty for free generation).
        raw_output: the generated text, when the answer was generated.
        unparsed: True when a generated answer named no label; it is counted, never guessed.
        scoring: how this answer was reached, when the adapter chooses per answer (a remote
            model: ``first-token``, ``continuation``, ``generate``...); else the adapter's
            :attr:`ModelAdapter.scoring_method`.
        finish_reason: how a generated answer ended (``stop``, ``length``; "" when scored).
    """

    label: str | None
    probs: dict[str, float]
    raw_output: str | None = None
    unparsed: bool = False
    scoring: str = ""
    finish_reason: str = ""


@dataclass(frozen=True)
class Generation:
    """A generated answer with how it ended.

    Attributes:
        text: the answer, stripped.
        finish_reason: ``stop`` (end of turn or a stop string), ``length`` (the token
            limit), or "" when the family does not say.
        tokens: generated tokens (0 when unknown).
        prompt: the exact text the model was given, audio placeholder unexpanded.
        decoding: every generation parameter actually used.
    """

    text: str
    finish_reason: str = ""
    tokens: int = 0
    prompt: str = ""
    decoding: dict[str, object] = field(default_factory=dict)
