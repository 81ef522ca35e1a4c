"""The clip: waveform and spectrogram with linked zoom, a selection, playback.

The spectrogram of the visible time range is computed in a worker whenever
the clip, the view or the Praat-style settings change (debounced), so
scrolling a long recording never stalls the window.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cuelab.ui.dsp import Spectrogram, spectrogram
from cuelab.ui.playback import Player
from cuelab.ui.session import Session
from cuelab.ui.workers import Debouncer, Job, JobSlot

MAX_FRAMES = 1500

# Praat's grey scale: white silence, black energy.
_PRAAT_GREYS = pg.ColorMap([0.0, 1.0], [(255, 255, 255), (0, 0, 0)])


def _semitones_to_hz(st: np.ndarray) -> np.ndarray:
    """eGeMAPS F0 (semitones re 27.5 Hz) to Hz; unvoiced (0) becomes NaN."""
    hz = 27.5 * np.power(2.0, st / 12.0)
    return np.where(st > 0, hz, np.nan)


class ClipView(QWidget):
    """Waveform + spectrogram of the session's clip.

    Signals:
        spectrogram_drawn(): a spectrogram image was placed (screenshot readiness).
    """

    spectrogram_drawn = Signal()

    def __init__(self, session: Session, player: Player, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.player = player
        self.spec: Spectrogram | None = None
        self._spec_slot = JobSlot("spectrogram", session.pool, self)
        self._spec_slot.failed.connect(session.error)
        session.slots["spectrogram"] = self._spec_slot
        self._spec_debounce = Debouncer(120, self._start_spectrogram, self)
        self._build()
        session.clip_changed.connect(self._on_clip)
        session.analysis_changed.connect(self._draw_f0)
        player.position.connect(self._on_position)
        player.playing_changed.connect(self._on_playing)

    # --- construction ------------------------------------------------------------

    def _build(self) -> None:
        self.title = QLabel("No clip")
        self.title.setStyleSheet("font-weight: bold;")
        self.play_button = QPushButton("Play")
        self.play_button.setToolTip("Play / pause (Space); plays the selection when one is active")
        self.play_button.clicked.connect(self.toggle_play)
        if not self.player.available:
            self._playback_off(self.player.reason)
        self.player.unavailable.connect(self._playback_off)
        self.selection_box = QCheckBox("Analyse selection")
        self.selection_box.setToolTip(
            "Drag the shaded region on the waveform to analyse just that part"
        )
        self.selection_box.toggled.connect(self._on_selection_toggled)
        self.f0_box = QCheckBox("F0")
        self.f0_box.setChecked(True)
        self.f0_box.setToolTip("Overlay openSMILE's F0 track (Hz) on the spectrogram")
        self.f0_box.toggled.connect(self._draw_f0)
        self.window_spin = QDoubleSpinBox(suffix=" ms", decimals=1, minimum=1.0, maximum=100.0)
        self.window_spin.setValue(5.0)
        self.window_spin.setToolTip("Window length (Praat: 5 ms broad-band, 30+ ms narrow-band)")
        self.range_spin = QSpinBox(suffix=" dB", minimum=10, maximum=150)
        self.range_spin.setValue(70)
        self.range_spin.setToolTip("Dynamic range below the loudest cell")
        self.fmax_spin = QSpinBox(suffix=" Hz", minimum=500, maximum=8000, singleStep=500)
        self.fmax_spin.setValue(5000)
        self.fmax_spin.setToolTip("Highest frequency shown")
        for spin in (self.window_spin, self.range_spin, self.fmax_spin):
            spin.valueChanged.connect(self._spec_debounce.trigger)

        bar = QHBoxLayout()
        bar.addWidget(self.title, 1)
        bar.addWidget(self.play_button)
        bar.addWidget(self.selection_box)
        bar.addWidget(self.f0_box)
        for text, spin in (
            ("Window", self.window_spin),
            ("Range", self.range_spin),
            ("Max", self.fmax_spin),
        ):
            bar.addWidget(QLabel(text))
            bar.addWidget(spin)

        self.wave_plot = pg.PlotWidget()
        self.wave_plot.setLabel("left", "amplitude")
        self.wave_plot.setMouseEnabled(x=True, y=False)
        self.wave_plot.setMinimumHeight(110)
        self.wave_curve = self.wave_plot.plot(pen=pg.mkPen("#1f4e79", width=1))
        self.wave_curve.setDownsampling(auto=True, method="peak")
        self.wave_curve.setClipToView(True)
        self.region = pg.LinearRegionItem(brush=pg.mkBrush(255, 200, 0, 50))
        self.region.setZValue(10)
        self.region.setVisible(False)
        self.region.sigRegionChangeFinished.connect(self._on_region)
        self.wave_plot.addItem(self.region)

        self.spec_plot = pg.PlotWidget()
        self.spec_plot.setLabel("left", "Hz")
        self.spec_plot.setLabel("bottom", "time", units="s")
        self.spec_plot.setMouseEnabled(x=True, y=False)
        self.spec_plot.setMinimumHeight(150)
        self.spec_plot.setXLink(self.wave_plot)
        self.spec_image = pg.ImageItem()
        self.spec_image.setColorMap(_PRAAT_GREYS)
        self.spec_plot.addItem(self.spec_image)
        self.f0_curve = self.spec_plot.plot(
            pen=None, symbol="o", symbolSize=3, symbolBrush="#0060ff", symbolPen=None
        )
        self.cursors = []
        for plot in (self.wave_plot, self.spec_plot):
            line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#d00000", width=1))
            line.setVisible(False)
            plot.addItem(line)
            self.cursors.append(line)
        self.wave_plot.getViewBox().sigXRangeChanged.connect(
            lambda *_: self._spec_debounce.trigger()
        )

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.wave_plot, 2)
        layout.addWidget(self.spec_plot, 3)

    # --- clip --------------------------------------------------------------------

    @property
    def duration(self) -> float:
        """Length of the shown clip in seconds."""
        s = self.session
        return 0.0 if s.audio is None else s.audio.size / s.sr

    def _on_clip(self) -> None:
        s = self.session
        self.player.stop()
        x = s.audio if s.audio is not None else np.zeros(1, dtype=np.float32)
        t = np.arange(x.size, dtype=np.float64) / s.sr
        self.wave_curve.setData(t, x)
        peak = float(np.max(np.abs(x))) if x.size else 1.0
        self.wave_plot.setYRange(-max(peak, 1e-3), max(peak, 1e-3), padding=0.05)
        self.wave_plot.setLimits(xMin=0.0, xMax=max(self.duration, 0.01))
        self.wave_plot.setXRange(0.0, max(self.duration, 0.01), padding=0)
        self.region.blockSignals(True)
        self.region.setRegion((0.25 * self.duration, 0.75 * self.duration))
        self.region.blockSignals(False)
        self.selection_box.blockSignals(True)
        self.selection_box.setChecked(False)
        self.selection_box.blockSignals(False)
        self.region.setVisible(False)
        self.f0_curve.setData([], [])
        label = f" — {s.row.get('label')}" if s.row is not None and s.row.get("label") else ""
        self.title.setText(f"{s.clip_name}{label}  ({self.duration:.2f} s)")
        self.spec = None
        self._spec_debounce.trigger()
        self._spec_debounce.flush()

    def _on_selection_toggled(self, on: bool) -> None:
        self.region.setVisible(on)
        self.session.set_region(self.region.getRegion() if on else None)

    def _on_region(self) -> None:
        if self.selection_box.isChecked():
            self.session.set_region(tuple(self.region.getRegion()))

    def set_selection(self, t0: float, t1: float) -> None:
        """Select ``[t0, t1]`` seconds and analyse just that part."""
        self.region.setRegion((t0, t1))
        if self.selection_box.isChecked():
            self._on_region()
        else:
            self.selection_box.setChecked(True)

    # --- spectrogram -------------------------------------------------------------

    def _start_spectrogram(self) -> None:
        s = self.session
        if s.audio is None:
            return
        (x0, x1) = self.wave_plot.getViewBox().viewRange()[0]
        x0, x1 = max(0.0, x0), min(self.duration, x1)
        if x1 - x0 <= 0:
            x0, x1 = 0.0, self.duration
        a, b = int(x0 * s.sr), int(np.ceil(x1 * s.sr))
        x, sr = s.audio[a:b].copy(), s.sr
        window = self.window_spin.value() / 1000.0
        dyn, fmax = float(self.range_spin.value()), float(self.fmax_spin.value())
        step = max(window / 4, 0.001, (b - a) / sr / MAX_FRAMES)
        offset = a / sr

        def work(_job: Job) -> tuple[Spectrogram, float]:
            return spectrogram(x, sr, window, dyn, fmax, time_step_s=step), offset

        self._spec_slot.start(work, self._place_spectrogram)

    def _place_spectrogram(self, value: tuple[Spectrogram, float], _s: float) -> None:
        spec, offset = value
        self.spec = spec
        self.spec_image.setImage(spec.db, autoLevels=False)
        self.spec_image.setLevels((spec.max_db - spec.dynamic_range_db, spec.max_db))
        n_t, n_f = spec.db.shape
        self.spec_image.setRect(
            QRectF(offset + spec.t0 - spec.dt / 2, 0.0, n_t * spec.dt, n_f * spec.df)
        )
        self.spec_plot.setYRange(0, float(self.fmax_spin.value()), padding=0)
        self.spectrogram_drawn.emit()

    def _draw_f0(self) -> None:
        feats = self.session.features
        if not self.f0_box.isChecked() or feats is None:
            self.f0_curve.setData([], [])
            return
        st = np.asarray(feats.f0_semitones, dtype=np.float64)
        hz = _semitones_to_hz(st)
        t0 = self.session.region[0] if self.session.region else 0.0
        t = t0 + np.arange(st.size) * feats.frame_hop_s
        keep = np.isfinite(hz)
        self.f0_curve.setData(t[keep], hz[keep])

    # --- playback ----------------------------------------------------------------

    def toggle_play(self) -> None:
        """Play the selection (or the clip); pause when playing."""
        s = self.session
        if self.player.playing:
            self.player.stop()
            return
        if s.audio is None or not self.player.available:
            return
        t0, t1 = s.region if s.region is not None else (0.0, None)
        self.player.play(s.audio, s.sr, t0, t1)

    def _playback_off(self, reason: str) -> None:
        """No device (or it failed): Play is disabled and its tooltip says why."""
        self.play_button.setEnabled(False)
        self.play_button.setToolTip(reason)

    def _on_position(self, t: float) -> None:
        for line in self.cursors:
            line.setPos(t)

    def _on_playing(self, playing: bool) -> None:
        self.play_button.setText("Pause" if playing else "Play")
        for line in self.cursors:
            line.setVisible(playing)

    def keyPressEvent(self, event) -> None:
        """Space toggles playback when the view has focus."""
        if event.key() == Qt.Key.Key_Space:
            self.toggle_play()
            event.accept()
            return
        super().keyPressEvent(event)
