"""The CueLab window: the panels around one :class:`Session`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QCloseEvent, QIcon, QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QComboBox,
    QMainWindow,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cuelab.core.paths import ASSETS
from cuelab.ui.batch_panel import BatchPanel, BatchResult
from cuelab.ui.clip_view import ClipView
from cuelab.ui.concepts_panel import ConceptsPanel
from cuelab.ui.dataset_panel import DatasetPanel
from cuelab.ui.model_panel import ModelPanel
from cuelab.ui.notify import Notifier
from cuelab.ui.playback import Player
from cuelab.ui.predictions_panel import PredictionsPanel
from cuelab.ui.session import Session

if TYPE_CHECKING:
    from cuelab.ui.mixer_panel import MixerPanel

log = logging.getLogger(__name__)

DEMO_MANIFEST = ASSETS / "demo" / "manifest.csv"
ICON = ASSETS / "icons" / "cuelab.svg"
CLOSE_WAIT_MS = 5000


class MainWindow(QMainWindow):
    """Clip view on top, concepts and predictions below, dataset/model/mixer on the left.

    Signals:
        ready(): every panel has drawn once (features, tokens, a prediction and
            the spectrogram are on screen); used for ``--screenshot``.
    """

    ready = Signal()

    def __init__(self, playback: bool = True, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("CueLab")
        if ICON.exists():
            self.setWindowIcon(QIcon(str(ICON)))
        self.session = Session(self)
        self.notifier = Notifier(self.statusBar(), self)
        self.player = Player(self, enabled=playback)
        self.session.error.connect(self.notifier.error)
        self.session.message.connect(self.notifier.info)
        self.player.unavailable.connect(self.notifier.error)

        self.clip_view = ClipView(self.session, self.player)
        self.concepts_panel = ConceptsPanel(self.session)
        self.predictions_panel = PredictionsPanel(self.session)
        self.model_panel = ModelPanel(self.session)
        self.dataset_panel = DatasetPanel(self.session)
        self.mixer_panel = self._make_mixer()
        self.batch_panel = BatchPanel(self.session)
        self.batch_panel.run_finished.connect(self._show_run_in_dataset)
        for slot in self.session.slots.values():  # panels may have added their own
            slot.progress.connect(self.notifier.info)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.model_panel)
        tabs = QTabWidget()
        self.dataset_panel.setTitle("")
        if self.mixer_panel is not None:
            self.mixer_panel.setTitle("")
        tabs.addTab(self.dataset_panel, "Dataset")
        if self.mixer_panel is not None:
            tabs.addTab(self.mixer_panel, "Mixer")
        tabs.addTab(self.batch_panel, "Batch")
        left_layout.addWidget(tabs, 1)
        self.tabs = tabs

        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.concepts_panel)
        bottom.addWidget(self.predictions_panel)
        bottom.setSizes([560, 440])
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.clip_view)
        right.addWidget(bottom)
        right.setSizes([420, 380])
        main = QSplitter(Qt.Orientation.Horizontal)
        main.addWidget(left)
        main.addWidget(right)
        main.setSizes([430, 1010])
        self.setCentralWidget(main)
        self.resize(1440, 900)

        self._space = QShortcut(QKeySequence(Qt.Key.Key_Space), self)
        self._space.activated.connect(self._on_space)

        self._drawn: set[str] = set()
        self.clip_view.spectrogram_drawn.connect(lambda: self._mark("spectrogram"))
        self.session.analysis_changed.connect(lambda: self._mark("features"))
        self.session.tokens_changed.connect(lambda: self._mark("tokens"))
        self.session.prediction_changed.connect(lambda _u: self._mark("prediction"))
        self.session.prediction_changed.connect(
            lambda u: self.notifier.info(f"Prediction updated ({u.latency_s * 1000:.0f} ms)")
        )
        self.session.manifest_changed.connect(lambda: self._mark("dataset"))

    def _on_space(self) -> None:
        """Play/pause, unless the focused control uses space itself.

        A window shortcut wins over a focused button, check box or combo box,
        so without this a keyboard user could not tick a condition or press
        Start: such a control gets its space key back.
        """
        focus = QApplication.focusWidget()
        if isinstance(focus, (QAbstractButton, QComboBox)) and focus.isEnabled():
            self._space.setEnabled(False)  # the resent key must not come back here
            try:
                for kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
                    key = QKeyEvent(kind, Qt.Key.Key_Space, Qt.KeyboardModifier.NoModifier, " ")
                    QApplication.sendEvent(focus, key)
            finally:
                self._space.setEnabled(True)
            return
        self.clip_view.toggle_play()

    def _make_mixer(self) -> MixerPanel | None:
        """The mixer panel, when the core has a mixer."""
        try:
            import cuelab.core.audio.mixing  # noqa: F401
        except ImportError:
            return None
        from cuelab.ui.mixer_panel import MixerPanel

        return MixerPanel(self.session, self.player)

    def _show_run_in_dataset(self, result: BatchResult) -> None:
        source = f"batch run {result.folder} ({result.condition})"
        self.dataset_panel.show_run_predictions(result.manifest, result.predictions, source)

    def _mark(self, what: str) -> None:
        if what in self._drawn:
            return
        self._drawn.add(what)
        needed = {"spectrogram", "features", "tokens", "prediction"}
        if self.session.manifest is not None or "dataset" in self._drawn:
            needed.add("dataset")
        if needed <= self._drawn:
            self.ready.emit()

    @property
    def is_ready(self) -> bool:
        """True once every panel has drawn."""
        return {"spectrogram", "features", "tokens", "prediction"} <= self._drawn

    def open_demo(
        self, audio: str | Path | None = None, model_spec: str | None = "reference"
    ) -> None:
        """Open the demo dataset (or ``audio``) and load the default model, all in the background."""
        if audio is None:
            self.session.open_manifest(DEMO_MANIFEST)
        else:
            self.session.open_file(audio)
        if model_spec:
            self.session.load_model(model_spec)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop playback, cancel jobs and wait (bounded) for the workers."""
        self.player.stop()
        if not self.session.shutdown(CLOSE_WAIT_MS):
            log.warning("workers still running after %d ms at close", CLOSE_WAIT_MS)
        super().closeEvent(event)
