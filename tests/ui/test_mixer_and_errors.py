"""The mixer feeds a mix to the analysis; errors reach one place; the spectrogram helper."""

from __future__ import annotations

import sys

import numpy as np

from cuelab.ui.dsp import spectrogram


def test_applying_a_mix_makes_it_the_analysed_clip(ready_window, qtbot):
    win = ready_window
    mixer, s = win.mixer_panel, win.session
    clean_len = s.audio.size
    mixer.onset_spin.setValue(0.5)
    mixer.snr_slider.setValue(0)
    qtbot.waitUntil(
        lambda: mixer.mix is not None and mixer.apply_button.isEnabled(), timeout=20_000
    )
    qtbot.waitUntil(lambda: mixer.mix.result.requested_snr_db == 0.0, timeout=20_000)
    assert abs(mixer.mix.result.achieved_snr_db) < 0.5
    assert "achieved SNR" in mixer.info_label.text()
    before = s.prediction
    with qtbot.waitSignal(s.prediction_changed, timeout=30_000) as blocker:
        mixer.apply_button.click()
    assert "@ +0 dB" in s.clip_name and s.clip_path is None
    assert s.audio.size == clean_len + 2 * 8000  # onset and equal tail at 16 kHz
    assert blocker.args[0].audio_only != before.audio_only
    assert not win.dataset_panel.annotation_box.isEnabled()  # a mix has no manifest row
    mixer.plus_inf.setChecked(True)
    assert mixer.snr_db() == np.inf and not mixer.snr_slider.isEnabled()
    assert mixer.snr_label.text() == "+∞"


def test_apply_never_uses_the_mix_of_the_previous_clip(ready_window, qtbot):
    win = ready_window
    mixer, s = win.mixer_panel, win.session
    first = s.clip_name
    win.tabs.setCurrentIndex(1)  # the Mixer is used: it mixes the open clip
    qtbot.waitUntil(lambda: mixer.apply_button.isEnabled(), timeout=20_000)
    assert mixer.mix.speech_name == first
    second = s.manifest.rows[2]
    with qtbot.waitSignal(s.clip_changed, timeout=20_000):
        s.open_row(second)
    # The new clip's mix is still in the debounce pause: nothing can be applied yet.
    assert s.clip_name == second.path.name
    assert not mixer.apply_button.isEnabled()
    assert first not in mixer.info_label.text()
    mixer.apply()  # a click that slipped through (Space, a queued event)
    assert s.clip_name == second.path.name and s.clip_path == second.path
    qtbot.waitUntil(lambda: mixer.apply_button.isEnabled(), timeout=20_000)
    assert mixer.mix.speech_name == second.path.name
    assert second.path.name in mixer.info_label.text()
    with qtbot.waitSignal(s.clip_changed, timeout=20_000):
        mixer.apply_button.click()
    assert s.clip_name.startswith(f"{second.path.name} + ")


def test_worker_errors_go_to_the_status_bar(make_window, qtbot, tmp_path):
    win = make_window()
    bad = tmp_path / "not-audio.wav"
    bad.write_text("hello", encoding="utf-8")
    posted = []
    win.notifier.posted.connect(lambda level, msg: posted.append((level, msg)))
    win.session.open_file(bad)
    qtbot.waitUntil(lambda: any(level == "error" for level, _ in posted), timeout=10_000)
    errors = [msg for level, msg in posted if level == "error"]
    assert len(errors) == 1
    message = errors[0]
    assert "not-audio.wav" in message
    assert win.statusBar().currentMessage() == f"Error: {message}"


def test_excepthook_logs_and_shows_one_dialog_at_a_time(make_window, qtbot):
    from cuelab.ui.notify import install_excepthook

    win = make_window()
    win.notifier.dialogs_enabled = True
    old = sys.excepthook
    try:
        install_excepthook(win.notifier, win)
        for i in range(3):
            try:
                raise RuntimeError(f"boom {i}")
            except RuntimeError:
                sys.excepthook(*sys.exc_info())
        dialog = win.notifier._dialog
        assert dialog is not None and dialog.isVisible()
        assert "boom 0" in dialog.text()  # later errors did not open more dialogs
        assert "boom 2" in win.statusBar().currentMessage()
        dialog.done(0)
        assert win.notifier._dialog is None
    finally:
        sys.excepthook = old


def test_spectrogram_peak_and_dynamic_range():
    sr = 16000
    t = np.arange(sr) / sr
    x = 0.5 * np.sin(2 * np.pi * 1000 * t)
    spec = spectrogram(x, sr, window_s=0.03, dynamic_range_db=50.0)
    peak_hz = spec.db.mean(axis=0).argmax() * spec.df
    assert abs(peak_hz - 1000) <= spec.df
    assert spec.db.max() - spec.db.min() <= 50.0 + 1e-4
    assert spec.db.shape[1] * spec.df <= 5000 + spec.df


def test_own_background_typed_snr_and_a_preview(ready_window, qtbot, tmp_path):
    from cuelab.core.audio.io import write_audio

    win = ready_window
    mixer = win.mixer_panel
    hum = tmp_path / "my-hum.wav"
    t = np.arange(3 * 16000) / 16000
    write_audio(hum, 0.2 * np.sin(2 * np.pi * 50 * t).astype(np.float32), 16000)
    win.tabs.setCurrentIndex(1)
    mixer.add_background(hum)
    mixer.snr_spin.setValue(7.3)
    assert mixer.snr_slider.value() == 7  # the slider follows the typed value
    qtbot.waitUntil(
        lambda: mixer.mix is not None and mixer.mix.result.requested_snr_db == 7.3, timeout=20_000
    )
    assert mixer.mix.background_name == "my-hum.wav"
    assert abs(mixer.mix.result.achieved_snr_db - 7.3) < 0.5
    _t, shown = mixer.preview_mix.getOriginalDataset()
    assert shown.size == mixer.mix.result.mix.size
