"""Annotator labels and notes in the dataset panel (the sidecar itself: tests/core)."""

from __future__ import annotations

from cuelab.core.datasets.annotations import load_annotations, sidecar_path


def test_panel_saves_on_edit_and_reloads(make_window, qtbot, small_manifest):
    win = make_window()
    s, panel = win.session, win.dataset_panel
    with qtbot.waitSignal(s.clip_changed, timeout=30_000):
        s.open_manifest(small_manifest)
    assert panel.annotation_box.isEnabled()
    panel.label_combo.setCurrentText("sad")  # saved at once
    side = sidecar_path(small_manifest)
    assert load_annotations(small_manifest)["spk01_f_angry_01.flac"].annotator_label == "sad"
    qtbot.keyClicks(panel.note_edit, "sounds resigned")
    qtbot.waitUntil(
        lambda: (
            side.exists()
            and load_annotations(small_manifest)["spk01_f_angry_01.flac"].note == "sounds resigned"
        ),
        timeout=5000,
    )
    assert panel.table.item(0, 4).text() == "sad"

    # A new window on the same manifest shows the annotation again.
    win2 = make_window()
    with qtbot.waitSignal(win2.session.clip_changed, timeout=30_000):
        win2.session.open_manifest(small_manifest)
    p2 = win2.dataset_panel
    assert p2.label_combo.currentText() == "sad"
    assert p2.note_edit.text() == "sounds resigned"
    assert p2.table.item(0, 4).text() == "sad"
