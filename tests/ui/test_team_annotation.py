"""Annotating as a team in the window: who you are, your progress, regions, live agreement."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication, QInputDialog

from cuelab.core.datasets.annotations import (
    load_annotations,
    load_annotator,
    save_annotation,
    sidecar_path,
)
from cuelab.core.metrics.agreement import krippendorff_alpha

CLIPS = [
    "spk01_f_angry_01.flac",
    "spk01_f_sad_01.flac",
    "spk04_m_happy_01.flac",
    "spk04_m_neutral_01.flac",
]


def _settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "cuelab-test.ini"), QSettings.Format.IniFormat)


def _window(qtbot, settings: QSettings | None):
    from cuelab.ui.main_window import MainWindow

    win = MainWindow(playback=False, settings=settings)
    win.notifier.dialogs_enabled = False
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    return win


def _answer_dialog(name: str) -> list[str]:
    """Type ``name`` into the annotator dialog when it shows (a real QInputDialog)."""
    seen: list[str] = []

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QInputDialog):
            QTimer.singleShot(20, answer)
            return
        seen.append(dialog.labelText())
        dialog.setTextValue(name)
        dialog.accept()

    QTimer.singleShot(20, answer)
    return seen


def _open(qtbot, win, manifest: Path) -> None:
    with qtbot.waitSignal(win.session.clip_changed, timeout=30_000):
        win.session.open_manifest(manifest)


def test_annotator_is_asked_once_and_remembered(qtbot, tmp_path, small_manifest):
    win = _window(qtbot, _settings(tmp_path))
    panel = win.dataset_panel
    _open(qtbot, win, small_manifest)
    assert panel.annotator is None
    seen = _answer_dialog("alice")
    panel.label_by_number(4)  # the first label asks who you are
    assert seen and "annotator" in seen[0]
    assert load_annotations(small_manifest, "alice")[CLIPS[0]].label == "sad"
    assert not sidecar_path(small_manifest, "default").exists()
    assert panel.annotator_label.text() == "annotator: alice"
    win.close()
    again = _window(qtbot, _settings(tmp_path))
    assert again.dataset_panel.annotator == "alice"  # remembered: not asked again
    _open(qtbot, again, small_manifest)
    assert again.dataset_panel.table.item(0, 4).text() == "sad"


def test_reopening_returns_to_the_last_clip_you_labelled(qtbot, tmp_path, small_manifest):
    settings = _settings(tmp_path)
    settings.setValue("annotation/annotator", "alice")
    win = _window(qtbot, settings)
    s, panel = win.session, win.dataset_panel
    _open(qtbot, win, small_manifest)
    with qtbot.waitSignal(s.clip_changed, timeout=30_000):
        panel.table.setCurrentCell(2, 0)
    panel.label_by_number(1)
    win.close()
    again = _window(qtbot, _settings(tmp_path))
    _open(qtbot, again, small_manifest)
    assert again.session.clip_name == CLIPS[2]
    assert again.dataset_panel.table.currentRow() == 2


def test_notes_progress_and_next_unannotated_count_only_your_labels(
    qtbot, tmp_path, small_manifest
):
    for clip in CLIPS[1:3]:  # Bob labelled clips 2 and 3 already
        save_annotation(small_manifest, clip, "happy", "bob's", annotator="bob")
    settings = _settings(tmp_path)
    settings.setValue("annotation/annotator", "alice")
    win = _window(qtbot, settings)
    s, panel = win.session, win.dataset_panel
    _open(qtbot, win, small_manifest)
    assert panel.table.item(1, 4).text() == "" and panel.table.item(1, 5).text() == ""
    assert (panel.progress.value(), panel.progress.maximum()) == (0, 4)
    panel.label_combo.setCurrentText("angry")
    qtbot.keyClicks(panel.note_edit, "tense onset")
    panel.flush()
    assert panel.table.item(0, 5).text() == "tense onset"  # the notes column
    assert panel.progress.value() == 1 and panel.progress.text() == "your labels 1 / 4"
    assert panel.counter_label.text() == "annotated 1 / 4"
    with qtbot.waitSignal(s.clip_changed, timeout=30_000):
        panel.next_unannotated()  # Bob's labels on clip 2 do not count
    assert s.clip_name == CLIPS[1]


def test_a_region_of_the_clip_gets_its_own_label(qtbot, tmp_path, small_manifest):
    win = _window(qtbot, None)  # no settings: annotates as "default"
    panel = win.dataset_panel
    _open(qtbot, win, small_manifest)
    assert not panel.region_box.isEnabled()
    panel.label_by_number(1)  # the whole clip: angry
    win.clip_view.set_selection(0.2, 0.8)
    assert panel.region_box.isEnabled() and "0.200–0.800 s" in panel.region_box.text()
    panel.region_box.setChecked(True)
    assert panel.label_combo.currentText() == ""  # the region has no label yet
    panel.label_by_number(4)
    got = {(a.start, a.end): a.label for a in load_annotator(small_manifest, "default")}
    assert got == {(None, None): "angry", (0.2, 0.8): "sad"}
    assert "region of" in panel.annotation_box.title()
    panel.region_box.setChecked(False)
    assert panel.label_combo.currentText() == "angry"
    assert panel.table.item(0, 4).text() == "angry"  # the table shows whole-clip labels


@pytest.fixture
def two_annotators(small_manifest: Path) -> Path:
    bob = ["angry", "sad", "angry", "neutral"]
    for clip, label in zip(CLIPS, bob, strict=True):
        save_annotation(small_manifest, clip, label, "", annotator="bob")
    return small_manifest


def test_agreement_tab_is_live_and_drills_down(qtbot, tmp_path, two_annotators):
    settings = _settings(tmp_path)
    settings.setValue("annotation/annotator", "alice")
    win = _window(qtbot, settings)
    s, panel, agree = win.session, win.dataset_panel, win.agreement_panel
    _open(qtbot, win, two_annotators)
    qtbot.waitUntil(lambda: agree.result is not None, timeout=10_000)
    assert "bob only" in agree.summary.text()
    alice = ["angry", "sad", "happy", "neutral"]
    for i, label in enumerate(alice):
        if i > 0:  # the first clip is open already
            with qtbot.waitSignal(s.clip_changed, timeout=30_000):
                panel.table.setCurrentCell(i, 0)
        panel.label_by_number(panel.label_set().index(label) + 1)
    want = krippendorff_alpha([[a, b] for a, b in
                               zip(alice, ["angry", "sad", "angry", "neutral"], strict=True)])  # fmt: skip
    qtbot.waitUntil(
        lambda: agree.result is not None and len(agree.result.annotators) == 2
        and agree.result.n_units == 4, timeout=10_000,
    )  # fmt: skip
    assert agree.result.alpha == pytest.approx(want)
    assert f"{want:.3f}" in agree.summary.text()
    # The kappa cell of the pair drills down to the clip they disagree on.
    t = agree.kappa_table
    assert t.item(0, 1).text().endswith("(n=4)")
    with qtbot.waitSignal(agree.drill_down) as blocker:
        t.cellClicked.emit(0, 1)
    assert blocker.args[0] == ["spk04_m_happy_01"]
    assert win.tabs.currentIndex() == 0 and panel.subset_label.text().startswith("1 clips")
    shown = [panel.table.item(i, 0).text() for i in range(4) if not panel.table.isRowHidden(i)]
    assert shown == ["spk04_m_happy_01"]
    # The confusion cell alice=happy, bob=angry holds that clip too.
    labels = [
        agree.confusion.verticalHeaderItem(i).text() for i in range(agree.confusion.rowCount())
    ]
    i = labels.index("alice: happy")
    j = [agree.confusion.horizontalHeaderItem(k).text()
         for k in range(agree.confusion.columnCount())].index("angry")  # fmt: skip
    assert agree.confusion.item(i, j).text() == "1"


def test_a_sidecar_written_by_someone_else_shows_up_live(qtbot, tmp_path, small_manifest):
    settings = _settings(tmp_path)
    settings.setValue("annotation/annotator", "alice")
    win = _window(qtbot, settings)
    agree = win.agreement_panel
    _open(qtbot, win, small_manifest)
    win.dataset_panel.label_by_number(1)
    qtbot.waitUntil(lambda: agree.result is not None and agree.result.annotators == ["alice"])
    # Another program (a merge, a colleague on a shared folder) writes Bob's sidecar.
    save_annotation(small_manifest, CLIPS[0], "sad", "", annotator="bob")
    qtbot.waitUntil(
        lambda: agree.result is not None and agree.result.annotators == ["alice", "bob"],
        timeout=10_000,
    )
    assert agree.result.n_units == 1
    assert win.dataset_panel.team["bob"][0].label == "sad"
