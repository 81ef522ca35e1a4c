"""The CueLab window: the panels around one :class:`Session`.

It is built to fit a laptop: every panel sits in a splitter or a scroll
area, so the window's minimum size is far below 1280x720, and titles are
elided instead of widening it. A menu bar holds the file commands, the
annotation keys and the Messages dock (this session's errors and warnings);
geometry, the last manifest, model and norms are remembered in ``QSettings``
when the window is given one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QByteArray,
    QEvent,
    QMargins,
    QRect,
    QSettings,
    QStandardPaths,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QFontMetrics,
    QIcon,
    QKeyEvent,
    QKeySequence,
    QShortcut,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QTabWidget,
    QWidget,
)

from cuelab.core.paths import ASSETS
from cuelab.core.runs import RunFolder
from cuelab.ui.agreement_panel import AgreementPanel
from cuelab.ui.batch_panel import BatchPanel, BatchResult
from cuelab.ui.clip_view import ClipView
from cuelab.ui.concepts_panel import ConceptsPanel
from cuelab.ui.dataset_panel import DatasetPanel
from cuelab.ui.model_panel import ModelPanel
from cuelab.ui.notify import MessagesView, Notifier
from cuelab.ui.playback import Player
from cuelab.ui.predictions_panel import PredictionsPanel
from cuelab.ui.session import Session
from cuelab.ui.widgets import scrolled

if TYPE_CHECKING:
    from cuelab.ui.mixer_panel import MixerPanel

log = logging.getLogger(__name__)

DEMO_MANIFEST = ASSETS / "demo" / "manifest.csv"
ICON = ASSETS / "icons" / "cuelab.svg"
CLOSE_WAIT_MS = 5000
DEFAULT_SIZE = (1440, 900)
MAX_RECENT = 8
RECENT_WIDTH_PX = 480  # File ▸ Recent elides longer paths in the middle
AUDIO_FILTER = "Audio (*.wav *.flac *.mp3 *.ogg *.m4a *.aiff *.aif);;All files (*)"
AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aiff", ".aif", ".opus"}


class MainWindow(QMainWindow):
    """Clip view on top, concepts and predictions below, model and dataset/mixer/batch left.

    Args:
        playback: open the sound device.
        settings: where geometry, recent files, the last manifest, model and
            norms are kept between sessions; None keeps nothing (tests,
            screenshots).

    Signals:
        ready(): every panel has drawn once (features, tokens, a prediction and
            the spectrogram are on screen); used for ``--screenshot``.
    """

    ready = Signal()
    confirm_quit_during_run = True

    def __init__(
        self,
        playback: bool = True,
        parent: QWidget | None = None,
        settings: QSettings | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("CueLab")
        if ICON.exists():
            self.setWindowIcon(QIcon(str(ICON)))
        self.settings = settings
        self.session = Session(self)
        self.notifier = Notifier(self.statusBar(), self)
        self.player = Player(self, enabled=playback)
        self.session.error.connect(self.notifier.error)
        self.session.warning.connect(self.notifier.warning)
        self.session.message.connect(self.notifier.info)
        self.player.unavailable.connect(self.notifier.error)

        self.clip_view = ClipView(self.session, self.player)
        self.concepts_panel = ConceptsPanel(self.session)
        self.predictions_panel = PredictionsPanel(self.session)
        self.model_panel = ModelPanel(self.session)
        self.dataset_panel = DatasetPanel(self.session)
        self.dataset_panel.use_settings(settings)  # the annotator and per-manifest label sets
        self.agreement_panel = AgreementPanel(self.session, self.dataset_panel)
        self.agreement_panel.drill_down.connect(self._show_clips)
        self.mixer_panel = self._make_mixer()
        from cuelab.ui.edits_panel import EditsPanel

        self.edits_panel = EditsPanel(self.session, self.player)
        self.batch_panel = BatchPanel(self.session)
        from cuelab.ui.side_by_side import SideBySidePanel

        self.side_by_side = SideBySidePanel(self.session)
        self.concepts_panel.sweep_requested.connect(self._sweep)
        self.batch_panel.run_finished.connect(self._show_run_in_dataset)
        self.batch_panel.drill_down.connect(self._drill_down)
        for slot in self.session.slots.values():  # panels may have added their own
            slot.progress.connect(self.notifier.info)

        # Every panel is in a splitter, and the tall ones scroll: the window's
        # minimum size stays far below a 1280x720 laptop screen.
        tabs = QTabWidget()
        self.dataset_panel.setTitle("")
        tabs.addTab(self.dataset_panel, "Dataset")
        if self.mixer_panel is not None:
            self.mixer_panel.setTitle("")
            tabs.addTab(scrolled(self.mixer_panel, horizontal=True), "Mixer")
        self.edits_panel.setTitle("")
        tabs.addTab(scrolled(self.edits_panel, horizontal=True), "Edits")
        tabs.addTab(scrolled(self.agreement_panel, horizontal=True), "Agreement")
        tabs.addTab(scrolled(self.batch_panel, horizontal=True), "Batch")  # the last tab
        self.tabs = tabs
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(scrolled(self.model_panel, horizontal=True))
        left.addWidget(tabs)
        left.setStretchFactor(1, 1)
        left.setSizes([250, 650])

        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(scrolled(self.concepts_panel))
        # the predictions, and the same clip answered by several models (with sweeps)
        self.answer_tabs = QTabWidget()
        self.predictions_panel.setTitle("")  # the tab says it
        self.answer_tabs.addTab(self.predictions_panel, "Predictions")
        # in a scroll area: its table and plot must not raise the window's minimum size
        self._side_by_side_area = scrolled(self.side_by_side, horizontal=True)
        self.answer_tabs.addTab(self._side_by_side_area, "Models side by side")
        bottom.addWidget(self.answer_tabs)
        bottom.setSizes([560, 440])
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.clip_view)
        right.addWidget(bottom)
        right.setSizes([370, 430])
        main = QSplitter(Qt.Orientation.Horizontal)
        main.addWidget(left)
        main.addWidget(right)
        main.setStretchFactor(1, 1)
        main.setSizes([460, 980])
        self.splitters = {"main": main, "left": left, "right": right, "bottom": bottom}
        for splitter in self.splitters.values():
            splitter.setChildrenCollapsible(False)
        self.setCentralWidget(main)

        self.messages = MessagesView(self.notifier)
        dock = QDockWidget("Messages", self)
        dock.setObjectName("messages")
        dock.setWidget(self.messages)
        dock.setVisible(False)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        self.messages_dock = dock
        self.notifier.badge.clicked.connect(self.show_messages)

        self._recent_pending: Path | None = None
        self.session.clip_changed.connect(self._on_clip_opened)
        self.session.clip_failed.connect(self._on_open_failed)
        self.session.slots["manifest"].failed.connect(self._on_open_failed)
        self.session.manifest_changed.connect(lambda: setattr(self, "_recent_pending", None))
        self._build_menus()
        self.setAcceptDrops(True)
        self._fit_screen()

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
        self.session.manifest_changed.connect(self._remember_manifest)
        self.session.model_changed.connect(self._remember_model)
        self.session.norms_changed.connect(self._remember_norms)
        self._restore_geometry()

    # --- layout and settings -------------------------------------------------------

    def _fit_screen(self) -> None:
        """Start at the default size, or the screen's available area when that is smaller."""
        w, h = DEFAULT_SIZE
        screen = self.screen() or QApplication.primaryScreen()
        if screen is not None:
            area = screen.availableGeometry()
            w, h = min(w, area.width()), min(h, area.height())
            self.move(area.topLeft())
        self.resize(w, h)
        self._default_size = self.size()

    def showEvent(self, event: QShowEvent) -> None:
        """On first show, once the window manager has framed the window, fit the frame."""
        super().showEvent(event)
        if not getattr(self, "_frame_fitted", False):
            self._frame_fitted = True
            # Only the size chosen here: not a restored geometry nor one a caller set.
            default = getattr(self, "_default_size", None)
            if default is not None and self.size() == default.expandedTo(self.minimumSize()):
                self._fitting = self.geometry()
                QTimer.singleShot(0, self._fit_frame)
                QTimer.singleShot(300, self._fit_frame)  # some managers frame the window late

    def _fit_frame(self) -> None:
        """Shrink and move the window so that its frame (title bar included), not just its
        client area, lies in the screen's available area: the status bar stays visible."""
        screen = self.screen() or QApplication.primaryScreen()
        if screen is None or self.isMaximized() or self.isFullScreen():
            return
        frame, client = self.frameGeometry(), self.geometry()
        if client != getattr(self, "_fitting", None):
            return  # resized or moved meanwhile (by the user or a caller): theirs to keep
        margins = QMargins(
            client.left() - frame.left(),
            client.top() - frame.top(),
            frame.right() - client.right(),
            frame.bottom() - client.bottom(),
        )
        fitted = fit_client_rect(screen.availableGeometry(), margins, client)
        if fitted != client:
            self.setGeometry(fitted)
            self._fitting = self.geometry()

    def _restore_geometry(self) -> None:
        if self.settings is None:
            return
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self._geometry_restored = self.restoreGeometry(geometry)
        state = self.settings.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
        for name, splitter in self.splitters.items():
            value = self.settings.value(f"window/splitter_{name}")
            if isinstance(value, QByteArray) and not value.isEmpty():
                splitter.restoreState(value)

    def _save_settings(self) -> None:
        if self.settings is None:
            return
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        for name, splitter in self.splitters.items():
            self.settings.setValue(f"window/splitter_{name}", splitter.saveState())
        self.settings.sync()

    def _remember_manifest(self) -> None:
        manifest = self.session.manifest
        demos = {DEMO_MANIFEST.resolve(), user_demo_manifest(create=False).resolve()}
        if manifest is not None and manifest.path.resolve() not in demos:
            if self.settings is not None:
                self.settings.setValue("session/manifest", str(manifest.path))
            self.add_recent(manifest.path)

    def _remember_model(self) -> None:
        if self.settings is not None and self.session.model is not None:
            quant, device = self.session.model_options
            self.settings.setValue("session/model", self.session.model_spec)
            self.settings.setValue("session/quant", quant)
            self.settings.setValue("session/device", device)
            for key in ("scoring", "prompt_family"):  # an openai: model's choices
                self.settings.setValue(f"session/{key}", self.session.model_remote.get(key, ""))

    def _remember_norms(self) -> None:
        if self.settings is not None:
            path = self.session.norms_path
            self.settings.setValue("session/norms", str(path) if path else "")

    def recent_files(self) -> list[str]:
        """Recently opened manifests and audio files, newest first."""
        if self.settings is None:
            return list(self._recent)
        value = self.settings.value("recent/files", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def add_recent(self, path: str | Path) -> None:
        """Put ``path`` at the top of File ▸ Recent."""
        entry = str(Path(path).resolve())
        files = [f for f in self.recent_files() if f != entry]
        files = [entry, *files][:MAX_RECENT]
        if self.settings is None:
            self._recent = files
        else:
            self.settings.setValue("recent/files", files)
        self._fill_recent()

    def remove_recent(self, path: str | Path) -> None:
        """Drop ``path`` from File ▸ Recent (it failed to open)."""
        entry = str(Path(path).resolve())
        files = [f for f in self.recent_files() if f != entry]
        if self.settings is None:
            self._recent = files
        else:
            self.settings.setValue("recent/files", files)
        self._fill_recent()

    def _on_clip_opened(self) -> None:
        """An audio file opened from File ▸ Open or Recent goes (back) to the top of Recent."""
        pending, self._recent_pending = self._recent_pending, None
        path = self.session.clip_path
        if pending is not None and path is not None and path.resolve() == pending:
            self.add_recent(pending)

    def _on_open_failed(self, _message: str) -> None:
        """A file that failed to open is not offered again in File ▸ Recent."""
        pending, self._recent_pending = self._recent_pending, None
        if pending is not None:
            self.remove_recent(pending)

    def restore_session(self, audio: str | Path | None = None) -> None:
        """Open what the last session had open (manifest, norms, model), else the demo."""
        s = self.settings
        manifest = str(s.value("session/manifest", "") or "") if s is not None else ""
        norms = str(s.value("session/norms", "") or "") if s is not None else ""
        spec = str(s.value("session/model", "") or "") if s is not None else ""
        if norms and Path(norms).is_file():
            self.concepts_panel.load_norms(Path(norms))
        if audio is None and manifest and Path(manifest).is_file():
            self.session.open_manifest(manifest)
        else:
            self.open_demo(audio, model_spec=None)
        if spec and s is not None:
            self.model_panel.show_spec(spec)
            remote = {
                key: str(s.value(f"session/{key}", "") or "")
                for key in ("scoring", "prompt_family")
            }
            self.session.load_model(
                spec,
                str(s.value("session/quant", "auto")),
                str(s.value("session/device", "auto")),
                {k: v for k, v in remote.items() if v} or None,
            )
        else:
            self.session.load_model("reference")

    # --- menus ---------------------------------------------------------------------

    def _action(self, menu: QMenu, text: str, slot, shortcut=None) -> QAction:
        action = menu.addAction(text)
        action.triggered.connect(lambda _checked=False: slot())
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        return action

    def _build_menus(self) -> None:
        self._recent: list[str] = []
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "Open &audio…", self.choose_audio, QKeySequence.StandardKey.Open)
        self._action(file_menu, "Open &manifest…", self.choose_manifest, "Ctrl+Shift+O")
        self._action(file_menu, "Open &run…", self.choose_run)
        self.recent_menu = file_menu.addMenu("&Recent")
        file_menu.addSeparator()
        self.close_action = self._action(file_menu, "&Close window", self.close, "Ctrl+W")
        self.quit_action = self._action(file_menu, "&Quit", self.close, "Ctrl+Q")
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)

        ann = bar.addMenu("&Annotate")
        d = self.dataset_panel
        navigation = [
            self._action(ann, "&Next clip", lambda: d.step(1), "Ctrl+Down"),
            self._action(ann, "&Previous clip", lambda: d.step(-1), "Ctrl+Up"),
            self._action(ann, "Next &unannotated clip", d.next_unannotated, "Ctrl+U"),
        ]
        d.navigation_keys = [a.shortcut() for a in navigation]
        ann.aboutToShow.connect(d.flush)  # a note typed before a menu walk is kept
        self._action(ann, "Label &set…", self.choose_label_set)
        self._action(ann, "&Re-sort the table", d.resort, "F5")  # the order is frozen otherwise
        ann.addSeparator()
        self.label_actions: list[QAction] = []
        for k in range(1, 10):
            action = self._action(ann, f"Label {k}", lambda k=k: d.label_by_number(k), f"Alt+{k}")
            action.setVisible(False)
            self.label_actions.append(action)
        d.labels_changed.connect(self._fill_label_actions)

        edit = bar.addMenu("&Edit")
        c = self.concepts_panel
        self._action(edit, "&Undo token edit", c.undo, QKeySequence.StandardKey.Undo)
        self._action(edit, "&Redo token edit", c.redo, QKeySequence.StandardKey.Redo)
        edit.addSeparator()
        self._action(edit, "Copy &token text", c.copy_tokens, "Ctrl+Shift+C")
        self._action(edit, "Copy full &prompt", c.copy_prompt, "Ctrl+Alt+C")

        view = bar.addMenu("&View")
        view.addAction(self.messages_dock.toggleViewAction())
        self._action(view, "&Zoom to fit", self.clip_view.zoom_to_fit, "Ctrl+0")
        from cuelab.ui.clip_export import ExportActions

        self.exports = ExportActions(self)  # File ▸ Export, Edit ▸ Show full prompt
        self._fill_recent()

    def choose_label_set(self) -> None:
        """Annotate ▸ Label set…: the labels for keys 1-9 (empty: the manifest's)."""
        current = ", ".join(self.dataset_panel.label_set())
        text, ok = QInputDialog.getText(
            self, "Label set", "Labels, comma-separated (empty: the manifest's labels):",
            text=current,
        )  # fmt: skip
        if ok:
            self.set_label_set([t for t in text.split(",") if t.strip()] or None)

    def set_label_set(self, labels: list[str] | None) -> None:
        """Use (and remember, for the open manifest) a label set; None: the manifest's."""
        self.dataset_panel.set_label_set(labels)

    def _show_clips(self, utt_ids: list[str], description: str) -> None:
        """An Agreement cell's clips in the Dataset tab."""
        self.dataset_panel.show_subset(utt_ids, description)
        self.tabs.setCurrentIndex(0)

    def _fill_label_actions(self) -> None:
        labels = self.dataset_panel.label_set()
        for k, action in enumerate(self.label_actions):
            if k < len(labels):
                action.setText(f"Label {k + 1}: {labels[k]}")
            action.setVisible(k < len(labels))

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        files = self.recent_files()
        metrics = QFontMetrics(self.recent_menu.font())
        for f in files:
            text = metrics.elidedText(f, Qt.TextElideMode.ElideMiddle, RECENT_WIDTH_PX)
            action = self._action(
                self.recent_menu, text.replace("&", "&&"), lambda f=f: self.open_path(f)
            )
            action.setToolTip(f)
            action.setStatusTip(f)
        self.recent_menu.setToolTipsVisible(True)
        self.recent_menu.setEnabled(bool(files))

    def show_messages(self) -> None:
        """Show the Messages dock (this session's errors and warnings)."""
        self.messages_dock.show()
        self.messages_dock.raise_()

    # --- opening files -------------------------------------------------------------

    def _start_folder(self) -> str:
        m = self.session.manifest
        return str(m.path.parent) if m is not None else str(Path.cwd())

    def choose_audio(self) -> None:
        """File ▸ Open audio…"""
        path, _ = QFileDialog.getOpenFileName(
            self, "Open audio", self._start_folder(), AUDIO_FILTER
        )
        if path:
            self.open_path(path)

    def choose_manifest(self) -> None:
        """File ▸ Open manifest…"""
        self.dataset_panel.choose()

    def choose_run(self) -> None:
        """File ▸ Open run…: show a run folder's report in the Batch tab."""
        folder = QFileDialog.getExistingDirectory(self, "Open a run folder", self._start_folder())
        if folder:
            self.open_path(folder)

    def open_path(self, path: str | Path) -> None:
        """Open a manifest (CSV), a run folder (run.json), a folder of audio or an audio file."""
        p = Path(path)
        if p.is_dir() and RunFolder(p).has_record():
            self.tabs.setCurrentIndex(self.tabs.count() - 1)
            self.batch_panel.open_run(p)
        elif p.is_dir():  # a folder of clips: its manifest, or one written beside them
            self.session.open_folder(p)
        elif p.suffix.lower() == ".csv":
            self._recent_pending = p.resolve()  # dropped from Recent if it fails to open
            self.session.open_manifest(p)
        else:
            self._recent_pending = p.resolve()  # added to Recent once it has opened
            self.session.open_file(p)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """Accept files and folders."""
        if event.mimeData().hasUrls() and event.possibleActions() & Qt.DropAction.CopyAction:
            event.setDropAction(Qt.DropAction.CopyAction)  # never Move: the file stays put
            event.accept()

    def dropEvent(self, event: QDropEvent) -> None:
        """Open the first dropped file or folder."""
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open_path(urls[0].toLocalFile())
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()

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
        from cuelab.ui.mixer_panel import MixerPanel

        return MixerPanel(self.session, self.player)

    def _sweep(self, concept: str) -> None:
        """A chip's "sweep" item: show the side-by-side tab and sweep that concept."""
        self.answer_tabs.setCurrentWidget(self._side_by_side_area)
        self.side_by_side.start_sweep(concept)

    def _show_run_in_dataset(self, result: BatchResult) -> None:
        source = f"batch run {result.folder} ({result.condition})"
        self.dataset_panel.show_run_predictions(result.manifest, result.predictions, source)

    def _drill_down(self, utt_ids: list[str], description: str) -> None:
        """A confusion cell's clips in the Dataset tab (the run's manifest must be open)."""
        result, manifest = self.batch_panel.result, self.session.manifest
        if (
            result is None
            or manifest is None
            or (Path(result.manifest).resolve() != manifest.path.resolve())
        ):
            self.notifier.error(
                "the run scored another manifest; open it (File ▸ Open manifest…) to see its clips"
            )
            return
        self.dataset_panel.show_subset(utt_ids, description)
        self.tabs.setCurrentIndex(0)

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
            self.session.open_manifest(user_demo_manifest())
        else:
            self.session.open_file(audio)
        if model_spec:
            self.session.load_model(model_spec)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Ask first during a batch run; then stop playback, cancel jobs, await the workers."""
        if self.batch_panel.state == "running" and self.confirm_quit_during_run:
            answer = QMessageBox.question(
                self,
                "CueLab",
                "A batch run is in progress. Quit anyway? What was scored is kept on disk "
                "and the run can be resumed from File ▸ Open run….",
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.dataset_panel.flush()
        self._save_settings()
        self.player.stop()
        if not self.session.shutdown(CLOSE_WAIT_MS):
            log.warning("workers still running after %d ms at close", CLOSE_WAIT_MS)
        super().closeEvent(event)


def user_data_dir() -> Path:
    """CueLab's folder in the user's data location ($XDG_DATA_HOME/cuelab on Linux)."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
    return Path(base or Path.home() / ".local" / "share") / "cuelab"


def user_demo_manifest(create: bool = True) -> Path:
    """The bundled demo's manifest as the user's own copy, so annotating the demo writes its
    sidecar into the user's data folder, never into the installed package.

    The copy points at the bundled clips by absolute path and is rewritten when the
    bundled manifest (or the install location) changes.
    """
    import csv
    import io

    out = user_data_dir() / "demo" / "manifest.csv"
    if not create:
        return out
    with DEMO_MANIFEST.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    buf = io.StringIO()
    fields = list(rows[0]) if rows else ["path"]
    if "utt_id" not in fields:  # the clips keep the bundled demo's ids, not absolute paths
        fields.insert(1, "utt_id")
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        own = row.get("utt_id") or Path(row["path"]).with_suffix("").as_posix()
        path = str((DEMO_MANIFEST.parent / row["path"]).resolve())
        writer.writerow({**row, "utt_id": own, "path": path})
    text = buf.getvalue()
    try:
        if not out.is_file() or out.read_text(encoding="utf-8") != text:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(out)
    except OSError as exc:  # a read-only home: the bundled demo, without annotations
        log.warning("cannot write the demo manifest to %s: %s", out, exc)
        return DEMO_MANIFEST
    return out


def fit_client_rect(area: QRect, margins: QMargins, client: QRect) -> QRect:
    """The client rectangle whose frame (``client`` grown by ``margins``) lies in ``area``.

    The client keeps its size where it fits and shrinks where the frame would not;
    it moves only as far as needed to bring the frame inside.
    """
    width = min(client.width(), area.width() - margins.left() - margins.right())
    height = min(client.height(), area.height() - margins.top() - margins.bottom())
    left = max(client.left(), area.left() + margins.left())
    top = max(client.top(), area.top() + margins.top())
    left = min(left, area.right() - margins.right() - width + 1)
    top = min(top, area.bottom() - margins.bottom() - height + 1)
    return QRect(left, top, width, height)
