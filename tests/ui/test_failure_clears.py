"""Nothing of the previous clip stays on show after a clip fails (issue 26, must-fix 2)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication


def test_a_row_that_fails_clears_chips_bars_prediction_and_cursor(ready_window, qtbot):
    win = ready_window
    s, panel, view = win.session, win.dataset_panel, win.clip_view
    concepts, preds = win.concepts_panel, win.predictions_panel
    before_tokens = concepts.text_edit.text()
    assert before_tokens and preds.top_label.text().startswith("Top")
    view.cursor_text = "cursor 1.234 s · 500 Hz"  # as a mouse move over the plot leaves it
    view._show_readout()
    rows = s.manifest.rows
    rows[1].path.write_bytes(b"not audio at all" * 100)
    with qtbot.waitSignal(s.clip_failed, timeout=30_000):
        panel.table.setFocus()
        qtbot.keyClick(panel.table, Qt.Key.Key_Down)
    # Concepts: no token text, no chip or bar of the previous clip that can still be used.
    assert concepts.text_edit.text() == ""
    assert not any(w.isEnabled() for w in concepts.edit_widgets)
    assert not any(bar.isEnabled() for bar in concepts.bars.values())
    assert concepts.error_label.isVisible() and rows[1].path.name in concepts.error_label.text()
    assert s.tokens is None
    QGuiApplication.clipboard().setText("sentinel")  # an earlier test may have copied a prompt
    concepts.copy_prompt()  # nothing to copy: the old prompt must not reach the clipboard
    assert before_tokens not in QGuiApplication.clipboard().text()
    # Predictions: no top label, bars or rows of the previous clip.
    assert "angry" not in preds.top_label.text()
    assert preds.top_label.text().startswith("No prediction: the clip did not open")
    assert preds.table.rowCount() == 0 and not preds.pin_button.isEnabled()
    # The cursor readout of the previous clip is gone.
    assert "1.234" not in view.readout.text()


def test_an_undecodable_background_is_said_in_the_mixer(ready_window, qtbot, tmp_path):
    win = ready_window
    mixer = win.mixer_panel
    bad = tmp_path / "broken-background.wav"
    bad.write_bytes(b"RIFF....WAVEnot really" * 50)
    win.tabs.setCurrentIndex(1)  # the Mixer is shown: it mixes the open clip
    mixer.add_background(bad)
    qtbot.waitUntil(lambda: mixer.info_label.text().startswith("No mix:"), timeout=30_000)
    assert "broken-background.wav" in mixer.info_label.text()
    assert not mixer.apply_button.isEnabled() and mixer.mix is None
    # Back to a good background: it mixes again.
    mixer.background_combo.setCurrentIndex(0)
    qtbot.waitUntil(lambda: mixer.apply_button.isEnabled(), timeout=30_000)
    assert "achieved SNR" in mixer.info_label.text()
