"""Annotator labels and notes: the Qt-free sidecar module and the dataset panel."""

from __future__ import annotations

import csv

from cuelab.ui.annotations import load_annotations, save_annotation, sidecar_path


def test_sidecar_round_trip_and_atomic_rewrite(tmp_path):
    manifest = tmp_path / "set.csv"
    manifest.write_text("path,label\na.wav,sad\nb.wav,angry\n", encoding="utf-8")
    assert sidecar_path(manifest) == tmp_path / "set.annotations.csv"
    assert load_annotations(manifest) == {}
    save_annotation(manifest, "a.wav", "neutral", 'sounds "flat", maybe tired')
    save_annotation(manifest, "b.wav", "", "check, the start is clipped\nsecond line")
    got = load_annotations(manifest)
    assert got["a.wav"].annotator_label == "neutral"
    assert got["a.wav"].note == 'sounds "flat", maybe tired'
    assert got["b.wav"].note == "check, the start is clipped\nsecond line"
    assert got["a.wav"].updated.endswith("+00:00")
    # Clearing both fields removes the row; no temporary files are left behind.
    save_annotation(manifest, "a.wav", "", "")
    assert set(load_annotations(manifest)) == {"b.wav"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set.annotations.csv", "set.csv"]
    with sidecar_path(manifest).open(newline="", encoding="utf-8") as fh:
        assert next(csv.reader(fh)) == ["path", "annotator_label", "note", "updated"]


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
