"""The smaller window defects of issue 26 ("The rest")."""

from __future__ import annotations

import csv

from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from cuelab.core.datasets.annotations import sidecar_path
from cuelab.ui.main_window import DEMO_MANIFEST


def test_drops_are_accepted_as_copy_never_move(make_window, qtbot, small_manifest):
    win = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(small_manifest))])
    both = Qt.DropAction.CopyAction | Qt.DropAction.MoveAction
    # Shift held (or a file manager's default) proposes Move.
    enter = QDragEnterEvent(QPoint(10, 10), both, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.ShiftModifier)  # fmt: skip
    assert enter.proposedAction() == Qt.DropAction.MoveAction
    QApplication.sendEvent(win, enter)
    assert enter.isAccepted() and enter.dropAction() == Qt.DropAction.CopyAction
    drop = QDropEvent(QPoint(10, 10), both, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.ShiftModifier)  # fmt: skip
    with qtbot.waitSignal(win.session.manifest_changed, timeout=30_000):
        QApplication.sendEvent(win, drop)
    assert drop.dropAction() == Qt.DropAction.CopyAction
    assert small_manifest.exists()


def test_recent_drops_a_file_that_failed_and_elides_long_names(make_window, qtbot, tmp_path):
    win = make_window()
    s = win.session
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 8)
    deep.mkdir(parents=True)
    good = deep / "spk01_f_angry_01.flac"
    good.write_bytes((DEMO_MANIFEST.parent / good.name).read_bytes())
    with qtbot.waitSignal(s.clip_changed, timeout=30_000):
        win.open_path(good)
    assert win.recent_files() == [str(good.resolve())]
    action = win.recent_menu.actions()[0]
    assert "…" in action.text() and len(action.text()) < len(str(good))
    assert action.toolTip() == str(good.resolve())
    # The file breaks; opening it from Recent fails, and Recent lets it go.
    good.write_bytes(b"not audio" * 100)
    with qtbot.waitSignal(s.clip_failed, timeout=30_000):
        action.trigger()
    assert win.recent_files() == []
    bad = tmp_path / "never-opened.wav"
    bad.write_text("hello", encoding="utf-8")
    with qtbot.waitSignal(s.clip_failed, timeout=30_000):
        win.open_path(bad)
    assert win.recent_files() == []  # a file that never opened is never offered


def test_a_typed_snr_of_100_db_is_100_db(make_window, qtbot):
    win = make_window()
    spin = win.mixer_panel.snr_spin
    spin.selectAll()
    qtbot.keyClicks(spin, "100")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert spin.value() == 100.0 and win.mixer_panel.snr_db() == 100.0


def test_the_cursor_readout_is_cleared_when_another_clip_opens(ready_window, qtbot):
    win = ready_window
    s, view = win.session, win.clip_view
    view.cursor_text = "cursor 1.234 s · 500 Hz"  # as a mouse move over the plot leaves it
    view._show_readout()
    with qtbot.waitSignal(s.clip_changed, timeout=30_000):
        win.dataset_panel.step(1)
    assert "1.234" not in view.readout.text()


def test_annotating_the_demo_writes_to_the_user_data_folder(
    make_window, qtbot, tmp_path, monkeypatch
):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    win = make_window()
    s, panel = win.session, win.dataset_panel
    with qtbot.waitSignal(s.clip_changed, timeout=30_000):
        win.open_demo(model_spec=None)
    manifest = s.manifest.path
    assert manifest.is_relative_to(tmp_path / "xdg" / "cuelab")
    panel.label_by_number(1)
    assert sidecar_path(manifest, panel.annotator).is_file()  # this annotator's own sidecar
    # the installed package is untouched: no sidecar of anyone beside the bundled manifest
    assert not list(DEMO_MANIFEST.parent.glob(f"{DEMO_MANIFEST.stem}.annotations*"))
    with manifest.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert all((DEMO_MANIFEST.parent / r["path"]).is_file() for r in rows)
    # the table shows the bundled demo's clip ids, not the copy's absolute paths
    from cuelab.core.datasets.manifest import read_manifest

    bundled = read_manifest(DEMO_MANIFEST)
    assert [r.utt_id for r in s.manifest.rows] == [r.utt_id for r in bundled.rows]
    assert not panel.table.item(0, 0).text().startswith("/")


def test_open_folder_without_a_file_manager_shows_and_copies_the_path(
    make_window, qtbot, tmp_path, small_manifest
):
    """The offscreen platform has no file manager, as a bare server has none."""
    from PySide6.QtGui import QGuiApplication

    from cuelab.core.runs import RunConfig, run_eval

    folder = tmp_path / "run"
    run_eval(RunConfig(manifest=str(small_manifest), models=("reference",),
                       conditions=("audio-only",), out=str(folder), bootstrap=10, workers=1))  # fmt: skip
    win = make_window()
    panel = win.batch_panel
    with qtbot.waitSignal(panel.run_finished, timeout=120_000):
        win.open_path(folder)
    QGuiApplication.clipboard().setText("")
    panel.folder_button.click()
    assert str(folder) in panel.eta_label.text() and "No file manager" in panel.eta_label.text()
    assert QGuiApplication.clipboard().text() == str(folder)


def test_the_first_start_frame_fits_the_available_area():
    """At 1366x768 with a 40 px panel, a 37 px title bar must not push the status bar off."""
    from PySide6.QtCore import QMargins, QRect

    from cuelab.ui.main_window import fit_client_rect

    area = QRect(0, 0, 1366, 728)
    margins = QMargins(1, 37, 1, 1)
    client = fit_client_rect(area, margins, QRect(0, 0, 1366, 728))  # the client-sized start
    frame = client.marginsAdded(margins)
    assert area.contains(frame)
    assert (client.width(), client.height()) == (1364, 690)
    small = fit_client_rect(area, margins, QRect(100, 100, 800, 600))
    assert small == QRect(100, 100, 800, 600)  # a window that fits is left alone


def test_the_window_fits_its_frame_on_first_show(qtbot):
    from cuelab.ui.main_window import MainWindow

    win = MainWindow(playback=False)
    win.notifier.dialogs_enabled = False
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    area = win.screen().availableGeometry()  # offscreen: 800x800, a 2 px frame

    def frame_fits_vertically() -> bool:  # (the window's minimum width is over 800 px)
        frame = win.frameGeometry()
        return area.top() <= frame.top() and frame.bottom() <= area.bottom()

    qtbot.waitUntil(frame_fits_vertically, timeout=5000)
    win.close()
