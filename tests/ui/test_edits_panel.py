"""The Audio edits panel: off-thread edits, newest request wins, token source, A/B, sweep."""

from __future__ import annotations

import numpy as np


def _open_edits(win, qtbot):
    panel = win.edits_panel
    win.tabs.setCurrentIndex(win.tabs.indexOf(panel.parentWidget().parentWidget()))
    qtbot.waitUntil(lambda: panel.isVisible(), timeout=5_000)
    return panel


def test_pitch_slider_edits_the_audio_and_moves_pitch(ready_window, qtbot):
    win = ready_window
    panel = _open_edits(win, qtbot)
    s = win.session
    with qtbot.waitSignal(panel.preview_ready, timeout=60_000):
        panel.set_amount("pitch", 4.0)
    qtbot.waitUntil(lambda: panel.preview.edit == "pitch=+4st", timeout=60_000)
    p = panel.preview
    assert p.audio.size == s.segment().size and not np.allclose(p.audio, s.segment(), atol=1e-3)
    assert p.after.scores["PITCH"] > p.before.scores["PITCH"] + 0.1
    assert p.probs is not None and abs(sum(p.probs.values()) - 1) < 1e-4
    assert "Prediction (edited audio" in panel.prediction_label.text()
    assert p.tokens == p.after.tokens.text()  # tokens from the edited audio
    assert "pitch=+4st" in panel.edit_line.text()
    # the audio channel alone: the same edited audio, the original clip's tokens
    with qtbot.waitSignal(panel.preview_ready, timeout=60_000):
        panel.source_combo.setCurrentIndex(1)
    qtbot.waitUntil(lambda: panel.preview.token_source == "original", timeout=60_000)
    assert panel.preview.tokens == s.tokens.text()
    assert np.array_equal(panel.preview.audio, p.audio)  # the reused analysis edits alike


def test_a_newer_request_drops_the_older(ready_window, qtbot):
    win = ready_window
    panel = _open_edits(win, qtbot)
    qtbot.waitUntil(lambda: panel.preview is not None, timeout=60_000)
    shown = []
    panel.preview_ready.connect(lambda p: shown.append(p.edit))
    for amount in (1.0, 2.0, 3.0):
        panel.set_amount("pitch", amount)
        panel.request()  # straight past the debounce: three jobs in flight
    panel.set_amount("tempo", 1.25)
    qtbot.waitUntil(lambda: panel.preview.edit == "pitch=+3st,tempo=1.25", timeout=60_000)
    qtbot.wait(300)
    assert shown[-1] == "pitch=+3st,tempo=1.25"
    assert "pitch=+1st" not in shown and "pitch=+2st" not in shown
    assert panel.preview.audio.size == round(win.session.segment().size / 1.25)


def test_ab_playback_and_more_menu(ready_window, qtbot):
    win = ready_window
    panel = _open_edits(win, qtbot)
    played = []
    panel.player.play = lambda signal, sr: played.append((signal.size, sr))  # no sound card
    qtbot.waitUntil(lambda: panel.preview is not None, timeout=60_000)
    panel.set_extra("formant=1.1")
    qtbot.waitUntil(lambda: panel.preview.edit == "formant=1.1", timeout=60_000)
    panel.listen("A")
    panel.listen("B")
    assert played == [(win.session.segment().size, 16000), (panel.preview.audio.size, 16000)]
    panel.reset()
    qtbot.waitUntil(lambda: panel.preview.edit == "resynth", timeout=60_000)


def test_sweep_opens_a_plot(ready_window, qtbot):
    win = ready_window
    panel = _open_edits(win, qtbot)
    panel.sweep()
    qtbot.waitUntil(lambda: getattr(panel, "sweep_dialog", None) is not None, timeout=120_000)
    label = panel.sweep_dialog.findChildren(type(panel.info_label))[0]
    assert label.pixmap().width() > 400
    panel.sweep_dialog.close()
