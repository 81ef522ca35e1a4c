"""Errors stay where they happened until the user acts, and the session lists them all."""

from __future__ import annotations

import numpy as np

from cuelab.core.audio.io import write_audio


def test_a_non_audio_file_keeps_its_error_in_the_clip_view(make_window, qtbot, tmp_path):
    win = make_window()
    s, view = win.session, win.clip_view
    bad = tmp_path / "not-audio.wav"
    bad.write_text("hello", encoding="utf-8")
    with qtbot.waitSignal(s.clip_failed, timeout=10_000):
        s.open_file(bad)
    assert view.error_label.isVisible() and "not-audio.wav" in view.error_label.text()
    # Later news (a model loads) does not wipe it: the status bar moves on, the error stays.
    with qtbot.waitSignal(s.model_changed, timeout=60_000):
        s.load_model("reference")
    assert "loaded" in win.statusBar().currentMessage()
    assert view.error_label.isVisible() and "not-audio.wav" in view.error_label.text()
    # ... and it is in this session's list, with the badge in the status bar.
    assert any("not-audio.wav" in line for line in win.messages.messages())
    assert win.notifier.badge.isVisible() and "1 error" in win.notifier.badge.text()
    win.notifier.badge.click()
    assert win.messages_dock.isVisible()
    view.error_dismiss.click()  # the user acts
    assert not view.error_label.isVisible()


def test_a_failed_model_load_stays_in_the_model_panel(make_window, qtbot, tmp_path):
    win = make_window()
    s, panel = win.session, win.model_panel
    with qtbot.waitSignal(s.model_failed, timeout=30_000) as blocker:
        s.load_model(f"reference:{tmp_path}")
    qtbot.waitUntil(lambda: panel.load_button.isEnabled(), timeout=5000)  # the job ended
    message = blocker.args[0]
    assert message.startswith(f"model reference:{tmp_path}: cannot load: ")
    assert panel.progress_label.text() == message
    assert win.predictions_panel.has_error and "No model loaded" in (
        win.predictions_panel.top_label.text()
    )
    assert any(message in line for line in win.messages.messages())


def test_a_failed_prediction_is_shown_not_waiting_forever(make_window, qtbot, tmp_path):
    """The oracle answers from the manifest row: a file opened on its own has none."""
    win = make_window()
    s = win.session
    clip = tmp_path / "loose.wav"
    write_audio(clip, 0.1 * np.random.default_rng(1).standard_normal(16000), 16000)
    with qtbot.waitSignal(s.model_changed, timeout=30_000):
        s.load_model("oracle")
    with qtbot.waitSignal(s.predict_failed, timeout=30_000) as blocker:
        s.open_file(clip)
    top = win.predictions_panel.top_label.text()
    assert top.startswith("Prediction failed: model oracle: cannot score: ")
    assert blocker.args[0] in top and "waiting" not in top
    assert win.predictions_panel.has_error


def test_messages_list_warnings_too(ready_window, qtbot):
    win = ready_window
    s = win.session
    with qtbot.waitSignal(s.analysis_started, timeout=5000):
        s.set_region((0.2, 0.9))
    s.set_tokens(s.tokens.without("PITCH"))  # refused while analysing: a warning, kept
    assert any("warning: the clip is being analysed" in m for m in win.messages.messages())


def test_a_failed_analysis_is_said_at_the_concepts_and_predictions(ready_window, qtbot):
    win = ready_window
    s, panel = win.session, win.concepts_panel
    with qtbot.waitSignal(s.analysis_failed, timeout=30_000) as blocker:
        s.set_audio(np.zeros(800, dtype=np.float32), 16000, "blip.wav")  # 0.05 s
    assert "too short" in blocker.args[0]
    assert panel.error_label.isVisible() and "too short" in panel.error_label.text()
    assert not panel.analysing and not panel.chips["ENERGY"].isEnabled()  # stale: greyed
    assert "could not be analysed" in win.predictions_panel.top_label.text()
    warned = []
    win.notifier.posted.connect(lambda lev, msg: lev == "warning" and warned.append(msg))
    s.set_tokens(s.tokens.without("PITCH"))
    assert warned == ["this clip has no tokens to edit (its analysis failed)"]
