"""The window's state and rules, free of Qt: one clip, its analysis, its tokens with their
own undo history, the models, the pins and the last answers.

A :class:`Workbench` holds what the window shows and decides what is current; it never runs
heavy work itself. Its owner (the Qt session, or a script) starts analyses and predictions
where it likes, stamps them with :meth:`Workbench.stamp` when they start and hands the
results back through :meth:`Workbench.accept_analysis` / :meth:`Workbench.accept_prediction`,
which drop a result computed for an older clip, region, token set, label set or model. Every
change is announced to the subscribers as a typed event (napari's evented models, in small).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cuelab.core.workbench.answers import CompareState, PredictionUpdate
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
from cuelab.core.workbench.flow import Analysis, make_clip, segment

if TYPE_CHECKING:
    from cuelab.core.cues import ClipFeatures
    from cuelab.core.cues.concepts import ConceptResult
    from cuelab.core.cues.norms import NormsProfile
    from cuelab.core.cues.tokens import TokenSet
    from cuelab.core.datasets import Manifest, ManifestRow
    from cuelab.core.models.base import Clip
    from cuelab.core.tasks.prompts import TaskPrompt

#: The shortest region analysed on its own; a shorter one analyses the whole clip.
MIN_SEGMENT_S = 0.25
#: Answers pinned for comparison, in order.
PIN_LETTERS = ("A", "B", "C")


@dataclass(frozen=True)
class Stamp:
    """The generations a job's inputs were taken at; a result with an old stamp is stale."""

    clip: int
    tokens: int
    model: int


class Workbench:
    """The state the window shows, its rules and its history, as plain Python.

    ``subscribe(callback)`` registers a callable that receives every :class:`Event`.
    """

    def __init__(self, task: TaskPrompt | None = None, norms: NormsProfile | None = None) -> None:
        from cuelab.core.cues.norms import default_norms
        from cuelab.core.tasks.prompts import load_task

        self._subscribers: list[Callable[[Event], None]] = []
        self.task: TaskPrompt = task if task is not None else load_task("ser")
        self._task_labels: tuple[str, ...] = tuple(self.task.labels)
        # What is scored: the open dataset's labels when it has some, else the model's
        # (``cuelab.core.runs.plan.dataset_labels``, the rule batch runs follow too).
        self.labels: tuple[str, ...] = self._task_labels
        self.model_labels: tuple[str, ...] = self._task_labels
        self.label_source = "the task's labels"
        self.norms: NormsProfile = norms if norms is not None else default_norms()
        self.norms_path: Path | None = None
        self.manifest: Manifest | None = None
        self.row: ManifestRow | None = None
        self.clip_name = ""
        self.clip_path: Path | None = None
        self.audio: np.ndarray | None = None
        self.sr = 16000
        self.source_info: tuple[int, int] | None = None  # the file's rate and channels
        self.region: tuple[float, float] | None = None
        self.analysis_error = ""  # why the shown clip has no concepts, if its analysis failed
        self.features: ClipFeatures | None = None
        self.concepts: ConceptResult | None = None
        self.aligned: TokenSet | None = None
        self.tokens: TokenSet | None = None
        self._undo: list[TokenSet] = []
        self._redo: list[TokenSet] = []
        self.model: Any = None
        self.model_spec = ""
        self.model_options: tuple[str, str] = ("auto", "auto")  # quant, device it was loaded with
        self.model_remote: dict[str, str] = {}  # scoring, prompt family of an openai: model
        self.model_trust: dict[str, bool] = {}  # allow_pickle, trust_remote_code as ticked
        self.compare = CompareState()
        self.prediction: PredictionUpdate | None = None
        self.predictions_by_clip: dict[str, PredictionUpdate] = {}
        self.pins: list[PredictionUpdate] = []
        self._gen = {"clip": 0, "tokens": 0, "model": 0}

    # --- events -----------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` on every change; returns a function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def _emit(self, event: Event) -> None:
        for callback in list(self._subscribers):
            callback(event)

    # --- generations and stale results ------------------------------------------------

    def stamp(self) -> Stamp:
        """The current generations, to give a job when it starts."""
        return Stamp(self._gen["clip"], self._gen["tokens"], self._gen["model"])

    def _bump(self, *names: str) -> None:
        for name in names:
            self._gen[name] += 1

    # --- clip and region --------------------------------------------------------------

    @property
    def gender(self) -> str | None:
        """Gender of the current manifest row (selects per-gender edges)."""
        return self.row.gender if self.row is not None else None

    @property
    def clip_key(self) -> str:
        """A stable key of the shown clip: its path, or the name of a mix."""
        return str(self.clip_path) if self.clip_path is not None else self.clip_name

    def set_clip(
        self,
        x: np.ndarray,
        sr: int,
        name: str,
        *,
        path: Path | None = None,
        source: tuple[int, int] | None = None,
    ) -> None:
        """Show a signal as the clip; ``path`` is the file it was decoded from (None: a mix)
        and ``source`` that file's own (rate, channels). ``row`` is left as it is."""
        self.clip_path = path
        self.source_info = source
        self.audio = np.asarray(x, dtype=np.float32)
        self.sr = int(sr)
        self.clip_name = name
        self.region = None
        self.features = None
        self.concepts = None
        self.prediction = None
        self._bump("clip")
        self._drop_stale_answers()
        self._emit(ClipChanged())

    def clip_failed(self, path: Path, row: ManifestRow | None, message: str) -> None:
        """A dataset row did not open: it becomes the open, empty clip, so nothing of the
        previous clip can be played or scored as if it were this one."""
        self.row, self.clip_path = row, path
        self.audio, self.source_info, self.clip_name = None, None, ""
        self.region = self.features = self.concepts = self.prediction = None
        self.tokens = self.aligned = None  # the previous clip's: not to be copied or sent
        self._undo, self._redo = [], []
        self.analysis_error = message
        self._bump("clip", "tokens")
        self._drop_stale_answers()
        self._emit(ClipChanged())

    def set_region(self, region: tuple[float, float] | None) -> tuple[bool, bool]:
        """Analyse only ``(t0, t1)`` seconds of the clip (None: all of it).

        Returns:
            (honoured, changed): honoured is False when ``region`` is shorter than
            :data:`MIN_SEGMENT_S` (the whole clip is analysed instead); changed says
            whether a new analysis is needed.
        """
        honoured = True
        if region is not None:
            t0, t1 = sorted(region)
            if t1 - t0 < MIN_SEGMENT_S:
                region, honoured = None, False
            else:
                region = (max(0.0, t0), t1)
        if region == self.region:
            return honoured, False
        self.region = region
        # Features, concepts and answers of the old region must not meet the new region's audio.
        self.features = None
        self.concepts = None
        self._bump("clip")
        self._drop_stale_answers()
        return honoured, True

    def segment(self) -> np.ndarray:
        """The analysed samples (the region, or the whole clip)."""
        return segment(self.audio, self.sr, self.region)

    def clip(self) -> Clip:
        """The analysed segment as a model sees it (features, manifest fields)."""
        meta = dict(self.row.fields) if self.row is not None else {}
        return make_clip(self.segment(), self.sr, self.clip_name, self.features, meta)

    @property
    def analysing(self) -> bool:
        """True while the shown concepts and tokens are not yet those of the clip/region."""
        return self.audio is not None and not self.analysis_error and self.concepts is None

    def analysis_started(self) -> None:
        """An analysis of the current segment was started."""
        self.analysis_error = ""
        self._drop_stale_pins()
        self._emit(AnalysisStarted())

    def analysis_failed(self, message: str, stamp: Stamp | None = None) -> bool:
        """The current segment's analysis failed (a stale failure is dropped)."""
        if stamp is not None and stamp.clip != self._gen["clip"]:
            return False
        self.analysis_error = message
        return True

    def accept_analysis(self, analysis: Analysis, stamp: Stamp | None = None) -> bool:
        """Show ``analysis`` unless it was computed for an older clip or region."""
        if stamp is not None and stamp.clip != self._gen["clip"]:
            return False
        self.features = analysis.features
        self.set_concepts(analysis.concepts)
        return True

    def set_concepts(self, concepts: ConceptResult) -> None:
        """New concepts: their tokens become current and the edit history starts afresh."""
        self.concepts = concepts
        self.aligned = concepts.tokens
        self.tokens = concepts.tokens
        self._undo, self._redo = [], []
        self._bump("tokens")
        self._emit(AnalysisChanged())
        self._emit(TokensChanged())
        self._emit(PredictionNeeded())

    # --- norms and tokens -------------------------------------------------------------

    def set_norms(self, norms: NormsProfile, path: Path | None = None) -> None:
        """Use another norms profile; the tokens are re-derived (cheap, no openSMILE)."""
        from cuelab.core.cues.concepts import concepts_for_features

        self.norms = norms
        self.norms_path = path
        self._emit(NormsChanged())
        if self.features is not None:
            self.set_concepts(concepts_for_features(self.features, norms, self.gender))

    def set_tokens(self, tokens: TokenSet, *, record: bool = True) -> bool:
        """Replace the current token set (an edit); the previous one goes on the undo history.

        Refused while a new clip or region is analysed (the edit would apply to the previous
        clip's tokens) and when the clip has no tokens; returns whether the tokens changed.
        """
        if self.analysing:
            self._emit(Refused("the clip is being analysed; edit the tokens once they appear"))
            return False
        if self.concepts is None:
            self._emit(Refused("this clip has no tokens to edit (its analysis failed)"))
            return False
        if tokens == self.tokens:
            return False
        if record and self.tokens is not None:
            self._undo.append(self.tokens)
            self._redo = []
        self.tokens = tokens
        self._bump("tokens")
        self._emit(TokensChanged())
        self._emit(PredictionNeeded())
        return True

    def reset_tokens(self) -> None:
        """Back to the clip's own (aligned) tokens."""
        if self.aligned is not None:
            self.set_tokens(self.aligned)

    @property
    def can_undo(self) -> bool:
        """Whether there is an edit to undo."""
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        """Whether there is an undone edit to re-apply."""
        return bool(self._redo)

    def undo(self) -> bool:
        """Back to the token set before the last edit."""
        return self._step(self._undo, self._redo)

    def redo(self) -> bool:
        """Re-apply the edit undone last."""
        return self._step(self._redo, self._undo)

    def _step(self, source: list[TokenSet], target: list[TokenSet]) -> bool:
        if not source or self.analysing or self.tokens is None:
            return False
        tokens, current = source[-1], self.tokens
        if not self.set_tokens(tokens, record=False):
            return False
        source.pop()
        target.append(current)
        return True

    # --- models -----------------------------------------------------------------------

    def set_model(
        self,
        adapter: Any,
        spec: str,
        labels: Sequence[str],
        *,
        options: tuple[str, str] = ("auto", "auto"),
        remote: dict[str, str] | None = None,
        trust: dict[str, bool] | None = None,
    ) -> Any:
        """Make ``adapter`` the primary model; returns the previous adapter (to unload)."""
        old = self.model
        self.model = adapter
        self.model_spec = spec
        self.model_options = options
        self.model_remote = dict(remote or {})
        self.model_trust = dict(trust or {})
        self.model_labels = tuple(labels)
        self._bump("model")
        self.update_labels(predict=False)
        self._drop_stale_pins()
        self._emit(ModelChanged())
        self._emit(PredictionNeeded())
        return old if old is not adapter else None

    def clear_model(self) -> Any:
        """Drop the primary model; returns it (to unload) or None."""
        old = self.model
        self.model = None
        self.model_spec = ""
        self.model_labels = self._task_labels
        self._bump("model")
        self.update_labels(predict=False)
        self._drop_stale_pins()
        self._emit(ModelChanged())
        return old

    # --- dataset and labels -----------------------------------------------------------

    def set_manifest(self, manifest: Manifest) -> None:
        """A dataset was opened: its labels may now be the ones scored."""
        self.manifest = manifest
        self.update_labels()
        self._emit(ManifestChanged())

    def update_labels(self, predict: bool = True) -> None:
        """Apply the one label-set rule: the open dataset's labels when it has at least
        two, else the loaded model's own (a classifier's classes, or the task's)."""
        from cuelab.core.runs.plan import dataset_labels
        from cuelab.core.tasks.prompts import load_task

        found = dataset_labels(self.manifest.rows) if self.manifest is not None else ()
        if len(found) >= 2 and self.manifest is not None:
            labels, source = found, f"the dataset's labels ({self.manifest.path.name})"
        else:
            labels = self.model_labels
            source = "the model's labels" if self.model is not None else "the task's labels"
        changed = (labels, source) != (self.labels, self.label_source)
        self.labels, self.label_source = labels, source
        if tuple(self.task.labels) != labels:
            self.task = load_task(self.task.name, labels)  # as a batch run builds its prompt
        if changed:
            self._bump("model")
            self.compare.clear_answers()  # answers over the old label set
            self._emit(LabelsChanged())
            if predict:
                self._emit(PredictionNeeded())

    # --- predictions and pins ---------------------------------------------------------

    def accept_prediction(self, update: PredictionUpdate, stamp: Stamp | None = None) -> bool:
        """Show ``update`` unless its clip, region, tokens, labels or model are no longer
        the current ones (it is then dropped, and False returned)."""
        if stamp is not None and stamp != self.stamp():
            return False
        self.prediction = update
        self.predictions_by_clip[update.clip_key] = update
        self._emit(PredictionChanged(update))
        return True

    @property
    def pinned(self) -> PredictionUpdate | None:
        """The answer pinned as A (None: nothing pinned)."""
        return self.pins[0] if self.pins else None

    def pin(self, update: PredictionUpdate) -> bool:
        """Pin ``update`` as the next free letter; False when all are in use."""
        if len(self.pins) >= len(PIN_LETTERS):
            return False
        self.pins.append(update)
        self._emit(PinsChanged())
        return True

    def unpin_all(self) -> None:
        """Forget every pinned answer."""
        if self.pins:
            self.pins = []
            self._emit(PinsChanged())

    def pin_text(self, letter: str) -> str:
        """The token text pinned as ``letter`` ('' when that letter is free)."""
        i = PIN_LETTERS.index(letter)
        return self.pins[i].token_text if i < len(self.pins) else ""

    def _drop_stale_answers(self) -> None:
        """Another clip or region: the side-by-side answers go, and the pins unless they
        were answered for what is shown now."""
        self.compare.clear_answers()
        self._drop_stale_pins()

    def _drop_stale_pins(self) -> None:
        """Unpin all once A was answered for another clip, part of the clip or model:
        Δ against a pin compares token sets, never audio or models."""
        a = self.pinned
        if a is not None and (a.clip_key, a.region, a.model_spec) != (
            self.clip_key, self.region, self.model_spec
        ):  # fmt: skip
            self.unpin_all()  # all pins share A's clip, region and model
