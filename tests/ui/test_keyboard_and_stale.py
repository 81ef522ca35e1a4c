"""The highlighted row is the open clip; nothing stale is shown or used as current."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import Qt

from cuelab.core.cues.interventions import ablate, conflict
from cuelab.core.cues.tokens import VOCAB
from cuelab.core.datasets.annotations import load_annotations


def test_down_and_enter_open_the_highlighted_row_and_annotate_it(ready_window, qtbot):
    win = ready_window
    s, panel = win.session, win.dataset_panel
    rows = s.manifest.rows
    panel.table.setFocus()
    qtbot.waitUntil(lambda: panel.table.hasFocus(), timeout=5000)
    with qtbot.waitSignal(s.clip_changed, timeout=30_000):
        qtbot.keyClick(panel.table, Qt.Key.Key_Down)
        # At once, before the audio is decoded, the box edits the highlighted row.
        assert panel.table.currentRow() == 1
        assert panel.current_row().path == rows[1].path
        assert rows[1].utt_id in panel.annotation_box.title()
    assert s.clip_name == rows[1].path.name and s.row.path == rows[1].path
    qtbot.keyClick(panel.table, Qt.Key.Key_2)  # label "happy" goes to the highlighted clip
    saved = load_annotations(s.manifest.path)
    assert set(saved) == {rows[1].rel_path} and saved[rows[1].rel_path].annotator_label == "happy"
    # Two quick Downs then Enter: the last highlighted row is the one open.
    with qtbot.waitSignal(s.clip_changed, timeout=30_000):
        qtbot.keyClick(panel.table, Qt.Key.Key_Down)
        qtbot.keyClick(panel.table, Qt.Key.Key_Down)
        qtbot.keyClick(panel.table, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: s.clip_name == rows[3].path.name, timeout=30_000)
    assert panel.table.currentRow() == 3 and panel.current_row().path == rows[3].path
    # A clip from outside the manifest (a mix) leaves no row highlighted and no box to edit.
    with qtbot.waitSignal(s.clip_changed, timeout=10_000):
        s.set_audio(np.zeros(16000, dtype=np.float32), 16000, "a mix")
    assert panel.table.currentRow() == -1 and not panel.annotation_box.isEnabled()


def test_chips_are_greyed_while_a_new_clip_is_analysed(ready_window, qtbot):
    win = ready_window
    s, panel = win.session, win.concepts_panel
    before = s.tokens
    warned = []
    win.notifier.posted.connect(lambda lev, msg: lev == "warning" and warned.append(msg))
    seen = {}

    def while_analysing() -> None:  # runs after the panels' own slots, before the features
        seen.update(
            analysing=panel.analysing,
            chip=panel.chips["ENERGY"].isEnabled(),
            bar=panel.bars["PITCH"].isEnabled(),
            state=panel.state_label.text(),
            top=win.predictions_panel.top_label.text(),
        )
        # An edit now would go to the old clip's tokens and vanish: it is refused, with a word.
        s.set_tokens(before.without("PITCH"))

    s.analysis_started.connect(while_analysing)
    with qtbot.waitSignal(s.analysis_changed, timeout=30_000):
        s.open_row(s.manifest.rows[2])
    s.analysis_started.disconnect(while_analysing)
    assert seen["analysing"] and not seen["chip"] and not seen["bar"]
    assert seen["state"] == "analysing…" and "analysing" in seen["top"]
    assert warned and "being analysed" in warned[0]
    assert not panel.analysing and panel.chips["ENERGY"].isEnabled()
    assert panel.bars["PITCH"].isEnabled() and panel.state_label.text() == ""
    assert s.tokens == s.aligned  # the new clip's own tokens, nothing dropped silently


def test_a_short_selection_says_it_analyses_the_whole_clip(ready_window, qtbot):
    view, s = ready_window.clip_view, ready_window.session
    view.set_selection(0.5, 0.6)
    assert s.region is None
    assert "shorter than 0.25 s: analysing the whole clip" in view.selection_note.text()
    with qtbot.waitSignal(s.analysis_changed, timeout=20_000):
        view.set_selection(0.2, 0.9)
    assert view.selection_note.text() == ""
    assert "selection 0.200–0.900 s (0.700 s)" in view.readout.text()
    assert view.spec_region.isVisible()  # the selection is drawn on the spectrogram too


def test_mixer_mixes_only_when_used_and_apply_waits_for_the_new_mix(ready_window, qtbot):
    win = ready_window
    mixer, s = win.mixer_panel, win.session
    slot = s.slots["mixer"]
    assert slot.generation == 0  # clips were opened, the Mixer was never shown
    with qtbot.waitSignal(s.clip_changed, timeout=20_000):
        s.open_row(s.manifest.rows[1])
    qtbot.wait(400)  # longer than the mixer's debounce
    assert slot.generation == 0 and mixer.mix is None
    win.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: mixer.apply_button.isEnabled(), timeout=20_000)
    assert slot.generation == 1
    mixer.snr_slider.setValue(mixer.snr_slider.value() + 5)  # the mix is now stale
    assert not mixer.apply_button.isEnabled() and mixer.mix is None
    qtbot.waitUntil(lambda: mixer.apply_button.isEnabled(), timeout=20_000)
    assert mixer.mix.result.requested_snr_db == float(mixer.snr_slider.value())


def test_interventions_act_on_the_clips_own_tokens_as_in_a_batch_run(ready_window, qtbot):
    s, panel = ready_window.session, ready_window.concepts_panel
    aligned = s.aligned
    other = next(t for t in VOCAB["ENERGY"] if t != aligned["ENERGY"])
    panel.choose("ENERGY", other)  # an edit first
    panel.conflict_button.click()
    assert s.tokens == conflict(aligned)  # not conflict of the edited set
    panel.ablate_combo.setCurrentText("PITCH")
    panel.ablate_button.click()
    assert s.tokens == ablate(aligned, "PITCH")  # the batch run's ablate:PITCH
    assert "clip's own tokens" in panel.conflict_button.toolTip()
    # Undo walks back through the edits, redo forward.
    panel.undo()
    assert s.tokens == conflict(aligned)
    panel.undo()
    assert s.tokens["ENERGY"] == other
    panel.redo()
    assert s.tokens == conflict(aligned)


def test_an_undefined_score_is_marked_at_its_chip(make_window, qtbot):
    win = make_window()
    s, panel = win.session, win.concepts_panel
    noise = 0.05 * np.random.default_rng(3).standard_normal(1600).astype(np.float32)  # 0.1 s
    with qtbot.waitSignal(s.analysis_changed, timeout=30_000):
        s.set_audio(noise, 16000, "noise.wav")
    assert math.isnan(s.concepts.scores["PITCH"])
    chip = panel.chips["PITCH"]
    assert chip.undefined and chip.text() == f"{s.aligned['PITCH']} ?"
    assert "undefined" in chip.toolTip() and "fallback" in chip.toolTip()
    assert not panel.chips["ENERGY"].undefined


def test_sorted_and_filtered_table_still_opens_and_annotates_the_right_clip(ready_window, qtbot):
    from cuelab.ui.dataset_panel import _AGREE

    win = ready_window
    s, panel = win.session, win.dataset_panel
    table = panel.table
    assert [table.item(i, 0).text() for i in range(4)] == [r.utt_id for r in s.manifest.rows]
    assert table.item(0, _AGREE).text() in ("✓", "✗")  # the first clip has a prediction
    table.sortItems(1, Qt.SortOrder.DescendingOrder)  # by label, "sad" first
    assert table.item(0, 1).text() == "sad"
    with qtbot.waitSignal(s.clip_changed, timeout=30_000):
        panel._on_click(0)
    assert s.clip_name == "spk01_f_sad_01.flac" and table.currentRow() == 0
    table.setFocus()
    qtbot.waitUntil(table.hasFocus, timeout=5000)
    qtbot.keyClick(table, Qt.Key.Key_Return)  # Enter on a sorted row: the same clip
    qtbot.wait(300)
    assert s.clip_name == "spk01_f_sad_01.flac"
    panel.label_by_number(3)  # "neutral"
    saved = load_annotations(s.manifest.path)
    assert saved["spk01_f_sad_01.flac"].annotator_label == "neutral"
    assert table.item(0, 4).text() == "neutral"  # in the sad clip's (sorted) row
    panel.filter_edit.setText("spk04")
    shown = [table.item(i, 0).text() for i in range(4) if not table.isRowHidden(i)]
    assert sorted(shown) == ["spk04_m_happy_01", "spk04_m_neutral_01"]
    with qtbot.waitSignal(s.clip_changed, timeout=30_000):
        panel.step(1)  # the next shown row, in table order
    assert s.clip_name.startswith("spk04_m_")


def test_a_note_typed_before_another_manifest_opens_stays_with_its_own(
    ready_window, qtbot, small_manifest, tmp_path
):
    """The pending note is written into the sidecar of the manifest it was typed for."""
    import shutil

    win = ready_window
    s, panel = win.session, win.dataset_panel
    other = tmp_path / "other"
    shutil.copytree(small_manifest.parent, other)
    first = s.manifest.path
    qtbot.keyClicks(panel.note_edit, "heard a door")  # debounced: not written yet
    assert load_annotations(s.manifest.path) == {}
    with qtbot.waitSignal(s.manifest_changed, timeout=30_000):
        s.open_manifest(other / small_manifest.name)
    mine = load_annotations(first)
    assert [a.note for a in mine.values()] == ["heard a door"]
    assert load_annotations(other / small_manifest.name) == {}


def test_a_region_change_drops_the_prediction_under_way(ready_window, qtbot):
    """An answer computed for the old region never shows once the region changed."""
    win = ready_window
    s = win.session
    shown = []
    s.prediction_changed.connect(lambda: shown.append((s.region, s.features is not None)))
    s.set_tokens(conflict(s.concepts.tokens))  # a prediction is now debounced or running
    with qtbot.waitSignal(s.prediction_changed, timeout=30_000):
        assert s.set_region((0.2, 0.9))
        assert s.features is None and s.analysing  # nothing of the old region is kept
    qtbot.wait(300)  # a stale answer would arrive now, after the debounce
    assert shown and all(region == (0.2, 0.9) and has for region, has in shown)


def test_opening_a_run_during_a_batch_run_is_refused(ready_window, qtbot, tmp_path):
    win = ready_window
    panel = win.batch_panel
    panel.state = "running"  # as set by start(): the live run keeps the panel
    errors = []
    win.session.error.connect(errors.append)
    try:
        panel.open_run(tmp_path)
        assert panel.state == "running"
        assert errors and "a batch run is in progress" in errors[-1]
    finally:
        panel.state = "idle"  # no run to ask about when the window closes


def test_a_clip_that_fails_to_open_is_the_open_clip_not_the_previous_one(
    ready_window, qtbot, small_manifest
):
    """The highlight, the annotation box and the clip view agree on the broken row; the
    previous clip's audio is gone, so it cannot be heard as if it were this one."""
    win = ready_window
    s, panel, view = win.session, win.dataset_panel, win.clip_view
    rows = s.manifest.rows
    rows[1].path.write_bytes(b"not audio at all" * 100)
    with qtbot.waitSignal(s.clip_failed, timeout=30_000):
        panel.table.setFocus()
        qtbot.keyClick(panel.table, Qt.Key.Key_Down)
    assert panel.table.currentRow() == 1 and panel.current_row().path == rows[1].path
    assert s.row.path == rows[1].path and s.audio is None and s.concepts is None
    assert "still showing" not in view.error_label.text()
    assert rows[1].path.name in view.error_label.text()
    # Down again goes on to the next clip, which opens.
    with qtbot.waitSignal(s.clip_changed, timeout=30_000):
        qtbot.keyClick(panel.table, Qt.Key.Key_Down)
    qtbot.waitUntil(lambda: s.audio is not None, timeout=30_000)
    assert s.row.path == rows[2].path and panel.table.currentRow() == 2
