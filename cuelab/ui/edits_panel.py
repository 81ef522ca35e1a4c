"""Audio edits on the open clip: sliders, A/B playback, concepts before/after, live prediction.

Every change of a control starts a job in the panel's own slot (a newer request
cancels the older, whose result is dropped); the job edits the clip (WORLD's
analysis of the clip is made once and reused for every slider move), extracts
eGeMAPS of the edited audio, and, when a model is loaded, scores it with the
tokens of the chosen source, all off the GUI thread. The token-source switch
explores the 2×2 on one clip: the edited audio with the original clip's tokens
(the audio channel alone) or with the edited audio's own tokens.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cuelab.ui.playback import Player
from cuelab.ui.session import Session
from cuelab.ui.workers import Debouncer, Job, JobSlot

#: slider: (kind, low, high, step, unit shown)
SLIDERS = {
    "pitch": (-12.0, 12.0, 0.5, "st"),
    "tempo": (0.5, 2.0, 0.05, "×"),
    "gain": (-24.0, 12.0, 0.5, "dB"),
    "tilt": (-6.0, 6.0, 0.5, "dB/oct"),
}
NEUTRAL = {"pitch": 0.0, "tempo": 1.0, "gain": 0.0, "tilt": 0.0}
MORE = ["formant=1.1", "formant=0.9", "pitch-range=0.5", "pitch-range=1.5", "jitter=2%",
        "shimmer=3%", "breathiness=+6dB", "loudness=-23LUFS"]  # fmt: skip
DEBOUNCE_MS = 60


@dataclass(frozen=True)
class EditPreview:
    """One finished edit of one clip (what the panel shows)."""

    clip_key: str
    edit: str
    token_source: str
    audio: np.ndarray
    sr: int
    before: Any  # ConceptResult of the clip
    after: Any  # ConceptResult of the edited audio
    probs: dict[str, float] | None
    tokens: str
    seconds: float
    spectrogram: Any = None  # cuelab.ui.dsp.Spectrogram of the edited audio (made in the worker)


class EditsPanel(QGroupBox):
    """The Audio edits panel (see the module docstring)."""

    preview_ready = Signal(object)  # EditPreview, after it is drawn

    def __init__(self, session: Session, player: Player, parent: QWidget | None = None) -> None:
        super().__init__("Audio edits", parent)
        self.session = session
        self.player = player
        self.preview: EditPreview | None = None
        self.extra = ""  # an edit from the "More" menu, e.g. formant=1.1
        self._analysis: tuple[str, Any] | None = None  # (clip key, WorldAnalysis)
        self._requested = 0.0
        self._slot = JobSlot("edits", session.pool, self)
        self._slot.failed.connect(self._on_failed)
        session.slots["edits"] = self._slot
        # a sweep has its own slot: a slider move must not cancel it
        self._sweep_slot = JobSlot("edits-sweep", session.pool, self)
        self._sweep_slot.failed.connect(self._on_failed)
        session.slots["edits-sweep"] = self._sweep_slot
        self._debounce = Debouncer(DEBOUNCE_MS, self.request, self)
        self._build()
        session.clip_changed.connect(self._on_clip)
        session.model_changed.connect(self._on_param)

    # --- layout ----------------------------------------------------------------------

    def _build(self) -> None:
        form = QFormLayout()
        self.sliders: dict[str, QSlider] = {}
        self.value_labels: dict[str, QLabel] = {}
        for kind, (low, high, step, _unit) in SLIDERS.items():
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(round(low / step), round(high / step))
            slider.setValue(round(NEUTRAL[kind] / step))
            slider.valueChanged.connect(self._on_param)
            label = QLabel()
            label.setMinimumWidth(70)
            row = QHBoxLayout()
            row.addWidget(slider, 1)
            row.addWidget(label)
            form.addRow(kind, row)
            self.sliders[kind] = slider
            self.value_labels[kind] = label
        self.more_button = QToolButton(text="More ▾")
        self.more_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.more_button)
        for text in MORE:
            menu.addAction(text, lambda t=text: self.set_extra(t))
        menu.addAction("none", lambda: self.set_extra(""))
        self.more_button.setMenu(menu)
        self.engine_combo = QComboBox()
        self.engine_combo.addItems(["world", "praat"])
        self.engine_combo.currentIndexChanged.connect(self._on_param)
        self.source_combo = QComboBox()
        self.source_combo.addItem("tokens from the edited audio", "edited")
        self.source_combo.addItem("tokens of the original audio", "original")
        self.source_combo.currentIndexChanged.connect(self._on_param)
        tools = QHBoxLayout()
        tools.addWidget(self.more_button)
        tools.addWidget(self.engine_combo)
        tools.addWidget(self.source_combo, 1)
        self.edit_line = QLineEdit()
        self.edit_line.setReadOnly(True)
        self.play_a = QPushButton("A: original")
        self.play_b = QPushButton("B: edited")
        self.reset_button = QPushButton("Reset")
        self.sweep_button = QPushButton("Sweep…")
        self.play_a.clicked.connect(lambda: self.listen("A"))
        self.play_b.clicked.connect(lambda: self.listen("B"))
        self.reset_button.clicked.connect(self.reset)
        self.sweep_button.clicked.connect(self.sweep)
        buttons = QHBoxLayout()
        for b in (self.play_a, self.play_b, self.reset_button, self.sweep_button):
            buttons.addWidget(b)
        self.wave = pg.PlotWidget()
        self.wave.setMinimumHeight(70)
        self.wave.hideAxis("left")
        self.wave_curve = self.wave.plot(pen=pg.mkPen("#1f77b4", width=1))
        self.wave_curve.setDownsampling(auto=True, method="peak")
        self.wave_curve.setClipToView(True)
        self.spec = pg.PlotWidget()
        self.spec.setMinimumHeight(90)
        self.spec_image = pg.ImageItem()
        self.spec_image.setColorMap(pg.colormap.get("viridis"))
        self.spec.addItem(self.spec_image)
        self.bars = pg.PlotWidget()
        self.bars.setMinimumHeight(110)
        self.bars.addLegend(offset=(5, 5))
        self.before_bars = pg.BarGraphItem(x=[], height=[], width=0.35, brush="#bbbbbb",
                                           name="original")  # fmt: skip
        self.after_bars = pg.BarGraphItem(x=[], height=[], width=0.35, brush="#1f77b4",
                                          name="edited")  # fmt: skip
        self.bars.addItem(self.before_bars)
        self.bars.addItem(self.after_bars)
        self.prediction_label = QLabel("Open a clip to edit its audio.")
        self.prediction_label.setWordWrap(True)
        self.info_label = QLabel("")
        self.info_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(tools)
        layout.addWidget(self.edit_line)
        layout.addLayout(buttons)
        layout.addWidget(self.wave)
        layout.addWidget(self.spec)
        layout.addWidget(self.bars)
        layout.addWidget(self.prediction_label)
        layout.addWidget(self.info_label)
        self._show_values()

    # --- state -----------------------------------------------------------------------

    def amount(self, kind: str) -> float:
        step = SLIDERS[kind][2]
        return round(self.sliders[kind].value() * step, 6) + 0.0

    def edit_text(self) -> str:
        """The chain the controls describe (``resynth`` when every slider is neutral)."""
        parts = [f"{k}={self.amount(k)}" for k in SLIDERS if self.amount(k) != NEUTRAL[k]]
        if self.extra:
            parts.append(self.extra)
        if not parts:
            return "resynth"
        from cuelab.core.audio import parse_edit

        return parse_edit(",".join(p + _unit(p) for p in parts)).text()

    def set_extra(self, text: str) -> None:
        self.extra = text
        self._on_param()

    def set_amount(self, kind: str, value: float) -> None:
        self.sliders[kind].setValue(round(value / SLIDERS[kind][2]))

    def reset(self) -> None:
        for kind in SLIDERS:
            self.sliders[kind].blockSignals(True)
            self.set_amount(kind, NEUTRAL[kind])
            self.sliders[kind].blockSignals(False)
        self.extra = ""
        self._on_param()

    def _show_values(self) -> None:
        for kind, (_lo, _hi, _step, unit) in SLIDERS.items():
            self.value_labels[kind].setText(f"{self.amount(kind):g} {unit}")
        try:
            self.edit_line.setText(self.edit_text())
        except Exception as exc:  # an impossible combination is shown, not raised
            self.edit_line.setText(str(exc))

    def _on_param(self, *_args: object) -> None:
        self._show_values()
        # edits cost a resynthesis: made only while the panel is shown (as the Mixer does)
        if self.session.audio is not None and self.isVisible():
            self._debounce.trigger()

    def showEvent(self, event: QShowEvent) -> None:
        """The panel is in use: edit the open clip if that is not done yet."""
        super().showEvent(event)
        s = self.session
        if s.audio is not None and (
            self.preview is None or self.preview.clip_key != f"{s.clip_key}|{s.region}"
        ):
            self._debounce.trigger()

    def _on_clip(self) -> None:
        self._slot.cancel()
        self._sweep_slot.cancel()
        self.preview = None
        self._analysis = None
        self._on_param()

    def _on_failed(self, message: str) -> None:
        self.info_label.setText(message)
        self.session.error.emit(message)

    # --- work ------------------------------------------------------------------------

    def request(self) -> None:
        """Edit, analyse and predict the open clip in a worker (newer requests drop this one)."""
        s = self.session
        if s.audio is None:
            return
        self._requested = time.perf_counter()
        x, sr, key = s.segment(), s.sr, f"{s.clip_key}|{s.region}"
        edit, engine = self.edit_text(), self.engine_combo.currentText()
        source = self.source_combo.currentData()
        cached = self._analysis[1] if self._analysis and self._analysis[0] == key else None
        model, task, labels, norms, gender = s.model, s.task, s.labels, s.norms, s.gender
        original_tokens = s.tokens
        known = s.concepts  # the open clip's (region's) own concepts, analysed already
        lock = s.model_lock

        def work(job: Job) -> tuple[EditPreview, Any]:
            from cuelab.core.audio import analyse_world, apply_edit, parse_edit
            from cuelab.core.cues import concepts_for_features, extract_signal
            from cuelab.core.workbench import make_clip

            t0 = time.perf_counter()
            chain = parse_edit(edit)
            analysis = cached
            if engine == "world" and chain.needs_engine and analysis is None:
                analysis = analyse_world(x, sr)
            job.check()
            y = apply_edit(x, sr, chain, engine, analysis=analysis)
            job.check()
            before = known or concepts_for_features(extract_signal(x, sr), norms, gender)
            feats = extract_signal(y, sr, name=edit)
            after = concepts_for_features(feats, norms, gender)
            job.check()
            tokens = after.tokens if source == "edited" else (original_tokens or before.tokens)
            text = tokens.text() if tokens is not None and len(tokens) else ""
            probs = None
            if model is not None:
                with lock:
                    job.check()
                    pred = model.score_labels(make_clip(y, sr, edit, feats), task, labels,
                                              [text or None])[0]  # fmt: skip
                probs = {lab: float(pred.probs.get(lab, math.nan)) for lab in labels}
            from cuelab.ui.dsp import spectrogram

            spec = spectrogram(y, sr)  # drawn on the GUI thread, computed here
            preview = EditPreview(key, edit, source, y.astype(np.float32), sr, before, after,
                                  probs, text, time.perf_counter() - t0, spec)  # fmt: skip
            return preview, analysis

        self.info_label.setText(f"Editing: {edit}…")
        self._slot.start(work, self._on_preview)

    def _on_preview(self, value: tuple[EditPreview, Any], _seconds: float) -> None:
        preview, analysis = value
        s = self.session
        if preview.clip_key != f"{s.clip_key}|{s.region}":
            return  # a clip that is no longer open
        if analysis is not None:
            self._analysis = (preview.clip_key, analysis)
        self.preview = preview
        self._draw(preview)
        latency = (time.perf_counter() - self._requested) * 1000
        self.info_label.setText(
            f"{preview.edit} ({self.engine_combo.currentText()}): {preview.audio.size / preview.sr:.2f} s, "
            f"worker {preview.seconds * 1000:.0f} ms, request to screen {latency:.0f} ms"
        )
        self.preview_ready.emit(preview)

    def _draw(self, p: EditPreview) -> None:
        from cuelab.core.cues import BINNED_CONCEPTS

        t = np.arange(p.audio.size) / p.sr
        self.wave_curve.setData(t, p.audio, skipFiniteCheck=True)
        spec = p.spectrogram
        self.spec_image.setImage(spec.db, autoLevels=True)
        self.spec_image.setRect(0, 0, spec.dt * spec.db.shape[0], spec.df * spec.db.shape[1])
        xs = np.arange(len(BINNED_CONCEPTS))
        before = [_finite(p.before.scores[c]) for c in BINNED_CONCEPTS]
        after = [_finite(p.after.scores[c]) for c in BINNED_CONCEPTS]
        self.before_bars.setOpts(x=xs - 0.2, height=before)
        self.after_bars.setOpts(x=xs + 0.2, height=after)
        self.bars.getAxis("bottom").setTicks([[(i, c[:6]) for i, c in enumerate(BINNED_CONCEPTS)]])
        moved = [c for c, tok in p.before.tokens.items() if p.after.tokens[c] != tok]
        lines = []
        if p.probs:
            top = sorted(p.probs.items(), key=lambda kv: -kv[1])
            shown = ", ".join(f"{k} {v:.2f}" for k, v in top[:3])
            which = "edited audio's" if p.token_source == "edited" else "original"
            lines.append(f"Prediction (edited audio, {which} tokens): {shown}")
        else:
            lines.append("Load a model to see the prediction on the edited audio.")
        lines.append("Tokens moved: " + (", ".join(
            f"{c} {p.before.tokens[c]}→{p.after.tokens[c]}" for c in moved) or "none"))  # fmt: skip
        self.prediction_label.setText("\n".join(lines))

    def listen(self, which: str) -> None:
        """A/B: the original clip (A) or the edited audio (B)."""
        s = self.session
        if which == "A" and s.audio is not None:
            self.player.play(s.segment(), s.sr)
        elif which == "B" and self.preview is not None:
            self.player.play(self.preview.audio, self.preview.sr)

    # --- sweep -----------------------------------------------------------------------

    def sweep(self) -> None:
        """Sweep pitch −6…+6 st over the open clip (off the GUI thread) and show the plot."""
        s = self.session
        if s.audio is None or s.model is None:
            self.info_label.setText("Sweep needs an open clip and a loaded model.")
            return
        x, sr, name = s.segment(), s.sr, s.clip_name
        model, task, labels, norms, gender = s.model, s.task, s.labels, s.norms, s.gender
        engine = self.engine_combo.currentText()
        lock = s.model_lock

        def work(job: Job) -> Path:
            from cuelab.core.reports import sweep_figure
            from cuelab.core.runs import parse_grid, point_header, point_row, sweep_clip

            grid = parse_grid("pitch", "-6st", "+6st", 13)
            with lock:
                points = []
                for point in sweep_clip(x, sr, name, grid, model, task, labels, engine=engine,
                                        norms=norms, gender=gender):  # fmt: skip
                    job.check()
                    points.append(point)
            out = Path(tempfile.mkdtemp(prefix="cuelab-sweep-")) / "sweep.png"
            rows = [point_row(p, labels) for p in points]
            return sweep_figure(out, point_header(labels), rows, labels, "pitch (st)", name)

        self.info_label.setText("Sweeping pitch −6…+6 st…")
        self._sweep_slot.start(work, self._show_sweep)

    def _show_sweep(self, path: Path, _seconds: float) -> None:
        dialog = QDialog(self)
        dialog.setWindowTitle("Sweep")
        label = QLabel()
        label.setPixmap(QPixmap(str(path)))
        QVBoxLayout(dialog).addWidget(label)
        self.sweep_dialog = dialog
        self.info_label.setText(f"Sweep plot: {path}")
        dialog.show()


def _finite(v: float) -> float:
    return v if math.isfinite(v) else 0.0


def _unit(part: str) -> str:
    """The unit a slider's ``kind=value`` needs (none for a "More" text, which has one)."""
    kind = part.split("=", 1)[0]
    return {"pitch": "st", "gain": "dB", "tilt": "dB/oct"}.get(kind, "") if kind in SLIDERS else ""
