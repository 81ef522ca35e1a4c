"""Between sessions (QSettings in a temporary file), File menu, drag and drop, quitting."""

from __future__ import annotations

import threading

from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QTimer, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox


def _settings(tmp_path) -> QSettings:
    """Never the user's own settings: an INI file in the test's folder."""
    return QSettings(str(tmp_path / "cuelab-test.ini"), QSettings.Format.IniFormat)


def _window(qtbot, settings):
    from cuelab.ui.main_window import MainWindow

    win = MainWindow(playback=False, settings=settings)
    win.notifier.dialogs_enabled = False
    qtbot.addWidget(win)
    win.show()
    return win


def test_geometry_manifest_model_and_recent_files_are_remembered(qtbot, tmp_path, small_manifest):
    first = _window(qtbot, _settings(tmp_path))
    # The offscreen screen is 800x600: stay inside its height (the width is the minimum).
    first.resize(first.minimumSizeHint().width(), 560)
    first.splitters["main"].setSizes([300, first.width() - 300])
    left_width = first.splitters["main"].sizes()[0]
    s = first.session
    s.open_manifest(small_manifest)
    s.load_model("reference")
    qtbot.waitUntil(lambda: s.model is not None and s.manifest is not None, timeout=60_000)
    first.close()
    assert (tmp_path / "cuelab-test.ini").exists()

    second = _window(qtbot, _settings(tmp_path))
    assert second.height() == 560 != min(900, second.screen().availableGeometry().height())
    assert second.splitters["main"].sizes()[0] == left_width
    assert second.recent_files() == [str(small_manifest.resolve())]
    recent = [a.toolTip() for a in second.recent_menu.actions()]  # the text is elided
    assert recent == [str(small_manifest.resolve())]
    s2 = second.session
    second.restore_session()
    qtbot.waitUntil(lambda: s2.model is not None and s2.manifest is not None, timeout=60_000)
    assert s2.manifest.path == small_manifest and s2.model_spec == "reference"
    second.close()


def test_windows_without_settings_remember_nothing(make_window, tmp_path):
    win = make_window()
    assert win.settings is None
    win.add_recent(tmp_path / "x.csv")  # kept for this window only
    assert win.recent_files() == [str((tmp_path / "x.csv").resolve())]


def test_dropping_a_manifest_opens_it(make_window, qtbot, small_manifest):
    win = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(small_manifest))])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(win.session.manifest_changed, timeout=30_000):
        win.dropEvent(event)
    assert win.session.manifest.path == small_manifest


def test_dropping_a_folder_of_clips_opens_it_as_a_dataset(make_window, qtbot, tmp_path):
    """Class folders become labels; the manifest (and later the sidecar) lies beside the clips."""
    import shutil

    from tests.ui.conftest import DEMO

    for label, name in (("angry", "spk01_f_angry_01.flac"), ("sad", "spk01_f_sad_01.flac")):
        (tmp_path / "clips" / label).mkdir(parents=True)
        shutil.copy(DEMO / name, tmp_path / "clips" / label / name)
    win = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "clips"))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)  # fmt: skip
    with qtbot.waitSignal(win.session.manifest_changed, timeout=30_000):
        win.dropEvent(event)
    manifest = win.session.manifest
    assert manifest.path == (tmp_path / "clips" / "cuelab-manifest.csv").resolve()
    assert sorted(row.get("label") for row in manifest.rows) == ["angry", "sad"]
    qtbot.waitUntil(lambda: win.session.clip_path is not None, timeout=30_000)  # first clip open


def test_quitting_during_a_run_asks_first(make_window, qtbot, tmp_path, small_manifest):
    from tests.ui.test_batch_panel import RUN_TIMEOUT_MS, configure, window_on

    win = window_on(make_window, qtbot, small_manifest)
    panel = win.batch_panel
    configure(panel, tmp_path / "run", ("audio-only", "correct"))
    reached, proceed = threading.Event(), threading.Event()

    def hold(_run_id, info):
        if info.message != "features" and info.done == 1 and not reached.is_set():
            reached.set()
            proceed.wait(30)

    panel.relay.progress.connect(hold, Qt.ConnectionType.DirectConnection)
    panel.start_button.click()
    qtbot.waitUntil(reached.is_set, timeout=RUN_TIMEOUT_MS)
    asked = []

    def answer(button: QMessageBox.StandardButton) -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            asked.append(box.text())
            box.button(button).click()

    QTimer.singleShot(200, lambda: answer(QMessageBox.StandardButton.No))
    win.close()
    assert asked and "batch run is in progress" in asked[0]
    assert win.isVisible()  # "No": the window stays, the run goes on
    panel.cancel_button.click()
    proceed.set()
    qtbot.waitUntil(lambda: panel.state == "cancelled", timeout=RUN_TIMEOUT_MS)
    panel.relay.progress.disconnect(hold)


def test_a_configured_label_set_is_used_and_remembered_per_manifest(
    qtbot, tmp_path, small_manifest
):
    import shutil

    from cuelab.core.datasets.annotations import load_annotations

    settings = _settings(tmp_path)
    settings.setValue("annotation/annotator", "default")  # not asked in this test
    win = _window(qtbot, settings)
    s, panel = win.session, win.dataset_panel
    with qtbot.waitSignal(s.clip_changed, timeout=30_000):
        s.open_manifest(small_manifest)
    assert panel.label_set() == ["angry", "happy", "neutral", "sad"]  # the manifest's
    win.set_label_set(["calm", "tense", "calm"])
    assert panel.label_set() == ["calm", "tense"]
    assert [a.text() for a in win.label_actions if a.isVisible()] == [
        "Label 1: calm",
        "Label 2: tense",
    ]
    panel.label_by_number(2)
    assert load_annotations(small_manifest)["spk01_f_angry_01.flac"].annotator_label == "tense"
    win.close()
    # Another manifest keeps its own labels; the first one gets its set back.
    other = tmp_path / "other"
    shutil.copytree(small_manifest.parent, other)
    again = _window(qtbot, _settings(tmp_path))
    s2, p2 = again.session, again.dataset_panel
    with qtbot.waitSignal(s2.manifest_changed, timeout=30_000):
        s2.open_manifest(other / small_manifest.name)
    assert p2.label_set() == ["angry", "happy", "neutral", "sad"]
    with qtbot.waitSignal(s2.manifest_changed, timeout=30_000):
        s2.open_manifest(small_manifest)
    assert p2.label_set() == ["calm", "tense"]
    again.set_label_set(None)  # back to the manifest's labels
    assert p2.label_set() == ["angry", "happy", "neutral", "sad"]
    again.close()
