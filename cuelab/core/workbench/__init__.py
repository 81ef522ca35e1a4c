"""A Qt-free workbench model: the state and rules the window shows, and the plain functions
(:func:`analyse`, :func:`predict`) that the window's workers and ``cuelab predict`` share.

The window (:mod:`cuelab.ui.session`) is a thin Qt view over :class:`Workbench`: it subscribes
to its events, turns them into signals and runs the work in job slots.
"""

from __future__ import annotations

from cuelab.core.workbench.answers import (
    MAX_MODELS,
    CompareState,
    ModelAnswer,
    PredictionUpdate,
    clean_probs,
)
from cuelab.core.workbench.events import (
    AnalysisChanged,
    AnalysisStarted,
    ClipChanged,
    Event,
    LabelsChanged,
    ManifestChanged,
    ModelChanged,
    NormsChanged,
    PinsChanged,
    PredictionChanged,
    PredictionNeeded,
    Refused,
    TokensChanged,
)
from cuelab.core.workbench.flow import (
    NEARBY_MANIFESTS,
    Analysis,
    PredictRequest,
    PredictResult,
    analyse,
    make_clip,
    manifest_gender,
    predict,
    segment,
)
from cuelab.core.workbench.state import MIN_SEGMENT_S, PIN_LETTERS, Stamp, Workbench

__all__ = [
    "MAX_MODELS",
    "MIN_SEGMENT_S",
    "NEARBY_MANIFESTS",
    "PIN_LETTERS",
    "Analysis",
    "AnalysisChanged",
    "AnalysisStarted",
    "ClipChanged",
    "CompareState",
    "Event",
    "LabelsChanged",
    "ManifestChanged",
    "ModelAnswer",
    "ModelChanged",
    "NormsChanged",
    "PinsChanged",
    "PredictRequest",
    "PredictResult",
    "PredictionChanged",
    "PredictionNeeded",
    "PredictionUpdate",
    "Refused",
    "Stamp",
    "TokensChanged",
    "Workbench",
    "analyse",
    "clean_probs",
    "make_clip",
    "manifest_gender",
    "predict",
    "segment",
]
