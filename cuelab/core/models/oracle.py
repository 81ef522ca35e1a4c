"""The oracle: answers with the manifest's ground truth.

It gives the upper bound that the speech/scene/event paper reports (WER 0,
mACC 100, mAP 100) and a sanity check for the whole evaluation pipeline: a
run with the oracle must score perfectly, whatever the tokens say.
"""

from __future__ import annotations

from typing import ClassVar

from cuelab.core.errors import ModelError
from cuelab.core.models.base import (
    Generation,
    LoadOptions,
    ModelAdapter,
    Prediction,
)
from cuelab.core.models.capabilities import Capability, GenerateRequest, ScoreRequest


class OracleAdapter(ModelAdapter):
    """Reads the answer from ``clip.meta`` (the manifest row)."""

    family = "oracle"
    scoring_method = "oracle"
    #: Speech/scene/event runs read this model's answer from the manifest row
    #: (:func:`cuelab.core.tasks.sseu.score.manifest_answer`) instead of generating.
    provides: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.SCORE, Capability.GENERATE, Capability.MANIFEST_ANSWERS}
    )

    def __init__(self, location: str = "") -> None:
        self.location = location

    @classmethod
    def load(cls, location: str, options: LoadOptions) -> OracleAdapter:
        """The oracle has no weights; ``location`` is ignored (``oracle:-`` is fine)."""
        return cls(location)

    def score(self, request: ScoreRequest) -> list[Prediction]:
        """Probability 1 on the manifest label for every token variant."""
        clip, labels, token_texts = request.clip, request.labels, request.token_texts
        truth = clip.meta.get("label", "")
        if not truth:
            raise ModelError(f"oracle: clip '{clip.utt_id}' has no label in its manifest row")
        if truth not in labels:
            raise ModelError(
                f"oracle: label '{truth}' of clip '{clip.utt_id}' is not in {list(labels)}"
            )
        probs = {lab: float(lab == truth) for lab in labels}
        return [Prediction(label=truth, probs=dict(probs)) for _ in token_texts]

    def complete(self, request: GenerateRequest) -> Generation:
        """The ground-truth answer: the transcript when there is one, else the label.

        ``sampling`` and ``stop`` are accepted and ignored: the truth is the same for
        every seed.
        """
        clip = request.clip
        answer = clip.meta.get("transcript") or clip.meta.get("label")
        if not answer:
            raise ModelError(f"oracle: clip '{clip.utt_id}' has no transcript or label")
        return Generation(answer, "stop")

    def describe(self) -> dict[str, object]:
        """Provenance: nothing but the family."""
        return {"family": self.family, "location": self.location, "quant": "none", "device": "cpu"}
