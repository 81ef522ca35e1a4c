"""The window's state: one clip, its tokens, the model and the latest answer.

Views take the :class:`Session` in ``__init__``, subscribe to its signals and
call its methods; none of them talks to another view. The session starts all
heavy work (audio decoding, openSMILE, model loading, scoring) in job slots,
so it never blocks the GUI thread, and drops stale answers by generation.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal

from cuelab.core.cues.concepts import ConceptResult, concepts_for_features
from cuelab.core.cues.norms import NormsProfile, default_norms
from cuelab.core.cues.tokens import TokenSet
from cuelab.core.datasets import Manifest, ManifestRow
from cuelab.ui.workers import Debouncer, Job, JobSlot, run_detached, shutdown_pool

log = logging.getLogger(__name__)

PREDICT_DEBOUNCE_MS = 150
MIN_SEGMENT_S = 0.25


@dataclass(frozen=True)
class PredictionUpdate:
    """Audio-only and with-tokens answers for one clip and token set.

    Attributes:
        labels: the label set, in display order.
        audio_only: probability per label without tokens.
        with_tokens: probability per label with ``token_text`` (None if no tokens).
        token_text: the token text exactly as sent.
        model_s: time spent in the model.
        latency_s: from the edit that asked for it to its arrival on screen.
        clip_key: which clip (path or name) it belongs to.
        model_spec: the model that answered.
        region: the analysed part of the clip (None: all of it).
    """

    labels: tuple[str, ...]
    audio_only: dict[str, float]
    with_tokens: dict[str, float] | None
    token_text: str
    model_s: float
    latency_s: float
    clip_key: str
    model_spec: str = ""
    region: tuple[float, float] | None = None

    @property
    def top_audio(self) -> str:
        """Most probable label without tokens."""
        return max(self.audio_only, key=self.audio_only.__getitem__)

    @property
    def top_tokens(self) -> str | None:
        """Most probable label with tokens."""
        if not self.with_tokens:
            return None
        return max(self.with_tokens, key=self.with_tokens.__getitem__)


@dataclass(frozen=True)
class _Analysis:
    features: Any
    concepts: ConceptResult


class Session(QObject):
    """State shared by the panels.

    Signals:
        clip_changed(): new audio (file, dataset row or mix).
        analysis_changed(): features and concept scores of the analysed segment.
        tokens_changed(): the current token set (edited or not).
        model_changed(): a model was loaded or unloaded.
        prediction_changed(object): a :class:`PredictionUpdate`.
        manifest_changed(): a dataset was opened.
        labels_changed(): the label set scored (``labels``, ``label_source``) changed.
        norms_changed(): another norms profile was chosen.
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
        from cuelab.core.tasks.prompts import load_task

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
        self.task = load_task("ser")
        # What is scored: the open dataset's labels when it has some, else the model's
        # (``cuelab.core.runs.plan.dataset_labels``, the rule batch runs follow too).
        self.labels: tuple[str, ...] = self.task.labels
        self.model_labels: tuple[str, ...] = self.task.labels
        self._task_labels: tuple[str, ...] = self.task.labels
        self.label_source = "the task's labels"
        self.norms: NormsProfile = default_norms()
        self.norms_path: Path | None = None
        self.manifest: Manifest | None = None
        self.row: ManifestRow | None = None
        self.clip_name = ""
        self.clip_path: Path | None = None
        self.audio: np.ndarray | None = None
        self.sr = 16000
        self.source_info: tuple[int, int] | None = None  # the file's rate and channels
        self.region: tuple[float, float] | None = None
        #: Which row a newly opened manifest shows first (None, or returning None: its first).
        self.start_row: Callable[[Manifest], ManifestRow | None] | None = None
        self.analysis_error = ""  # why the shown clip has no concepts, if its analysis failed
        self.features: Any = None
        self.concepts: ConceptResult | None = None
        self.aligned: TokenSet | None = None
        self.tokens: TokenSet | None = None
        self.model: Any = None
        self.model_spec = ""
        self.model_options: tuple[str, str] = ("auto", "auto")  # quant, device it was loaded with
        self.model_remote: dict[str, str] = {}  # scoring, prompt family of an openai: model
        self.model_trust: dict[str, bool] = {}  # allow_pickle, trust_remote_code as ticked
        self.prediction: PredictionUpdate | None = None
        self.predictions_by_clip: dict[str, PredictionUpdate] = {}
        # One model call at a time: adapters keep per-clip caches and are not re-entrant.
        self._model_lock = threading.Lock()
        self._predict_debounce = Debouncer(PREDICT_DEBOUNCE_MS, self._start_predict, self)
        self._analysis_debounce = Debouncer(PREDICT_DEBOUNCE_MS, self._start_analysis, self)

    # --- clip ---------------------------------------------------------------------

    @property
    def gender(self) -> str | None:
        """Gender of the current manifest row (selects per-gender edges)."""
        return self.row.gender if self.row is not None else None

    @property
    def clip_key(self) -> str:
        """A stable key of the shown clip: its path, or the name of a mix."""
        return str(self.clip_path) if self.clip_path is not None else self.clip_name

    def open_file(self, path: str | Path, row: ManifestRow | None = None) -> None:
        """Decode ``path`` at 16 kHz in a worker, then show and analyse it."""
        p = Path(path)
        self._opening = (p, row)

        def work(job: Job) -> tuple[np.ndarray, int, tuple[int, int] | None]:
            from cuelab.core.audio.io import audio_format, load_audio
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
            self.row = row
            self.clip_path = p
            self.set_audio(value[0], value[1], p.name, keep_path=True, source=value[2])

        self.slots["clip"].start(work, done)

    def _on_clip_failed(self, message: str) -> None:
        """A clip did not open. A manifest row that fails becomes the open (empty) clip, so
        the highlighted row, the annotation box and the clip view agree and nothing of the
        previous clip can be played or scored as if it were this one."""
        opening, self._opening = self._opening, None
        if opening is not None and opening[1] is not None:
            path, row = opening
            self.slots["predict"].cancel()
            self.slots["analysis"].cancel()
            self._predict_debounce.stop()
            self._analysis_debounce.stop()
            self.row, self.clip_path = row, path
            self.audio, self.source_info, self.clip_name = None, None, ""
            self.region = self.features = self.concepts = self.prediction = None
            self.tokens = self.aligned = None  # the previous clip's: not to be copied or sent
            self.analysis_error = message
            self.clip_changed.emit()
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
        if not keep_path:
            self.clip_path = None
        self.source_info = source
        # Answers still being computed belong to the previous clip: drop them.
        self.slots["predict"].cancel()
        self.slots["shuffle"].cancel()
        self.audio = np.asarray(x, dtype=np.float32)
        self.sr = int(sr)
        self.clip_name = name
        self.region = None
        self.features = None
        self.concepts = None
        self.prediction = None
        self.clip_changed.emit()
        self.message.emit(f"Analysing {name}…")
        self._analysis_debounce.trigger()
        self._analysis_debounce.flush()

    @property
    def analysing(self) -> bool:
        """True while the shown concepts and tokens are not yet those of the clip/region."""
        if self.audio is None or self.analysis_error:
            return False
        return (
            self.concepts is None or self._analysis_debounce.pending or self.slots["analysis"].busy
        )

    def _on_analysis_failed(self, message: str) -> None:
        self.analysis_error = message
        self.analysis_failed.emit(message)

    def set_region(self, region: tuple[float, float] | None) -> bool:
        """Analyse only ``(t0, t1)`` seconds of the clip (None: all of it).

        Returns:
            False when ``region`` is shorter than :data:`MIN_SEGMENT_S`: the
            whole clip is analysed instead (the caller says so).
        """
        honoured = True
        if region is not None:
            t0, t1 = sorted(region)
            if t1 - t0 < MIN_SEGMENT_S:
                region, honoured = None, False
            else:
                region = (max(0.0, t0), t1)
        if region != self.region:
            self.region = region
            # Features, concepts and answers of the old region must not meet the new
            # region's audio: drop them and any prediction under way or waiting.
            self.slots["predict"].cancel()
            self._predict_debounce.stop()
            self.features = None
            self.concepts = None
            self._analysis_debounce.trigger()
            self.analysis_started.emit()
        return honoured

    def segment(self) -> np.ndarray:
        """The analysed samples (the region, or the whole clip)."""
        if self.audio is None:
            return np.zeros(0, dtype=np.float32)
        if self.region is None:
            return self.audio
        a, b = (round(t * self.sr) for t in self.region)
        return self.audio[a:b]

    def _start_analysis(self) -> None:
        if self.audio is None:
            return
        self.analysis_error = ""
        self.analysis_started.emit()
        x, sr, name = self.segment(), self.sr, self.clip_name
        norms, gender = self.norms, self.gender

        def work(job: Job) -> _Analysis:
            from cuelab.ui.analysis_process import extract_signal_isolated

            job.report(f"openSMILE on {name}…")
            feats = extract_signal_isolated(x, sr, name=name, check=job.check)
            job.check()
            return _Analysis(feats, concepts_for_features(feats, norms, gender))

        def done(result: _Analysis, _s: float) -> None:
            self.features = result.features
            self._set_concepts(result.concepts)

        self.slots["analysis"].start(work, done)

    def _set_concepts(self, concepts: ConceptResult) -> None:
        self.concepts = concepts
        self.aligned = concepts.tokens
        self.tokens = concepts.tokens
        self.analysis_changed.emit()
        self.tokens_changed.emit()
        self.request_prediction()

    # --- norms and tokens ---------------------------------------------------------

    def set_norms(self, norms: NormsProfile, path: Path | None = None) -> None:
        """Use another norms profile; the tokens are re-derived (cheap, no openSMILE)."""
        self.norms = norms
        self.norms_path = path
        self.norms_changed.emit()
        if self.features is not None:
            self._set_concepts(concepts_for_features(self.features, norms, self.gender))

    def set_tokens(self, tokens: TokenSet) -> None:
        """Replace the current token set (an edit) and schedule a new prediction.

        Refused (with a warning) while a new clip or region is analysed: the
        edit would apply to the previous clip's tokens and be replaced a
        moment later.
        """
        if self.analysing:
            self.warning.emit("the clip is being analysed; edit the tokens once they appear")
            return
        if self.concepts is None:
            self.warning.emit("this clip has no tokens to edit (its analysis failed)")
            return
        if tokens == self.tokens:
            return
        self.tokens = tokens
        self.tokens_changed.emit()
        self.request_prediction()

    def reset_tokens(self) -> None:
        """Back to the clip's own (aligned) tokens."""
        if self.aligned is not None:
            self.set_tokens(self.aligned)

    def shuffle_tokens(self, seed: int | None = None) -> None:
        """Take the tokens of another clip of the open dataset (computed in a worker)."""
        if self.manifest is None or len(self.manifest) < 2:
            self.error.emit("shuffle needs an open dataset with at least two clips")
            return
        rng = np.random.default_rng(seed)
        others = [r for r in self.manifest.rows if self.row is None or r.path != self.row.path]
        donor = others[int(rng.integers(len(others)))]
        norms = self.norms

        def work(job: Job) -> ConceptResult:
            from cuelab.core.cues.features import FeatureCache, extract_file

            job.report(f"Tokens of {donor.utt_id}…")
            feats = extract_file(donor.path, cache=FeatureCache())
            return concepts_for_features(feats, norms, donor.gender)

        def done(result: ConceptResult, _s: float) -> None:
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
        task_labels = self.task.labels

        def work(job: Job) -> Any:
            from cuelab.core.errors import CueLabError, ModelError
            from cuelab.core.models.base import LoadOptions
            from cuelab.core.models.registry import load_model

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
            old = self.model
            self.model = adapter
            self.model_spec = spec
            self.model_options = (quant, device)
            self.model_remote = dict(remote or {})
            self.model_trust = dict(trusted)
            self.model_labels = labels
            self._update_labels(predict=False)
            if old is not None and old is not adapter:
                self._unload_later(old)
            self.message.emit(f"Model {spec} loaded in {seconds:.1f} s")
            self.model_changed.emit()
            self.request_prediction()

        self.slots["model"].start(work, done)

    def unload_model(self) -> None:
        """Drop the model (and cancel any pending prediction)."""
        self.slots["model"].cancel()
        self.slots["predict"].cancel()
        if self.model is not None:
            self._unload_later(self.model)
        self.model = None
        self.model_spec = ""
        self.model_labels = self._task_labels
        self._update_labels(predict=False)
        self.model_changed.emit()

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
        if self.model is not None and self.audio is not None:
            self._predict_debounce.trigger()

    def _start_predict(self) -> None:
        requested = self._predict_debounce.first_trigger or time.perf_counter()
        if self.model is None or self.audio is None or self.features is None:
            return
        from cuelab.core.models.base import Clip

        meta = dict(self.row.fields) if self.row is not None else {}
        clip = Clip(self.segment(), self.sr, self.clip_name, self.features, meta)
        text = self.tokens.text() if self.tokens is not None and len(self.tokens) else ""
        model, task, labels, key = self.model, self.task, self.labels, self.clip_key
        region = self.region
        lock = self._model_lock

        spec = self.model_spec

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
            self.prediction = update
            self.predictions_by_clip[key] = update
            self.prediction_changed.emit(update)

        self.slots["predict"].start(work, done)

    # --- dataset ------------------------------------------------------------------

    def open_folder(self, path: str | Path) -> None:
        """Open a folder of audio (in a worker): its manifest, or one written beside the clips."""

        def work(job: Job) -> Path:
            from cuelab.core.datasets.folders import manifest_for_folder

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
            self.manifest = manifest
            self._update_labels()
            self.manifest_changed.emit()
            if open_first and manifest.rows:
                # the dataset panel returns to the last clip its annotator labelled
                again = self.start_row(manifest) if self.start_row is not None else None
                self.open_row(again or manifest.rows[0])

        self.slots["manifest"].start(work, done)

    def _update_labels(self, predict: bool = True) -> None:
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
            self.labels_changed.emit()
            if predict:
                self.request_prediction()

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel all jobs and wait for the workers (window close)."""
        return shutdown_pool(self.pool, list(self.slots.values()), timeout_ms)


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def model_error(action: str, spec: str, exc: BaseException | str) -> str:
    """One wording for every model failure the window shows: ``model SPEC: cannot ACTION: why``.

    The core's advice names command-line flags; the window names its own switches.
    """
    return f"model {spec}: cannot {action}: {switch_wording(str(exc))}"


_SWITCHES = {
    "--allow-pickle": "'Allow pickle' (Safety)",
    "--trust-remote-code": "'Trust remote code' (Safety)",
}


def switch_wording(text: str) -> str:
    """``text`` with the model-loading flags the core names replaced by the window's switches."""
    for flag, switch in _SWITCHES.items():
        text = re.sub(rf"pass {flag}(?![\w-])", f"tick {switch}", text)
        text = re.sub(rf"{flag}(?![\w-])", switch, text)
    return text


def _clean(probs: dict[str, float], labels: tuple[str, ...] | list[str]) -> dict[str, float]:
    """Probabilities in label order; a missing or non-finite value becomes 0."""
    out = {}
    for label in labels:
        v = float(probs.get(label, 0.0))
        out[label] = v if math.isfinite(v) else 0.0
    return out
