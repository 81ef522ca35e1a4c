"""What makes the clip view a Praat-like tool: drag to select, an intensity curve,
F0 and intensity readouts at the cursor, zoom to the selection, a context menu.

Kept apart from :mod:`cuelab.ui.clip_view` (the plots themselves) so that each module
stays small; :class:`ClipTools` is attached to a :class:`~cuelab.ui.clip_view.ClipView`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt

from cuelab.ui.analysis_process import run_isolated
from cuelab.ui.dsp import INTENSITY_HOP_S, intensity_db, whole_clip_pass
from cuelab.ui.workers import Job, JobSlot


class ClipTools(QObject):
    """Selection by dragging, the intensity curve and the curve readouts of one view.

    A left drag on the waveform or the spectrogram selects the dragged span (as in
    Praat and Audacity) and analyses only it; Shift+drag (or the middle button) pans
    as before. Dragging inside an existing selection moves it, its edges resize it.
    """

    def __init__(self, view: Any) -> None:
        """``view``: the ClipView (not imported: it imports this module)."""
        super().__init__(view)
        self.view = view
        self.intensity: tuple[np.ndarray, np.ndarray] | None = None  # (t s, dB)
        self._slot = JobSlot("intensity", view.session.pool, self)
        self._slot.failed.connect(view.session.error)
        self._drag_start: float | None = None
        self._build_intensity()
        # The F0 and intensity overlays lie on top of the plots and would take the drags.
        for plot, overlay in (
            (view.wave_plot, self.intensity_view),
            (view.spec_plot, view.f0_view),
        ):
            self._install_drag(plot.getViewBox(), plot.getViewBox())
            self._install_drag(overlay, plot.getViewBox())
        view.session.clip_changed.connect(self._start_intensity)

    # --- selection by dragging -------------------------------------------------------

    def _install_drag(self, box: pg.ViewBox, vb: pg.ViewBox) -> None:
        """Drags on ``box`` select (times read through ``vb``) or pan ``vb``."""
        pan = vb.mouseDragEvent  # the plot's own ViewBox handler: pans

        def drag(ev: Any, axis: int | None = None) -> None:
            shift = bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            if ev.button() != Qt.MouseButton.LeftButton or shift:
                pan(ev, axis)
                return
            ev.accept()
            t = float(vb.mapSceneToView(ev.scenePos()).x())
            if ev.isStart():
                self._drag_start = float(vb.mapSceneToView(ev.buttonDownScenePos()).x())
            if self._drag_start is None:
                return
            self.show_span(self._drag_start, t, final=ev.isFinish())
            if ev.isFinish():
                self._drag_start = None

        box.mouseDragEvent = drag  # type: ignore[method-assign]

    def show_span(self, a: float, b: float, final: bool) -> None:
        """Draw the span ``a``-``b`` (clamped to the clip) as the selection; when
        ``final``, select it (analysed alone), as at the end of a drag."""
        v = self.view
        t0, t1 = sorted((a, b))
        t0, t1 = max(0.0, t0), min(v.duration, t1)
        if final:
            v.set_selection(t0, t1)
            return
        v.region.blockSignals(True)  # no analysis per mouse move, only at the end
        v.region.setRegion((t0, t1))
        v.region.blockSignals(False)
        v.region.setVisible(True)
        v.spec_region.setVisible(True)
        v.spec_region.setRegion((t0, t1))

    def zoom_to_selection(self) -> None:
        """Show just the selection (View ▸ Zoom to selection, Ctrl+E)."""
        v = self.view
        if not v.selection_box.isChecked():
            return
        t0, t1 = sorted(v.region.getRegion())
        if t1 > t0:
            v.wave_plot.setXRange(t0, t1, padding=0)

    # --- intensity -------------------------------------------------------------------

    def _build_intensity(self) -> None:
        """Intensity (dB) on the waveform's right axis, as Praat draws it in yellow-green."""
        item = self.view.wave_plot.getPlotItem()
        self.intensity_view = pg.ViewBox()
        self.intensity_view.setZValue(20)
        item.scene().addItem(self.intensity_view)
        axis = item.getAxis("right")
        axis.setStyle(showValues=True)
        axis.linkToView(self.intensity_view)
        axis.setLabel("intensity (dB)", color="#2e8b00")
        self.intensity_view.setXLink(item.getViewBox())
        self.intensity_view.setMouseEnabled(x=False, y=False)
        self.intensity_curve = pg.PlotDataItem(pen=pg.mkPen("#2e8b00", width=1.5))
        self.intensity_curve.setDownsampling(auto=True, method="peak")
        self.intensity_curve.setClipToView(True)
        self.intensity_view.addItem(self.intensity_curve)
        item.getViewBox().sigResized.connect(self._place)

    def _place(self, *_args: object) -> None:
        box = self.view.wave_plot.getPlotItem().getViewBox()
        self.intensity_view.setGeometry(box.sceneBoundingRect())
        self.intensity_view.linkedViewChanged(box, self.intensity_view.XAxis)

    def _start_intensity(self) -> None:
        s = self.view.session
        self.intensity = None
        self.intensity_curve.setData([], [])
        if s.audio is None:
            return
        x, sr = s.audio, s.sr

        def work(job: Job) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            with whole_clip_pass(job.check):
                t, db = run_isolated(intensity_db, x, sr, name="intensity", check=job.check)
            return x, t, db

        def done(value: tuple[np.ndarray, np.ndarray, np.ndarray], _s: float) -> None:
            audio, t, db = value
            if audio is not self.view.session.audio:
                return
            self.intensity = (t, db)
            self.intensity_curve.setData(t, db, skipFiniteCheck=True)
            if db.size:
                lo, hi = float(np.min(db)), float(np.max(db))
                self.intensity_view.setYRange(lo - 5, hi + 5, padding=0)

        self._slot.start(work, done)

    # --- readouts --------------------------------------------------------------------

    def f0_frames(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The analysis's F0 track: frame times (s, in the clip) and Hz (NaN unvoiced)."""
        s = self.view.session
        feats = s.features
        if feats is None:
            return None
        st = np.asarray(feats.f0_semitones, dtype=np.float64)
        hz = 27.5 * np.power(2.0, st / 12.0)
        hz = np.where(st > 0, hz, np.nan)
        t0 = s.region[0] if s.region else 0.0
        return t0 + np.arange(st.size) * feats.frame_hop_s, hz

    def intensity_at(self, t: float) -> float | None:
        """Intensity (dB) of the frame nearest ``t``; None off the clip or before it is
        computed."""
        if self.intensity is None:
            return None
        _times, db = self.intensity
        if not db.size or t < 0 or t > self.view.duration:
            return None
        k = int(np.clip(round(t / INTENSITY_HOP_S), 0, db.size - 1))
        return float(db[k])

    def f0_at(self, t: float) -> float | None:
        """F0 (Hz) of the analysis frame nearest ``t``; None when unvoiced or outside."""
        frames = self.f0_frames()
        if frames is None or not frames[0].size:
            return None
        times, hz = frames
        hop = float(times[1] - times[0]) if times.size > 1 else 0.01
        k = round((t - times[0]) / hop)
        if k < 0 or k >= hz.size or not np.isfinite(hz[k]):
            return None
        return float(hz[k])

    def readout(self, t: float) -> str:
        """ " · F0 182 Hz · 64.1 dB" at time ``t`` (what is known there)."""
        parts = []
        f0 = self.f0_at(t)
        parts.append(f"F0 {f0:.0f} Hz" if f0 is not None else "F0 –")
        level = self.intensity_at(t)
        if level is not None:
            parts.append(f"{level:.1f} dB")
        return "".join(f" · {p}" for p in parts)
