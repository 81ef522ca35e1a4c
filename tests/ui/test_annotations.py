"""Annotator labels and notes in the dataset panel (the sidecar itself: tests/core)."""

from __future__ import annotations

import os
import stat

from PySide6.QtCore import Qt

from cuelab.core.datasets.annotations import load_annotations, sidecar_path


def test_panel_saves_after_a_pause_and_reloads(make_window, qtbot, small_manifest):
    win = make_window()
    s, panel = win.session, win.dataset_panel
    with qtbot.waitSignal(s.clip_changed, timeout=30_000):
        s.open_manifest(small_manifest)
    assert panel.annotation_box.isEnabled()
    side = sidecar_path(small_manifest, "default")
    panel.label_combo.setCurrentText("sad")
    qtbot.keyClicks(panel.note_edit, "sounds resigned")
    # Not rewritten on every keystroke: nothing is on disk until the typing pauses ...
    assert not side.exists()
    assert panel.saved_label.text() == "editing…"
    # ... and then label and note are written together.
    qtbot.waitUntil(lambda: side.exists(), timeout=5000)
    ann = load_annotations(small_manifest)["spk01_f_angry_01.flac"]
    assert (ann.annotator_label, ann.note) == ("sad", "sounds resigned")
    assert panel.table.item(0, 4).text() == "sad"
    assert panel.counter_label.text() == "annotated 1 / 4"

    # A new window on the same manifest shows the annotation again.
    win2 = make_window()
    with qtbot.waitSignal(win2.session.clip_changed, timeout=30_000):
        win2.session.open_manifest(small_manifest)
    p2 = win2.dataset_panel
    assert p2.label_combo.currentText() == "sad"
    assert p2.note_edit.text() == "sounds resigned"
    assert p2.table.item(0, 4).text() == "sad"


def test_sidecar_written_from_the_window_respects_the_umask(make_window, qtbot, small_manifest):
    old = os.umask(0o027)  # not the usual 022: a hard-coded 0644 would not pass
    try:
        win = make_window()
        with qtbot.waitSignal(win.session.clip_changed, timeout=30_000):
            win.session.open_manifest(small_manifest)
        win.dataset_panel.label_by_number(1)  # a key press: saved at once
        side = sidecar_path(small_manifest, "default")
        assert stat.S_IMODE(side.stat().st_mode) == 0o640
    finally:
        os.umask(old)


def test_number_keys_label_and_next_unannotated(make_window, qtbot, small_manifest):
    win = make_window()
    s, panel = win.session, win.dataset_panel
    with qtbot.waitSignal(s.clip_changed, timeout=30_000):
        s.open_manifest(small_manifest)
    assert panel.label_set() == ["angry", "happy", "neutral", "sad"]
    panel.table.setFocus()
    qtbot.keyClick(panel.table, Qt.Key.Key_4)  # "sad" for the first clip, written at once
    assert load_annotations(small_manifest)["spk01_f_angry_01.flac"].annotator_label == "sad"
    assert panel.counter_label.text() == "annotated 1 / 4"
    # The Annotate menu lists the label keys.
    texts = [a.text() for a in win.label_actions if a.isVisible()]
    assert texts == ["Label 1: angry", "Label 2: happy", "Label 3: neutral", "Label 4: sad"]
    # Label the third clip too; "next unannotated" from the first skips the first and third.
    with qtbot.waitSignal(s.clip_changed, timeout=30_000):
        panel.table.setCurrentCell(2, 0)
    qtbot.keyClick(panel.table, Qt.Key.Key_2)
    with qtbot.waitSignal(s.clip_changed, timeout=30_000):
        panel.table.setCurrentCell(0, 0)
    with qtbot.waitSignal(s.clip_changed, timeout=30_000):
        panel.next_unannotated()
    assert panel.table.currentRow() == 1 and s.clip_name == "spk01_f_sad_01.flac"
    with qtbot.waitSignal(s.clip_changed, timeout=30_000):
        panel.next_unannotated()
    assert panel.table.currentRow() == 3 and s.clip_name == "spk04_m_neutral_01.flac"
    assert panel.counter_label.text() == "annotated 2 / 4"
