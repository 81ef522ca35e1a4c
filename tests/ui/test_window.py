"""The window opens on data, every panel shows it, and edits reach the model."""

from __future__ import annotations

import sys

import numpy as np

from cuelab.core.cues.tokens import CONCEPTS, VOCAB


def test_every_panel_shows_the_first_clip(ready_window):
    win = ready_window
    s = win.session
    assert s.clip_name == "spk01_f_angry_01.flac"
    # Waveform and spectrogram.
    _xs, ys = win.clip_view.wave_curve.getOriginalDataset()
    assert ys.size == s.audio.size
    shown = win.clip_view.wave_curve.getData()[1]
    assert 0 < shown.size < ys.size  # peak downsampling draws fewer points than samples
    assert win.clip_view.spec is not None and win.clip_view.spec.db.shape[0] > 10
    assert win.clip_view.spec_image.image is not None
    # Concept bars and chips.
    for concept in CONCEPTS:
        chip = win.concepts_panel.chips[concept]
        assert chip.token in VOCAB[concept]
        assert not chip.edited
    assert np.isfinite(win.concepts_panel.bars["ENERGY"].score)
    assert win.concepts_panel.text_edit.text() == s.tokens.text()
    # Predictions: one row per label, probabilities summing to one.
    table = win.predictions_panel.table
    assert table.rowCount() == len(s.labels) == 4
    pred = s.prediction
    assert abs(sum(pred.audio_only.values()) - 1) < 1e-6
    assert abs(sum(pred.with_tokens.values()) - 1) < 1e-6
    assert pred.top_audio in win.predictions_panel.top_label.text()
    # Model and dataset panels.
    assert "reference" in win.model_panel.state_label.text()
    assert "RSS" in win.model_panel.memory_label.text()
    assert win.dataset_panel.table.rowCount() == 4
    assert win.dataset_panel.table.item(0, 3).text() == pred.top_tokens


def test_editing_a_chip_changes_text_and_prediction(ready_window, qtbot):
    win = ready_window
    s = win.session
    before = s.prediction
    concept = "ENERGY"
    old = s.tokens[concept]
    new = VOCAB[concept][0] if old != VOCAB[concept][0] else VOCAB[concept][-1]
    with qtbot.waitSignal(s.prediction_changed, timeout=10_000) as blocker:
        win.concepts_panel.choose(concept, new)
        assert f"{concept}={new}" in win.concepts_panel.text_edit.text()
        assert win.concepts_panel.chips[concept].edited
    after = blocker.args[0]
    assert after.token_text == s.tokens.text() and f"{concept}={new}" in after.token_text
    assert after.audio_only == before.audio_only  # the audio did not change
    diff = max(abs(after.with_tokens[k] - before.with_tokens[k]) for k in after.labels)
    assert diff > 1e-3
    assert "ms after the edit" in win.predictions_panel.latency_label.text()
    # Reset brings back the clip's own tokens and unmarks the chip.
    with qtbot.waitSignal(s.prediction_changed, timeout=10_000):
        win.concepts_panel.reset_button.click()
    assert not win.concepts_panel.chips[concept].edited
    assert s.tokens == s.aligned


def test_interventions_buttons(ready_window, qtbot):
    win = ready_window
    s, panel = win.session, win.concepts_panel
    aligned = s.tokens
    panel.conflict_button.click()
    assert s.tokens != aligned and len(s.tokens) == 6
    panel.ablate_combo.setCurrentText("PITCH")
    panel.ablate_button.click()
    assert "PITCH" not in s.tokens and "PITCH=" not in panel.text_edit.text()
    assert panel.chips["PITCH"].text() == "(dropped) ✎"
    panel.p_slider.setValue(100)
    changed = []
    for _ in range(40):  # corrupt:1 as in a batch run: every position redrawn, some come back
        panel.corrupt_button.click()
        assert set(s.tokens) == set(aligned)
        changed += [s.tokens[c] != aligned[c] for c in CONCEPTS]
    assert 0.7 < sum(changed) / len(changed) < 0.9  # 1 - 1/|V|: about 0.8
    with qtbot.waitSignal(s.tokens_changed, timeout=30_000):
        panel.shuffle_button.click()  # tokens of another clip, computed in a worker
    assert "shuffled" in win.statusBar().currentMessage()


def test_selection_reanalyses_part_of_the_clip(ready_window, qtbot):
    win = ready_window
    s = win.session
    full = s.features.duration_s
    with qtbot.waitSignal(s.analysis_changed, timeout=20_000):
        win.clip_view.set_selection(0.2, 0.9)
    assert s.region == (0.2, 0.9)
    assert abs(s.features.duration_s - 0.7) < 0.01 < full - 0.7
    with qtbot.waitSignal(s.prediction_changed, timeout=10_000):
        pass


def test_spectrogram_settings_recompute(ready_window, qtbot):
    view = ready_window.clip_view
    narrow_before = view.spec
    with qtbot.waitSignal(view.spectrogram_drawn, timeout=10_000):
        view.window_spin.setValue(30.0)
    assert view.spec is not narrow_before
    assert view.spec.df < narrow_before.df  # a longer window resolves frequency finer
    with qtbot.waitSignal(view.spectrogram_drawn, timeout=10_000):
        view.range_spin.setValue(40)
    assert view.spec.db.max() - view.spec.db.min() <= 40.0 + 1e-3


def test_playback_disabled_without_a_device(ready_window):
    view = ready_window.clip_view
    if view.player.available:  # a developer machine with speakers
        return
    assert not view.play_button.isEnabled()
    assert view.play_button.toolTip().startswith("Playback")
    view.toggle_play()  # no crash, nothing happens
    assert not view.player.playing


class _RecordingPlayer:
    """Stands in for the sound device: records what would have played."""

    available = True
    playing = False

    def __init__(self) -> None:
        self.played = 0

    def play(self, *_args, **_kwargs) -> None:
        self.played += 1

    def stop(self) -> None:
        pass


def test_space_plays_but_leaves_focused_controls_their_space_key(make_window, qtbot):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    win = make_window()
    win.activateWindow()
    player = _RecordingPlayer()
    win.clip_view.player = player
    win.session.audio = np.zeros(16000, dtype=np.float32)
    win.dataset_panel.table.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is win.dataset_panel.table)
    qtbot.keyClick(win.dataset_panel.table, Qt.Key.Key_Space)
    assert player.played == 1
    win.tabs.setCurrentWidget(win.batch_panel)
    box = win.batch_panel.condition_boxes["shuffle"]
    box.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is box)
    ticked = box.isChecked()
    qtbot.keyClick(box, Qt.Key.Key_Space)
    assert box.isChecked() != ticked  # space ticked the box ...
    assert player.played == 1  # ... and did not start playback


def test_clicking_a_dataset_row_opens_it(ready_window, qtbot):
    win = ready_window
    with qtbot.waitSignal(win.session.prediction_changed, timeout=30_000):
        win.dataset_panel._on_click(2, 0)
    assert win.session.clip_name == "spk04_m_happy_01.flac"
    assert win.session.gender == "m"
    assert win.dataset_panel.table.item(2, 3).text() != ""


def test_window_constructs_without_torch():
    import subprocess

    code = (
        "import sys; from PySide6.QtWidgets import QApplication; app = QApplication([]);"
        "from cuelab.ui.main_window import MainWindow; w = MainWindow(playback=False); w.show();"
        "app.processEvents(); w.close();"
        "print(sorted(m for m in ('torch', 'transformers', 'opensmile') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_pin_a_token_set_as_a_and_compare(ready_window, qtbot):
    win = ready_window
    s, panel = win.session, win.predictions_panel
    a = s.prediction
    panel.pin_button.click()
    assert panel.pinned is a and not panel.table.isColumnHidden(4)
    assert panel.pin_label.text() == f"A: {a.token_text}"
    old = s.tokens["ENERGY"]
    new = VOCAB["ENERGY"][0] if old != VOCAB["ENERGY"][0] else VOCAB["ENERGY"][-1]
    with qtbot.waitSignal(s.prediction_changed, timeout=10_000) as blocker:
        win.concepts_panel.choose("ENERGY", new)
    b = blocker.args[0]
    for i, lab in enumerate(b.labels):
        assert panel.table.item(i, 4).text() == f"{a.with_tokens[lab]:.3f}"
        diff = b.with_tokens[lab] - a.with_tokens[lab]
        assert abs(float(panel.table.item(i, 5).text()) - diff) < 1.5e-3
    # Another part of the clip: A was answered for the whole clip, so it is unpinned.
    with qtbot.waitSignal(s.prediction_changed, timeout=30_000):
        s.set_region((0.2, 0.9))
    assert panel.pinned is None and panel.table.isColumnHidden(4)
    # Another model: Δ vs A would compare models, so A is unpinned.
    panel.pin_button.click()
    assert panel.pinned is s.prediction and panel.pinned.region == (0.2, 0.9)
    with qtbot.waitSignal(s.model_changed, timeout=30_000):
        s.load_model("oracle")
    assert panel.pinned is None
    # Another clip: A belonged to the first one, so it is unpinned.
    panel.pin_button.click()
    with qtbot.waitSignal(s.clip_changed, timeout=30_000):
        s.open_row(s.manifest.rows[1])
    assert panel.pinned is None and panel.table.isColumnHidden(4)


def test_copy_undo_keys_and_the_chip_menu_marks_the_clips_own_token(ready_window, qtbot):
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    win = ready_window
    s, panel = win.session, win.concepts_panel
    chip = panel.chips["PITCH"]
    own = s.aligned["PITCH"]
    assert chip.token_actions[own].text() == f"{own}   (clip's own)"
    assert all(a.text() == t for t, a in chip.token_actions.items() if t != own)
    panel.copy_tokens()
    assert QGuiApplication.clipboard().text() == s.tokens.text()
    panel.copy_prompt()
    prompt = QGuiApplication.clipboard().text()
    assert s.tokens.text() in prompt and len(prompt) > len(s.tokens.text())
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=5000)
    panel.apply_conflict()
    assert s.tokens != s.aligned
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # Edit ▸ Undo
    assert s.tokens == s.aligned
