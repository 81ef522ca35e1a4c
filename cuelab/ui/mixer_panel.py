"""Speech over a background at a chosen SNR; listen, then analyse the mix.

The mix is made at 16 kHz (speech and background are both decoded at that
rate), so applying it hands the model exactly the signal that was heard.
Opening another clip or moving a control drops the mix at once (Apply is
disabled until the new mix is ready), so Apply can never analyse a clip that
is no longer open or a mix that is not the one the controls describe. A mix
is made only while the Mixer is shown or used: clips opened with the Mixer
hidden cost nothing and raise no mixing errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QToolButton,
    QWidget,
)

from cuelab.core.paths import ASSETS
from cuelab.ui.playback import Player
from cuelab.ui.session import Session
from cuelab.ui.workers import Debouncer, Job, JobSlot

BACKGROUNDS_MANIFEST = ASSETS / "backgrounds" / "manifest.csv"
SR = 16000


@dataclass(frozen=True)
class MixState:
    """A finished mix and the speech it was made from."""

    result: Any  # cuelab.core.audio.mixing.MixResult (imported lazily)
    speech_name: str
    background_name: str
    speech_key: str  # the session's clip_key of the speech


class MixerPanel(QGroupBox):
    """Background, SNR (with ±∞), onset; listen to mix/speech/background; apply."""

    def __init__(self, session: Session, player: Player, parent: QWidget | None = None) -> None:
        super().__init__("Mixer", parent)
        self.session = session
        self.player = player
        self.mix: MixState | None = None
        self._speech: tuple[np.ndarray, str, str] | None = None  # samples, name, clip_key
        self._slot = JobSlot("mixer", session.pool, self)
        self._slot.failed.connect(session.error)
        self._slot.failed.connect(self._on_mix_failed)
        session.slots["mixer"] = self._slot
        self._debounce = Debouncer(200, self.remix, self)
        self._build()
        session.clip_changed.connect(self._on_clip)
        self._load_backgrounds()

    def _build(self) -> None:
        self.background_combo = QComboBox()
        self.background_combo.setMinimumContentsLength(12)
        self.background_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.browse_button = QToolButton(text="…")
        self.browse_button.setToolTip("Use your own background recording")
        self.browse_button.clicked.connect(self._browse_background)
        bg_row = QHBoxLayout()
        bg_row.addWidget(self.background_combo, 1)
        bg_row.addWidget(self.browse_button)
        self.snr_slider = QSlider(Qt.Orientation.Horizontal, minimum=-20, maximum=30, value=10)
        # Wide enough that any typed SNR is taken as typed (100 dB once became 10 dB).
        self.snr_spin = QDoubleSpinBox(suffix=" dB", minimum=-120.0, maximum=120.0, decimals=1)
        self.snr_spin.setValue(10.0)
        self.snr_spin.setToolTip("SNR over the speech span, typed exactly (the slider: whole dB)")
        self.snr_label = QLabel()
        self.plus_inf = QCheckBox("+∞ (speech only)")
        self.minus_inf = QCheckBox("−∞ (background only)")
        self.onset_spin = QDoubleSpinBox(
            suffix=" s", minimum=0.0, maximum=10.0, singleStep=0.1, value=0.5
        )
        snr_row = QHBoxLayout()
        snr_row.addWidget(self.snr_slider, 1)
        snr_row.addWidget(self.snr_spin)
        snr_row.addWidget(self.snr_label)  # shown for ±∞ only
        inf_row = QHBoxLayout()
        inf_row.addWidget(self.plus_inf)
        inf_row.addWidget(self.minus_inf)
        self.listen_buttons: dict[str, QPushButton] = {}
        listen = QHBoxLayout()
        for what in ("mix", "speech", "background"):
            button = QPushButton(f"▶ {what}")
            button.clicked.connect(lambda _=False, w=what: self.listen(w))
            self.listen_buttons[what] = button
            listen.addWidget(button)
        if not self.player.available:
            self._playback_off(self.player.reason)
        self.player.unavailable.connect(self._playback_off)
        self.apply_button = QPushButton("Analyse this mix")
        self.apply_button.setToolTip(
            "The mix becomes the analysed clip; tokens and predictions refresh"
        )
        self.apply_button.clicked.connect(self.apply)
        self.apply_button.setEnabled(False)
        self.info_label = QLabel("")
        self.info_label.setWordWrap(True)
        self.info_label.setStyleSheet("color: #555;")
        self.preview = pg.PlotWidget()
        self.preview.setMaximumHeight(90)
        self.preview.setMinimumHeight(50)
        self.preview.setMouseEnabled(x=False, y=False)
        self.preview.hideAxis("left")
        self.preview.setToolTip("The mix (blue) and its speech stem (orange)")
        self.preview_mix = self.preview.plot(pen=pg.mkPen("#1f4e79", width=1))
        self.preview_speech = self.preview.plot(pen=pg.mkPen("#e07b39", width=1))
        for curve in (self.preview_mix, self.preview_speech):
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)
        form = QFormLayout(self)
        form.addRow("Background", bg_row)
        form.addRow("SNR", snr_row)
        form.addRow("", inf_row)
        form.addRow("Onset", self.onset_spin)
        form.addRow(listen)
        form.addRow(self.apply_button)
        form.addRow(self.info_label)
        form.addRow(self.preview)
        self.snr_slider.valueChanged.connect(self._slider_moved)
        self.snr_spin.valueChanged.connect(self._on_param)
        self.plus_inf.toggled.connect(lambda on: on and self.minus_inf.setChecked(False))
        self.minus_inf.toggled.connect(lambda on: on and self.plus_inf.setChecked(False))
        for w in (self.plus_inf, self.minus_inf):
            w.toggled.connect(self._on_param)
        self.onset_spin.valueChanged.connect(self._on_param)
        self.background_combo.currentIndexChanged.connect(self._on_param)
        self._show_snr()

    def _load_backgrounds(self) -> None:
        try:
            from cuelab.core.datasets import read_manifest

            for row in read_manifest(BACKGROUNDS_MANIFEST).rows:
                self.background_combo.addItem(f"{row.get('scene') or row.utt_id}", str(row.path))
        except Exception as exc:  # a missing asset must not stop the window
            self.session.error.emit(f"backgrounds: {exc}")

    def snr_db(self) -> float:
        """The chosen SNR (±inf from the checkboxes)."""
        if self.plus_inf.isChecked():
            return math.inf
        if self.minus_inf.isChecked():
            return -math.inf
        return float(self.snr_spin.value())

    def _slider_moved(self, value: int) -> None:
        self.snr_spin.setValue(float(value))  # emits valueChanged: one remix

    def _show_snr(self) -> None:
        snr = self.snr_db()
        self.snr_label.setText(
            f"{snr:+g} dB" if math.isfinite(snr) else ("+∞" if snr > 0 else "−∞")
        )
        self.snr_slider.setEnabled(math.isfinite(snr))
        self.snr_spin.setEnabled(math.isfinite(snr))
        self.snr_label.setVisible(not math.isfinite(snr))
        if math.isfinite(snr) and self.snr_slider.value() != round(snr):
            self.snr_slider.blockSignals(True)
            self.snr_slider.setValue(round(snr))
            self.snr_slider.blockSignals(False)

    def _browse_background(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Background recording", str(Path.home()), "Audio (*.wav *.flac *.mp3 *.ogg)"
        )
        if path:
            self.add_background(Path(path))

    def add_background(self, path: Path) -> None:
        """Offer ``path`` as a background and choose it (decoded when mixed)."""
        index = self.background_combo.findData(str(path))
        if index < 0:
            self.background_combo.addItem(f"{path.name} (yours)", str(path))
            index = self.background_combo.count() - 1
        self.background_combo.setCurrentIndex(index)

    def _on_param(self, *_args: object) -> None:
        self._show_snr()
        if self._speech is not None:
            self._drop_mix(f"Mixing {self._speech[1]}…")  # the old mix no longer matches
        self._debounce.trigger()

    def _on_clip(self) -> None:
        s = self.session
        # A mix applied as the clip must not become the speech of the next mix.
        if s.audio is not None and s.clip_path is not None:
            self._speech = (s.audio, s.clip_name, s.clip_key)
            self._debounce.stop()
            if self.isVisible():
                self._drop_mix(f"Mixing {s.clip_name}…" if self.background_combo.count() else "")
                self._debounce.trigger()
            else:
                self._drop_mix("")

    def showEvent(self, event: QShowEvent) -> None:
        """The Mixer is in use: mix the open clip if that is not done yet."""
        super().showEvent(event)
        if self._speech is not None and not self._is_current(self.mix):
            self.info_label.setText(f"Mixing {self._speech[1]}…")
            self._debounce.trigger()

    def _drop_mix(self, note: str) -> None:
        """Forget the mix (and any being made): it was built from another clip."""
        self._slot.cancel()
        self.mix = None
        self.preview_mix.setData([], [])
        self.preview_speech.setData([], [])
        self.apply_button.setEnabled(False)
        self.info_label.setText(note)
        self.info_label.setStyleSheet("color: #555;")

    def remix(self) -> None:
        """Make the mix in a worker (decoding the background there too)."""
        if self._speech is None or self.background_combo.count() == 0:
            return
        speech, speech_name, speech_key = self._speech
        bg_path = Path(self.background_combo.currentData())
        snr, onset = self.snr_db(), self.onset_spin.value()

        def work(_job: Job) -> MixState:
            from cuelab.core.audio import load_audio, mix_at_snr

            bg, _sr = load_audio(bg_path, sr=SR)
            result = mix_at_snr(
                speech,
                bg,
                SR,
                snr,
                onset_s=onset,
                speech_name=speech_name,
                background_name=bg_path.name,
            )
            return MixState(result, speech_name, bg_path.name, speech_key)

        self._slot.start(work, self._on_mix)

    def _on_mix_failed(self, message: str) -> None:
        """Say in the panel why there is no mix (e.g. an undecodable background), instead
        of "Mixing…" forever; the next change of clip or setting tries again."""
        self.mix = None
        self.apply_button.setEnabled(False)
        self.info_label.setText(f"No mix: {message}")
        self.info_label.setStyleSheet("color: #b00020;")

    def _on_mix(self, state: MixState, _s: float) -> None:
        if not self._is_current(state):
            return
        self.info_label.setStyleSheet("color: #555;")
        self.mix = state
        r = state.result
        achieved = r.achieved_snr_db
        text = f"{achieved:+.1f} dB" if math.isfinite(achieved) else str(achieved)
        self.info_label.setText(
            f"{state.speech_name} over {state.background_name}: achieved SNR {text}, "
            f"{r.mix.size / SR:.2f} s{', background looped' if r.looped else ''}"
        )
        self.apply_button.setEnabled(True)
        t = np.arange(r.mix.size) / SR
        self.preview_mix.setData(t, r.mix, skipFiniteCheck=True)
        self.preview_speech.setData(t, r.speech_stem, skipFiniteCheck=True)
        self.preview.setXRange(0, r.mix.size / SR, padding=0)

    def _playback_off(self, reason: str) -> None:
        for button in self.listen_buttons.values():
            button.setEnabled(False)
            button.setToolTip(reason)

    def listen(self, what: str) -> None:
        """Play the mix, the speech stem or the background stem."""
        if self.mix is None:
            return
        r = self.mix.result
        signal = {"mix": r.mix, "speech": r.speech_stem, "background": r.background_stem}[what]
        self.player.play(signal, SR)

    def _is_current(self, state: MixState | None) -> bool:
        """True when ``state`` was mixed from the speech of the last opened clip."""
        return (
            state is not None and self._speech is not None and state.speech_key == self._speech[2]
        )

    def apply(self) -> None:
        """Analyse the mix instead of the clean clip (only a mix of the open clip's speech)."""
        if self.mix is None or not self._is_current(self.mix):
            return
        snr = self.mix.result.requested_snr_db
        name = f"{self.mix.speech_name} + {self.mix.background_name} @ {snr:+g} dB"
        self.session.set_audio(self.mix.result.mix, SR, name)
