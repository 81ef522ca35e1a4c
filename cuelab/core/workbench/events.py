"""The workbench's events: what changed, as typed objects its subscribers receive in order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cuelab.core.workbench.answers import PredictionUpdate


@dataclass(frozen=True)
class Event:
    """Something about the workbench changed; subscribers get these, in order."""


@dataclass(frozen=True)
class ClipChanged(Event):
    """New audio (a file, a dataset row or a mix), or the open clip failed and is empty."""


@dataclass(frozen=True)
class AnalysisStarted(Event):
    """A new clip or region is analysed: concepts and tokens are stale until AnalysisChanged."""


@dataclass(frozen=True)
class AnalysisChanged(Event):
    """Features and concepts of the analysed segment are in (tokens follow)."""


@dataclass(frozen=True)
class TokensChanged(Event):
    """The current token set changed (an edit, undo/redo, or a new analysis)."""


@dataclass(frozen=True)
class ModelChanged(Event):
    """The primary model was loaded or unloaded."""


@dataclass(frozen=True)
class LabelsChanged(Event):
    """The label set scored (``labels``, ``label_source``) changed."""


@dataclass(frozen=True)
class ManifestChanged(Event):
    """A dataset was opened."""


@dataclass(frozen=True)
class NormsChanged(Event):
    """Another norms profile is in use."""


@dataclass(frozen=True)
class PredictionChanged(Event):
    """A current answer arrived."""

    update: PredictionUpdate


@dataclass(frozen=True)
class PinsChanged(Event):
    """Answers were pinned or unpinned."""


@dataclass(frozen=True)
class PredictionNeeded(Event):
    """What the model answered is out of date: the owner should schedule a prediction."""


@dataclass(frozen=True)
class Refused(Event):
    """An asked change was refused; ``message`` says why, in one line."""

    message: str
