"""The clip: waveform and spectrogram with linked zoom, a selection, playback.

The whole clip's spectrogram is computed once per clip (and window / top
frequency) in a worker; the visible time range is a crop of it, max-pooled in
a worker whenever the view changes (debounced), so zooming or scrolling a long
recording never recomputes FFTs nor stalls the window.
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

from cuelab.ui.analysis_process import run_isolated
from cuelab.ui.dsp import (
    ClipSpectrogram,
    Spectrogram,
    clip_spectrogram,
    spectrogram,
    view_of,
    whole_clip_pass,
)
from cuelab.ui.playback import Player
from cuelab.ui.session import MIN_SEGMENT_S, Session
from cuelab.ui.waveform_lod import MinMaxPyramid, build_pyramid
from cuelab.ui.widgets import ElidedLabel
from cuelab.ui.workers import Debouncer, Job, JobSlot

MAX_FRAMES = 1500
# At most this many visible samples are drawn as themselves (pyqtgraph's peak downsampling);
# longer views come from the min/max pyramid, at most ENVELOPE_BUCKETS buckets per redraw.
RAW_SAMPLES = 65_536
ENVELOPE_BUCKETS = 8000
ASYNC_PYRAMID_SAMPLES = 4_000_000  # longer clips build their pyramid in a worker

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
        self._pyramid_slot = JobSlot("waveform", session.pool, self)
        self._spec_slot.failed.connect(session.error)
        session.slots["spectrogram"] = self._spec_slot
        self._spec_debounce = Debouncer(120, self._start_spectrogram, self)
        # The whole clip's spectrogram, computed once per clip and settings (see
        # _start_spectrogram); views are crops of it.
        self._spec_clip_slot = JobSlot("spectrogram-clip", session.pool, self)
        self._clip_spec: ClipSpectrogram | None = None
        self._clip_spec_audio: np.ndarray | None = None
        self._clip_spec_key: tuple | None = None
        self._spec_pending: tuple | None = None
        self.spectrogram_computations = 0  # whole-clip computations started (tests count them)
        self._build()
        from cuelab.ui.clip_tools import ClipTools

        self.tools = ClipTools(self)  # drag to select, intensity, curve readouts
        self.zoom_selection_button.clicked.connect(self.tools.zoom_to_selection)
        session.clip_changed.connect(self._on_clip)
        session.clip_failed.connect(self.show_error)
        session.analysis_changed.connect(self._draw_f0)
        player.position.connect(self._on_position)
        player.playing_changed.connect(self._on_playing)

    # --- construction ------------------------------------------------------------

    def _build(self) -> None:
        self.title = ElidedLabel("No clip")
        self.title.setStyleSheet("font-weight: bold;")
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(
            "QLabel { color: #b00020; background: #fdecee; border: 1px solid #e0a0a8; "
            "padding: 3px; }"
        )
        self.error_label.setVisible(False)
        self.error_dismiss = QPushButton("Dismiss")
        self.error_dismiss.setVisible(False)
        self.error_dismiss.clicked.connect(self.clear_error)
        self.fit_button = QPushButton("Fit")
        self.fit_button.setToolTip("Zoom to fit the whole clip (Ctrl+0)")
        self.fit_button.clicked.connect(self.zoom_to_fit)
        self.zoom_selection_button = QPushButton("Zoom to selection")
        self.zoom_selection_button.setToolTip("Show just the selection (Ctrl+E)")
        self.readout = QLabel("")
        self.readout.setStyleSheet("color: #333;")
        self.readout.setToolTip("Cursor time and frequency; selection start, end and length")
        self.selection_note = QLabel("")
        self.selection_note.setStyleSheet("color: #a05000;")
        self.info_label = ElidedLabel("")  # never widens the window
        self.info_label.setStyleSheet("color: #555;")
        self.play_button = QPushButton("Play")
        self.play_button.setToolTip("Play / pause (Space); plays the selection when one is active")
        self.play_button.clicked.connect(self.toggle_play)
        if not self.player.available:
            self._playback_off(self.player.reason)
        self.player.unavailable.connect(self._playback_off)
        self.loop_box = QCheckBox("Loop")
        self.loop_box.setToolTip("Repeat the selection (or the clip) until paused")
        self.selection_box = QCheckBox("Analyse selection")
        self.selection_box.setToolTip(
            "Drag on the waveform or spectrogram to select a part and analyse just it "
            "(Shift+drag pans)"
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
        bar.addWidget(self.fit_button)
        bar.addWidget(self.zoom_selection_button)
        bar.addWidget(self.play_button)
        bar.addWidget(self.loop_box)
        bar.addWidget(self.selection_box)
        bar.addWidget(self.f0_box)

        self.wave_plot = pg.PlotWidget()
        self.wave_plot.setLabel("left", "amplitude")
        self.wave_plot.getAxis("left").enableAutoSIPrefix(False)  # plain values, no "x0.001"
        self.wave_plot.setMouseEnabled(x=True, y=False)
        self.wave_plot.setMinimumHeight(60)
        self.wave_curve = self.wave_plot.plot(pen=pg.mkPen("#1f4e79", width=1))
        self.wave_curve.setDownsampling(auto=True, method="peak")
        self.wave_curve.setClipToView(True)
        self.region = pg.LinearRegionItem(brush=pg.mkBrush(255, 200, 0, 50))
        self.region.setZValue(10)
        self.region.setVisible(False)
        self.region.sigRegionChangeFinished.connect(self._on_region)
        self.region.sigRegionChanged.connect(self._on_region_moving)
        self.wave_plot.addItem(self.region)

        self.spec_plot = pg.PlotWidget()
        self.spec_plot.setLabel("left", "Hz")
        self.spec_plot.setLabel("bottom", "time", units="s")
        self.spec_plot.setMouseEnabled(x=True, y=False)
        self.spec_plot.setMinimumHeight(80)
        self.spec_plot.setXLink(self.wave_plot)
        self.spec_image = pg.ImageItem()
        self.spec_image.setColorMap(_PRAAT_GREYS)
        self.spec_plot.addItem(self.spec_image)
        # The selection drawn on the spectrogram too (follows the waveform's region).
        self.spec_region = pg.LinearRegionItem(brush=pg.mkBrush(255, 200, 0, 40), movable=False)
        self.spec_region.setZValue(10)
        self.spec_region.setVisible(False)
        self.spec_plot.addItem(self.spec_region)
        # F0 on its own axis (Hz, right), so a 100-300 Hz contour is not a flat line
        # at the bottom of a 0-5000 Hz spectrogram.
        spec_item = self.spec_plot.getPlotItem()
        self.f0_view = pg.ViewBox()
        self.f0_view.setZValue(20)  # above the spectrogram image
        spec_item.showAxis("right")
        spec_item.scene().addItem(self.f0_view)
        spec_item.getAxis("right").linkToView(self.f0_view)
        spec_item.getAxis("right").setLabel("F0 (Hz)", color="#0060ff")
        # Equal axis widths on both plots, so the linked time axes span the same range.
        for item in (spec_item, self.wave_plot.getPlotItem()):
            item.showAxis("right")
            item.getAxis("right").setWidth(55)
            item.getAxis("left").setWidth(55)
        self.wave_plot.getPlotItem().getAxis("right").setStyle(showValues=False)
        self.f0_view.setXLink(spec_item.getViewBox())
        self.f0_view.setMouseEnabled(x=False, y=False)
        self.f0_view.setYRange(50, 500, padding=0)
        # A line broken at unvoiced frames, not one symbol per frame: a 10-minute clip
        # has 60,000 frames and scatter symbols stalled the window for 180 ms.
        self.f0_curve = pg.PlotDataItem(pen=pg.mkPen("#0060ff", width=2), connect="finite")
        self.f0_curve.setDownsampling(auto=True, method="peak")
        self.f0_curve.setClipToView(True)
        self.f0_view.addItem(self.f0_curve)
        spec_item.getViewBox().sigResized.connect(self._place_f0_view)
        self.cursors = []
        for plot in (self.wave_plot, self.spec_plot):
            line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#d00000", width=1))
            line.setVisible(False)
            plot.addItem(line)
            self.cursors.append(line)
        self.wave_plot.getViewBox().sigXRangeChanged.connect(
            lambda *_: self._spec_debounce.trigger()
        )
        self.wave_plot.getViewBox().sigXRangeChanged.connect(lambda *_: self._draw_wave())
        self._pyramid: MinMaxPyramid | None = MinMaxPyramid(np.zeros(1, dtype=np.float32))
        self._wave_span = (-9, -1, -1)  # (pyramid level or -1 for samples, first, end)
        self._wave_frozen = False

        for plot in (self.wave_plot, self.spec_plot):
            plot.scene().sigMouseMoved.connect(lambda pos, plot=plot: self._on_mouse(plot, pos))
        readouts = QHBoxLayout()
        readouts.addWidget(self.readout)
        readouts.addWidget(self.selection_note)
        # The clip info takes the spare width, elided first when the readouts need room.
        self.info_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        readouts.addWidget(self.info_label, 1)
        for text, spin in (
            ("Window", self.window_spin),
            ("Range", self.range_spin),
            ("Max", self.fmax_spin),
        ):
            readouts.addWidget(QLabel(text))
            readouts.addWidget(spin)
        errors = QHBoxLayout()
        errors.addWidget(self.error_label, 1)
        errors.addWidget(self.error_dismiss)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addLayout(errors)
        layout.addWidget(self.wave_plot, 2)
        layout.addWidget(self.spec_plot, 3)
        layout.addLayout(readouts)

    # --- clip --------------------------------------------------------------------

    @property
    def duration(self) -> float:
        """Length of the shown clip in seconds."""
        s = self.session
        return 0.0 if s.audio is None else s.audio.size / s.sr

    def show_error(self, message: str) -> None:
        """An error about the clip (it did not open): shown above the plots until dismissed
        or another clip opens."""
        shown = self.session.clip_name
        still = f" (still showing {shown})" if shown else ""
        self.error_label.setText(f"{message}{still}")
        self.error_label.setVisible(True)
        self.error_dismiss.setVisible(True)

    def clear_error(self) -> None:
        """Hide the clip error (Dismiss, or a clip opened)."""
        self.error_label.setVisible(False)
        self.error_dismiss.setVisible(False)
        self.error_label.setText("")

    def _place_f0_view(self, *_args: object) -> None:
        """Keep the F0 view box on top of the spectrogram's."""
        box = self.spec_plot.getPlotItem().getViewBox()
        self.f0_view.setGeometry(box.sceneBoundingRect())
        self.f0_view.linkedViewChanged(box, self.f0_view.XAxis)

    def zoom_to_fit(self) -> None:
        """Show the whole clip."""
        self.wave_plot.setXRange(0.0, max(self.duration, 0.01), padding=0)

    def _on_mouse(self, plot: pg.PlotWidget, pos) -> None:
        """Cursor readout: time (both plots) and frequency (spectrogram)."""
        vb = plot.getViewBox()
        if not vb.sceneBoundingRect().contains(pos):
            return
        p = vb.mapSceneToView(pos)
        text = f"cursor {p.x():.3f} s"
        if plot is self.spec_plot:
            text += f" · {max(0.0, p.y()):.0f} Hz"
        else:
            text += f" · amplitude {p.y():+.3f}"
        text += self.tools.readout(p.x())
        self.cursor_text = text
        self._show_readout()

    def _show_readout(self) -> None:
        parts = [getattr(self, "cursor_text", "")]
        if self.selection_box.isChecked():
            t0, t1 = sorted(self.region.getRegion())
            parts.append(f"selection {t0:.3f}–{t1:.3f} s ({t1 - t0:.3f} s)")
        self.readout.setText("   ".join(p for p in parts if p))

    def _on_region_moving(self) -> None:
        self.spec_region.setRegion(self.region.getRegion())
        self._show_readout()

    def _on_clip(self) -> None:
        s = self.session
        self.clear_error()
        self.player.stop()
        x = s.audio if s.audio is not None else np.zeros(1, dtype=np.float32)
        self._start_pyramid(x)
        self._wave_span = (-9, -1, -1)
        if self._pyramid is not None:
            peak = self._pyramid.peak
        else:  # a long clip: every k-th sample until its pyramid says (no full pass here)
            peak = float(np.max(np.abs(x[:: max(1, x.size // ENVELOPE_BUCKETS)])))
        self._wave_frozen = True  # one redraw below, not one per range change
        try:
            self._set_peak(peak)
            self.wave_plot.setLimits(xMin=0.0, xMax=max(self.duration, 0.01))
            self.wave_plot.setXRange(0.0, max(self.duration, 0.01), padding=0)
        finally:
            self._wave_frozen = False
        self._draw_wave()
        self.region.blockSignals(True)
        self.region.setRegion((0.25 * self.duration, 0.75 * self.duration))
        self.region.blockSignals(False)
        self.selection_box.blockSignals(True)
        self.selection_box.setChecked(False)
        self.selection_box.blockSignals(False)
        self.region.setVisible(False)
        self.spec_region.setVisible(False)
        self.spec_region.setRegion(self.region.getRegion())
        self.selection_note.setText("")
        self.f0_curve.setData([], [])
        label = f" — {s.row.get('label')}" if s.row is not None and s.row.get("label") else ""
        self.title.setText(f"{s.clip_name}{label}  ({self.duration:.2f} s)")
        self.info_label.setText(self._format_info())
        self.cursor_text = ""  # the previous clip's cursor value means nothing here
        self._show_readout()
        self.spec = None
        self._spec_slot.cancel()  # a view of the previous clip must not land on this one
        self._spec_debounce.trigger()
        self._spec_debounce.flush()

    def _format_info(self) -> str:
        """Sample rate and channels: what was decoded and what is analysed."""
        s = self.session
        if s.audio is None:
            return ""
        src = s.source_info
        if src is None:
            return f"{s.sr / 1000:g} kHz mono (analysed)"
        sr, channels = src
        mono = "mono" if channels == 1 else f"{channels} ch → mono (mean)"
        rate = f"{sr / 1000:g} kHz" if sr == s.sr else f"{sr / 1000:g} → {s.sr / 1000:g} kHz"
        return f"file {rate}, {mono}"

    def _start_pyramid(self, x: np.ndarray) -> None:
        """Build the clip's min/max pyramid: at once for a short clip, in a worker for a
        long one (80 ms of the GUI thread for 10 minutes; in a child process from a
        minute on, see :mod:`cuelab.ui.analysis_process`), drawn decimated meanwhile."""
        if x.size <= ASYNC_PYRAMID_SAMPLES:
            self._pyramid_slot.cancel()
            self._pyramid = MinMaxPyramid(x)
            return
        self._pyramid = None
        sr = self.session.sr

        def done(pyramid: MinMaxPyramid, _s: float) -> None:
            if self.session.audio is x:
                self._pyramid = pyramid
                self._set_peak(pyramid.peak)
                self._wave_span = (-9, -1, -1)
                self._draw_wave()

        def work(job: Job) -> MinMaxPyramid:
            with whole_clip_pass(job.check):
                return run_isolated(build_pyramid, x, sr, name="waveform", check=job.check)

        self._pyramid_slot.start(work, done)

    def _set_peak(self, peak: float) -> None:
        """The waveform's amplitude range: the clip's peak, at least -60 dBFS."""
        self.wave_plot.setYRange(-max(peak, 1e-3), max(peak, 1e-3), padding=0.05)

    def _draw_wave(self) -> None:
        """The waveform of the visible range from the clip's min/max pyramid: a few
        buckets per pixel at any zoom (every sample once zoomed in), with one view's
        width drawn on each side so that panning rarely redraws."""
        if self._wave_frozen:
            return
        s = self.session
        x = s.audio if s.audio is not None else np.zeros(1, dtype=np.float32)
        x0, x1 = self.wave_plot.getViewBox().viewRange()[0]
        a, b = max(0, int(x0 * s.sr)), min(x.size, int(np.ceil(x1 * s.sr)))
        span = max(1, b - a)
        if self._pyramid is None:  # a long clip's pyramid is being built: every k-th sample
            if span > RAW_SAMPLES:
                step = max(1, x.size // ENVELOPE_BUCKETS)
                pos = np.arange(0, x.size, step, dtype=np.float64)
                self.wave_curve.setData(pos / s.sr, x[::step], skipFiniteCheck=True)
                self._wave_span = (-9, -1, -1)
                return
            level = -1
        else:
            per_view = min(2 * max(200, self.wave_plot.width()), ENVELOPE_BUCKETS // 3)
            level = self._pyramid.level_for(span, per_view, RAW_SAMPLES)
        drawn, lo, hi = self._wave_span
        if drawn == level and lo <= a and b <= hi:
            return  # what is on screen is already there, at this level of detail
        a, b = max(0, a - span), min(x.size, b + span)
        if level < 0:
            pos, y = np.arange(a, b, dtype=np.float64), x[a:b]
        else:
            pos, y = self._pyramid.curve(level, a, b)
        self.wave_curve.setData(pos / s.sr, y, skipFiniteCheck=True)  # core checked: finite
        self._wave_span = (level, a, b)

    def _on_selection_toggled(self, on: bool) -> None:
        self.region.setVisible(on)
        self.spec_region.setVisible(on)
        self._apply_region(self.region.getRegion() if on else None)

    def _on_region(self) -> None:
        if self.selection_box.isChecked():
            self._apply_region(tuple(self.region.getRegion()))

    def _apply_region(self, region) -> None:
        honoured = self.session.set_region(region)
        self.selection_note.setText(
            ""
            if honoured
            else f"selection shorter than {MIN_SEGMENT_S:g} s: analysing the whole clip"
        )
        self._show_readout()

    def set_selection(self, t0: float, t1: float) -> None:
        """Select ``[t0, t1]`` seconds and analyse just that part."""
        self.region.setRegion((t0, t1))
        if self.selection_box.isChecked():
            self._on_region()
        else:
            self.selection_box.setChecked(True)

    # --- spectrogram -------------------------------------------------------------

    def _start_spectrogram(self) -> None:
        """Draw the visible range's spectrogram from the clip's, computed once per clip.

        The whole clip's spectrogram (for the current window and top frequency) is
        computed once in a worker; zoom, scroll, Fit and the dynamic range only crop
        and max-pool it (in a worker too). A view zoomed in past its frame rate is
        computed on its own from the few samples it shows.
        """
        s = self.session
        if s.audio is None:
            return
        window = self.window_spin.value() / 1000.0
        dyn, fmax = float(self.range_spin.value()), float(self.fmax_spin.value())
        key = (window, fmax)
        clip = self._clip_spec
        if clip is None or self._clip_spec_audio is not s.audio or self._clip_spec_key != key:
            if not self._spec_is_pending(s.audio, key):
                self._start_clip_spectrogram(s.audio, s.sr, key)
            return  # its result draws the view then
        (x0, x1) = self.wave_plot.getViewBox().viewRange()[0]
        x0, x1 = max(0.0, x0), min(self.duration, x1)
        if x1 - x0 <= 0:
            x0, x1 = 0.0, self.duration
        if (x1 - x0) / clip.dt >= MAX_FRAMES / 2 or clip.dt <= clip.fine_dt * 1.001:

            def crop(_job: Job) -> tuple[Spectrogram, float]:
                return view_of(clip, x0, x1, dyn, MAX_FRAMES)

            self._spec_slot.start(crop, self._place_spectrogram)
            return
        a, b = int(x0 * s.sr), int(np.ceil(x1 * s.sr))
        x, sr = s.audio[a:b].copy(), s.sr
        step = max(window / 4, 0.001, (b - a) / sr / MAX_FRAMES)
        offset = a / sr

        def work(_job: Job) -> tuple[Spectrogram, float]:
            return spectrogram(x, sr, window, dyn, fmax, time_step_s=step), offset

        self._spec_slot.start(work, self._place_spectrogram)

    def _spec_is_pending(self, audio: np.ndarray, key: tuple) -> bool:
        """Whether the clip spectrogram in flight is for this very array (by identity:
        ``==`` on arrays compares samples) and these settings."""
        pending = self._spec_pending
        return pending is not None and pending[0] is audio and pending[1] == key

    def _start_clip_spectrogram(self, audio: np.ndarray, sr: int, key: tuple) -> None:
        """Compute the whole clip's spectrogram in a worker; keep it for every later view."""
        self._spec_pending = (audio, key)
        self.spectrogram_computations += 1
        window, fmax = key

        def work(job: Job) -> ClipSpectrogram:
            with whole_clip_pass(job.check):
                return run_isolated(
                    clip_spectrogram, audio, sr, window, fmax, name="spectrogram", check=job.check
                )

        def done(clip: ClipSpectrogram, _s: float) -> None:
            if not self._spec_is_pending(audio, key):
                return  # another clip or setting since
            self._spec_pending = None
            self._clip_spec, self._clip_spec_audio, self._clip_spec_key = clip, audio, key
            self._start_spectrogram()

        self._spec_clip_slot.start(work, done)

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
        self.f0_curve.setData(t, hz)  # NaN (unvoiced) frames break the line
        if keep.any():  # the F0 axis spans the clip's own range, with a margin
            lo, hi = float(np.min(hz[keep])), float(np.max(hz[keep]))
            self.f0_view.setYRange(max(0.0, lo * 0.8), hi * 1.2 + 10, padding=0)

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
        self.player.play(s.audio, s.sr, t0, t1, loop=self.loop_box.isChecked())

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
