"""The window's view of the workbench: Qt signals and job slots over a Qt-free model.

The state and its rules (clip, region, analysis, tokens and their undo history, models,
label set, pins, last answers, stale-result dropping) live in
:class:`cuelab.core.workbench.Workbench`; this :class:`Session` subscribes to its events and
re-emits them as signals, and runs the heavy work it asks for (audio decoding, openSMILE,
model loading, scoring) in job slots, so it never blocks the GUI thread. Views take the
session in ``__init__``, subscribe to its signals and call its methods; none of them talks
to another view.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal

from cuelab.core.cues import NormsProfile, TokenSet
from cuelab.core.datasets import Manifest, ManifestRow
from cuelab.core.workbench import (
    MIN_SEGMENT_S,
    Analysis,
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
    PredictionUpdate,
    Refused,
    TokensChanged,
    Workbench,
    analyse,
)
from cuelab.ui.remedies import model_error
from cuelab.ui.workers import Debouncer, Job, JobSlot, run_detached, shutdown_pool

__all__ = ["MIN_SEGMENT_S", "PREDICT_DEBOUNCE_MS", "PredictionUpdate", "Session"]

log = logging.getLogger(__name__)

PREDICT_DEBOUNCE_MS = 150
ANALYSING_WARNING = "the clip is being analysed; edit the tokens once they appear"

#: Workbench attributes the views read (and a few tests set) through the session.
_STATE = ("task", "labels", "model_labels", "label_source", "norms", "norms_path", "manifest",
          "row", "clip_name", "clip_path", "audio", "sr", "source_info", "region",
          "analysis_error", "features", "concepts", "aligned", "tokens", "model", "model_spec",
          "model_options", "model_remote", "model_trust", "prediction", "predictions_by_clip",
          "pins", "gender", "clip_key")  # fmt: skip


class Session(QObject):
    """The workbench as Qt signals, and the job slots that do its work.

    ``wb`` is the :class:`~cuelab.core.workbench.Workbench`; its state is also readable as
    attributes of the session (``session.tokens`` is ``session.wb.tokens``).

    Signals:
        clip_changed(): new audio (file, dataset row or mix).
        analysis_changed(): features and concept scores of the analysed segment.
        tokens_changed(): the current token set (edited or not).
        model_changed(): a model was loaded or unloaded.
        prediction_changed(object): a :class:`PredictionUpdate`.
        manifest_changed(): a dataset was opened.
        labels_changed(): the label set scored (``labels``, ``label_source``) changed.
        norms_changed(): another norms profile was chosen.
        pins_changed(): answers were pinned or unpinned (``pins``).
        analysis_started(): features of a new clip or region are being computed;
            the concepts and tokens on screen are stale until analysis_changed.
        clip_failed(str) / analysis_failed(str) / predict_failed(str) /
            model_failed(str): one job failed (one line), for the panel that
            shows it where it happened until the user acts.
        message(str) / warning(str) / error(str): for the notifier.
    """

    clip_changed = Signal()
    analysis_changed = Signal()
    tokens_changed = Signal()
    model_changed = Signal()
    prediction_changed = Signal(object)
    manifest_changed = Signal()
    labels_changed = Signal()
    norms_changed = Signal()
    pins_changed = Signal()
    analysis_started = Signal()
    clip_failed = Signal(str)
    analysis_failed = Signal(str)
    predict_failed = Signal(str)
    model_failed = Signal(str)
    message = Signal(str)
    warning = Signal(str)
    error = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.wb = Workbench()
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(4)
        self.slots: dict[str, JobSlot] = {}
        for name in ("manifest", "clip", "analysis", "predict", "model", "shuffle"):
            slot = JobSlot(name, self.pool, self)
            slot.failed.connect(self.error)
            self.slots[name] = slot
        self.slots["clip"].failed.connect(self._on_clip_failed)
        self._opening: tuple[Path, ManifestRow | None] | None = None
        self.slots["analysis"].failed.connect(self._on_analysis_failed)
        self.slots["predict"].failed.connect(self.predict_failed)
        self.slots["model"].failed.connect(self.model_failed)
        #: Which row a newly opened manifest shows first (None, or returning None: its first).
        self.start_row: Callable[[Manifest], ManifestRow | None] | None = None
        # One model call at a time: adapters keep per-clip caches and are not re-entrant.
        self._model_lock = threading.Lock()
        self._predict_debounce = Debouncer(PREDICT_DEBOUNCE_MS, self._start_predict, self)
        self._analysis_debounce = Debouncer(PREDICT_DEBOUNCE_MS, self._start_analysis, self)
        self._signals = {
            ClipChanged: self.clip_changed,
            AnalysisStarted: self.analysis_started,
            AnalysisChanged: self.analysis_changed,
            TokensChanged: self.tokens_changed,
            ModelChanged: self.model_changed,
            LabelsChanged: self.labels_changed,
            ManifestChanged: self.manifest_changed,
            NormsChanged: self.norms_changed,
            PinsChanged: self.pins_changed,
        }
        self.wb.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        """The workbench's events as signals (and the work some of them ask for)."""
        signal = self._signals.get(type(event))
        if signal is not None:
            signal.emit()
        elif isinstance(event, PredictionChanged):
            self.prediction_changed.emit(event.update)
        elif isinstance(event, PredictionNeeded):
            self.request_prediction()
        elif isinstance(event, Refused):
            self.warning.emit(event.message)

    # --- clip ---------------------------------------------------------------------

    def open_file(self, path: str | Path, row: ManifestRow | None = None) -> None:
        """Decode ``path`` at 16 kHz in a worker, then show and analyse it."""
        p = Path(path)
        self._opening = (p, row)

        def work(job: Job) -> tuple[np.ndarray, int, tuple[int, int] | None]:
            from cuelab.core.audio import audio_format, load_audio
            from cuelab.core.errors import AudioError, CueLabError

            job.report(f"Loading {p.name}…")
            try:
                x, sr = load_audio(p, sr=16000)
            except CueLabError as exc:
                msg = str(exc)
                raise AudioError(msg if p.name in msg else f"{p.name}: {msg}") from exc
            return x, sr, audio_format(p)

        def done(value: tuple[np.ndarray, int, tuple[int, int] | None], _s: float) -> None:
            self._opening = None
            self.wb.row = row
            self._show(value[0], value[1], p.name, path=p, source=value[2])

        self.slots["clip"].start(work, done)

    def _on_clip_failed(self, message: str) -> None:
        """A clip did not open. A manifest row that fails becomes the open (empty) clip, so
        the highlighted row, the annotation box and the clip view agree and nothing of the
        previous clip can be played or scored as if it were this one."""
        opening, self._opening = self._opening, None
        if opening is not None and opening[1] is not None:
            self.slots["predict"].cancel()
            self.slots["analysis"].cancel()
            self._predict_debounce.stop()
            self._analysis_debounce.stop()
            self.wb.clip_failed(opening[0], opening[1], message)
        self.clip_failed.emit(message)

    def open_row(self, row: ManifestRow) -> None:
        """Open one clip of the current manifest."""
        self.open_file(row.path, row)

    def set_audio(
        self,
        x: np.ndarray,
        sr: int,
        name: str,
        *,
        keep_path: bool = False,
        source: tuple[int, int] | None = None,
    ) -> None:
        """Show an in-memory signal (a mix) as the analysed clip.

        ``source`` is the file's own (rate, channels) when the signal was decoded from one.
        """
        self._show(x, sr, name, path=self.wb.clip_path if keep_path else None, source=source)

    def _show(
        self, x: np.ndarray, sr: int, name: str, *, path: Path | None,
        source: tuple[int, int] | None,
    ) -> None:  # fmt: skip
        # Answers still being computed belong to the previous clip: drop them.
        self.slots["predict"].cancel()
        self.slots["shuffle"].cancel()
        self.wb.set_clip(x, sr, name, path=path, source=source)
        self.message.emit(f"Analysing {name}…")
        self._analysis_debounce.trigger()
        self._analysis_debounce.flush()

    @property
    def analysing(self) -> bool:
        """True while the shown concepts and tokens are not yet those of the clip/region."""
        wb = self.wb
        if wb.audio is None or wb.analysis_error:
            return False
        return wb.analysing or self._analysis_debounce.pending or self.slots["analysis"].busy

    def _on_analysis_failed(self, message: str) -> None:
        self.wb.analysis_failed(message)
        self.analysis_failed.emit(message)

    def set_region(self, region: tuple[float, float] | None) -> bool:
        """Analyse only ``(t0, t1)`` seconds of the clip (None: all of it).

        Returns:
            False when ``region`` is shorter than :data:`MIN_SEGMENT_S`: the
            whole clip is analysed instead (the caller says so).
        """
        honoured, changed = self.wb.set_region(region)
        if changed:
            # Any prediction under way or waiting was for the old region: drop it.
            self.slots["predict"].cancel()
            self._predict_debounce.stop()
            self._analysis_debounce.trigger()
            self.analysis_started.emit()
        return honoured

    def segment(self) -> np.ndarray:
        """The analysed samples (the region, or the whole clip)."""
        return self.wb.segment()

    def _start_analysis(self) -> None:
        wb = self.wb
        if wb.audio is None:
            return
        stamp = wb.stamp()
        wb.analysis_started()
        x, sr, name, norms, gender = wb.segment(), wb.sr, wb.clip_name, wb.norms, wb.gender

        def work(job: Job) -> Analysis:
            job.report(f"openSMILE on {name}…")
            return analyse(x, sr, name=name, norms=norms, gender=gender, check=job.check)

        self.slots["analysis"].start(work, lambda result, _s: wb.accept_analysis(result, stamp))

    # --- norms and tokens ---------------------------------------------------------

    def set_norms(self, norms: NormsProfile, path: Path | None = None) -> None:
        """Use another norms profile; the tokens are re-derived (cheap, no openSMILE)."""
        self.wb.set_norms(norms, path)

    def set_tokens(self, tokens: TokenSet) -> None:
        """Replace the current token set (an edit) and schedule a new prediction.

        Refused (with a warning) while a new clip or region is analysed: the
        edit would apply to the previous clip's tokens and be replaced a
        moment later.
        """
        if self.analysing:
            self.warning.emit(ANALYSING_WARNING)
            return
        self.wb.set_tokens(tokens)

    def reset_tokens(self) -> None:
        """Back to the clip's own (aligned) tokens."""
        if self.wb.aligned is not None:
            self.set_tokens(self.wb.aligned)

    def undo(self) -> None:
        """Back to the token set before the last edit (the workbench's history)."""
        if not self.analysing:
            self.wb.undo()

    def redo(self) -> None:
        """Re-apply the edit undone last."""
        if not self.analysing:
            self.wb.redo()

    def shuffle_tokens(self, seed: int | None = None) -> None:
        """Take the tokens of another clip of the open dataset (computed in a worker)."""
        manifest, row = self.wb.manifest, self.wb.row
        if manifest is None or len(manifest) < 2:
            self.error.emit("shuffle needs an open dataset with at least two clips")
            return
        rng = np.random.default_rng(seed)
        others = [r for r in manifest.rows if row is None or r.path != row.path]
        donor = others[int(rng.integers(len(others)))]
        norms = self.wb.norms

        def work(job: Job) -> Analysis:
            from cuelab.core.cues import FeatureCache

            job.report(f"Tokens of {donor.utt_id}…")
            return analyse(path=donor.path, norms=norms, gender=donor.gender,
                           cache=FeatureCache())  # fmt: skip

        def done(result: Analysis, _s: float) -> None:
            self.set_tokens(result.tokens)
            self.message.emit(f"Tokens shuffled in from {donor.utt_id}")

        self.slots["shuffle"].start(work, done)

    # --- model and predictions ----------------------------------------------------

    def load_model(
        self,
        spec: str,
        quant: str = "auto",
        device: str = "auto",
        remote: dict[str, str] | None = None,
        trust: dict[str, bool] | None = None,
    ) -> None:
        """Load ``spec`` in a worker; the previous model stays until the new one is ready.

        ``remote`` holds the ``scoring`` and ``prompt_family`` of an ``openai:`` model;
        ``trust`` the user's ``allow_pickle`` and ``trust_remote_code`` (both off unless
        ticked: never implied).
        """
        trusted = {k: bool(v) for k, v in (trust or {}).items()
                   if k in ("allow_pickle", "trust_remote_code")}  # fmt: skip
        task_labels = self.wb.task.labels

        def work(job: Job) -> Any:
            from cuelab.core.errors import CueLabError, ModelError
            from cuelab.core.models import LoadOptions, load_model

            job.report(f"Loading {spec}…")
            options = LoadOptions(quant=quant, device=device, on_progress=job.report,
                                  **(remote or {}), **trusted)  # fmt: skip
            try:
                adapter = load_model(spec, options)
            except CueLabError as exc:
                raise ModelError(model_error("load", spec, exc)) from exc
            except Exception as exc:  # a library's own error: detail to the log, one line here
                log.exception("loading %s failed", spec)
                raise ModelError(model_error("load", spec, _one_line(exc))) from exc
            # A classifier with fixed classes says so in describe(); ALMs take the task's.
            labels = adapter.describe().get("labels") or task_labels
            return adapter, tuple(str(lab) for lab in labels)

        def done(value: tuple[Any, tuple[str, ...]], seconds: float) -> None:
            adapter, labels = value
            self.message.emit(f"Model {spec} loaded in {seconds:.1f} s")
            old = self.wb.set_model(adapter, spec, labels, options=(quant, device),
                                    remote=remote, trust=trusted)  # fmt: skip
            if old is not None:
                self._unload_later(old)

        self.slots["model"].start(work, done)

    def unload_model(self) -> None:
        """Drop the model (and cancel any pending prediction)."""
        self.slots["model"].cancel()
        self.slots["predict"].cancel()
        old = self.wb.clear_model()
        if old is not None:
            self._unload_later(old)

    @property
    def model_lock(self) -> threading.Lock:
        """Held around every call into the model (adapters are not re-entrant)."""
        return self._model_lock

    def _unload_later(self, adapter: Any) -> None:
        """Free a model in a worker, after any call still using it returns."""
        lock = self._model_lock

        def work(_job: Job) -> None:
            with lock:
                adapter.unload()

        run_detached(self.pool, work)

    def request_prediction(self) -> None:
        """Ask for a new prediction after the edits settle (debounced)."""
        if self.wb.model is not None and self.wb.audio is not None:
            self._predict_debounce.trigger()

    def _start_predict(self) -> None:
        requested = self._predict_debounce.first_trigger or time.perf_counter()
        wb = self.wb
        if wb.model is None or wb.audio is None or wb.features is None:
            return
        stamp, clip = wb.stamp(), wb.clip()
        text = wb.tokens.text() if wb.tokens is not None and len(wb.tokens) else ""
        model, task, labels, key = wb.model, wb.task, wb.labels, wb.clip_key
        region, spec, lock = wb.region, wb.model_spec, self._model_lock

        def work(job: Job) -> tuple[Any, Any]:
            from cuelab.core.errors import CueLabError, ModelError

            with lock:
                job.check()  # a newer edit arrived while an older call held the model
                job.report("Scoring…")
                try:
                    preds = model.score_labels(clip, task, labels, [None, text or None])
                except CueLabError as exc:
                    raise ModelError(model_error("score", spec, exc)) from exc
                except Exception as exc:  # detail to the log, one line on screen
                    log.exception("scoring with %s failed", spec)
                    raise ModelError(model_error("score", spec, _one_line(exc))) from exc
            return preds[0], preds[1]

        def done(preds: tuple[Any, Any], seconds: float) -> None:
            audio_only, with_tokens = preds
            update = PredictionUpdate(
                labels=tuple(labels),
                audio_only=_clean(audio_only.probs, labels),
                with_tokens=_clean(with_tokens.probs, labels) if text else None,
                token_text=text,
                model_s=seconds,
                latency_s=time.perf_counter() - requested,
                clip_key=key,
                model_spec=spec,
                region=region,
            )
            wb.accept_prediction(update, stamp)  # dropped if the clip or tokens moved on

        self.slots["predict"].start(work, done)

    # --- dataset ------------------------------------------------------------------

    def open_folder(self, path: str | Path) -> None:
        """Open a folder of audio (in a worker): its manifest, or one written beside the clips."""

        def work(job: Job) -> Path:
            from cuelab.core.datasets import manifest_for_folder

            job.report(f"Reading {Path(path).name}…")
            return manifest_for_folder(path)

        self.slots["manifest"].start(work, lambda manifest, _s: self.open_manifest(manifest))

    def open_manifest(self, path: str | Path, open_first: bool = True) -> None:
        """Read a manifest (in a worker: it checks every file) and show its first clip."""

        def work(job: Job) -> Manifest:
            from cuelab.core.datasets import read_manifest

            job.report(f"Reading {Path(path).name}…")
            return read_manifest(path)

        def done(manifest: Manifest, _s: float) -> None:
            self.wb.set_manifest(manifest)
            if open_first and manifest.rows:
                # the dataset panel returns to the last clip its annotator labelled
                again = self.start_row(manifest) if self.start_row is not None else None
                self.open_row(again or manifest.rows[0])

        self.slots["manifest"].start(work, done)

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel all jobs and wait for the workers (window close)."""
        return shutdown_pool(self.pool, list(self.slots.values()), timeout_ms)


def _state(name: str) -> property:
    def get(self: Session) -> Any:
        return getattr(self.wb, name)

    def put(self: Session, value: Any) -> None:
        setattr(self.wb, name, value)

    return property(get, put, doc=f"``Workbench.{name}``")


for _name in _STATE:  # the session reads (and writes) the workbench's state
    setattr(Session, _name, _state(_name))


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _clean(probs: dict[str, float], labels: tuple[str, ...] | list[str]) -> dict[str, float]:
    """Probabilities in label order; a missing or non-finite value becomes 0."""
    out = {}
    for label in labels:
        v = float(probs.get(label, 0.0))
        out[label] = v if math.isfinite(v) else 0.0
    return out
