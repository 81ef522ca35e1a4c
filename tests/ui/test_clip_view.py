"""The clip view as a Praat-like tool: F0 axis, readouts, zoom to fit, loop playback."""

from __future__ import annotations

import re

import numpy as np
import pytest

import cuelab.ui.playback as playback


def test_f0_has_its_own_axis_in_hz(ready_window):
    view = ready_window.clip_view
    _x, hz = view.f0_curve.getData()
    assert hz is not None and hz.size > 10
    lo, hi = view.f0_view.viewRange()[1]
    assert lo <= np.nanmin(hz) and np.nanmax(hz) <= hi < 1000  # the contour spans its own axis
    assert view.spec_plot.getPlotItem().getAxis("right").labelText == "F0 (Hz)"
    assert not view.wave_plot.getPlotItem().getAxis("left").autoSIPrefix  # plain amplitudes


def test_cursor_readout_and_zoom_to_fit(ready_window, qtbot):
    view = ready_window.clip_view
    plot = view.spec_plot
    qtbot.wait(300)  # the last layout changes (a new prediction resizes its table) settle
    box = plot.getViewBox()
    centre = box.sceneBoundingRect().center()
    expected = box.mapSceneToView(centre)  # where the cursor is, in seconds and Hz
    span_t, span_f = (b - a for a, b in box.viewRange())

    def shows_the_cursor() -> bool:
        # A move event from where the pointer was before the window opened may come
        # first; the readout must end at the pointer's place, within a pixel or two.
        match = re.search(r"cursor ([\d.]+) s · (\d+) Hz", view.readout.text())
        return bool(match) and (
            abs(float(match[1]) - expected.x()) < 0.01 * span_t
            and abs(float(match[2]) - expected.y()) < 0.01 * span_f
        )

    qtbot.mouseMove(plot.viewport(), plot.mapFromScene(centre))
    qtbot.waitUntil(shows_the_cursor, timeout=5000)
    view.wave_plot.setXRange(0.2, 0.4, padding=0)
    view.fit_button.click()
    x0, x1 = view.wave_plot.getViewBox().viewRange()[0]
    assert abs(x0) < 1e-6 and abs(x1 - view.duration) < 1e-6
    assert view.info_label.text() == "file 16 kHz, mono"


class LoopingDevice:
    """Stands in for the sounddevice module (no audio device on the test machines)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, bool]] = []

    def play(self, data: np.ndarray, samplerate: int, loop: bool = False) -> None:
        self.calls.append((data.size, loop))

    def stop(self) -> None:
        pass


def test_loop_plays_the_selection_repeatedly(make_window, qtbot, monkeypatch):
    device = LoopingDevice()
    monkeypatch.setattr(playback, "probe_output", lambda: (device, ""))
    win = make_window(playback=True)
    view = win.clip_view
    win.session.set_audio(np.zeros(32000, dtype=np.float32), 16000, "silence")
    view.set_selection(0.5, 1.0)
    view.loop_box.setChecked(True)
    view.play_button.click()
    assert device.calls == [(8000, True)]
    qtbot.wait(700)  # longer than the 0.5 s selection: still playing, cursor wrapped
    assert win.player.playing
    assert 0.5 <= view.cursors[0].value() <= 1.0
    view.play_button.click()
    assert not win.player.playing


def test_a_long_clip_is_drawn_as_an_envelope_until_zoomed_in(make_window, qtbot):
    from cuelab.ui.clip_view import ENVELOPE_BUCKETS, RAW_SAMPLES

    win = make_window()
    view = win.clip_view
    sr = 16000
    x = (0.1 * np.random.default_rng(0).standard_normal(180 * sr)).astype(np.float32)
    x[sr * 100] = 0.9  # one click, 100 s in
    with qtbot.waitSignal(win.session.clip_changed, timeout=10_000):
        win.session.set_audio(x, sr, "three minutes")
    ts, ys = view.wave_curve.getOriginalDataset()
    assert ys.size <= 2 * ENVELOPE_BUCKETS < x.size  # not 2.9 million points
    assert abs(float(ys.max()) - 0.9) < 1e-6  # the envelope keeps the peak
    view.wave_plot.setXRange(99.5, 100.5, padding=0)  # zoomed in: the samples themselves
    ts, ys = view.wave_curve.getOriginalDataset()
    assert RAW_SAMPLES >= ys.size >= sr
    i = int(np.argmin(np.abs(ts - 100.0)))
    np.testing.assert_array_equal(ys[i - 5 : i + 5], x[sr * 100 - 5 : sr * 100 + 5])
    view.zoom_to_fit()
    assert view.wave_curve.getOriginalDataset()[1].size <= 2 * ENVELOPE_BUCKETS


def test_waveform_and_spectrogram_share_the_time_axis_after_a_clip_opens(ready_window, qtbot):
    view, s = ready_window.clip_view, ready_window.session
    with qtbot.waitSignal(view.spectrogram_drawn, timeout=30_000):
        s.open_row(s.manifest.rows[2])
    wave_x, wave_y = view.wave_plot.getViewBox().viewRange()
    spec_x = view.spec_plot.getViewBox().viewRange()[0]
    assert wave_x == pytest.approx(spec_x, abs=1e-9)  # the X link maps through pixels
    assert abs(wave_x[0]) < 1e-6 and abs(wave_x[1] - view.duration) < 1e-6
    peak = float(np.max(np.abs(s.audio)))
    assert wave_y[0] < -peak < peak < wave_y[1] < 1.2 * peak
    ticks = view.wave_plot.getPlotItem().getAxis("bottom").range
    assert abs(ticks[1] - view.duration) < 1e-6  # the axis shows the same range


def test_rate_and_channels_of_the_file_and_the_down_mix_are_stated(make_window, qtbot, tmp_path):
    import soundfile as sf

    win = make_window()
    path = tmp_path / "stereo.wav"
    t = np.arange(44100) / 44100
    sf.write(
        str(path), np.stack([np.sin(2 * np.pi * 220 * t), np.zeros_like(t)], axis=1) * 0.3, 44100
    )
    with qtbot.waitSignal(win.session.clip_changed, timeout=10_000):
        win.session.open_file(path)
    assert win.clip_view.info_label.text() == "file 44.1 → 16 kHz, 2 ch → mono (mean)"


def test_a_long_clip_never_hands_the_curve_more_than_a_few_thousand_points(make_window, qtbot):
    """At every zoom between the whole clip and a few seconds the waveform comes from the
    min/max pyramid (issue 26: a wheel step on a 10-minute clip stalled 170-576 ms), and it
    keeps the extremes of what is on screen."""
    from cuelab.ui.clip_view import ENVELOPE_BUCKETS

    win = make_window()
    view = win.clip_view
    sr = 16000
    x = (0.1 * np.random.default_rng(1).standard_normal(180 * sr)).astype(np.float32)
    x[sr * 100] = 0.9  # one click, 100 s in
    x[sr * 100 + 7] = -0.8
    with qtbot.waitSignal(win.session.clip_changed, timeout=10_000):
        win.session.set_audio(x, sr, "three minutes")
    for width_s in (120.0, 60.0, 20.0, 8.0):
        view.wave_plot.setXRange(100.0 - width_s / 2, 100.0 + width_s / 2, padding=0)
        ts, ys = view.wave_curve.getOriginalDataset()
        assert ys.size <= 2 * ENVELOPE_BUCKETS, width_s
        assert abs(float(ys.max()) - 0.9) < 1e-6 and abs(float(ys.min()) + 0.8) < 1e-6
        assert ts[0] <= 100.0 - width_s / 2 + 0.1 and ts[-1] >= 100.0 + width_s / 2 - 0.1


def test_a_long_clip_builds_its_pyramid_in_a_worker_then_draws_from_it(
    make_window, qtbot, monkeypatch
):
    """Above ASYNC_PYRAMID_SAMPLES (4 M: a 10-minute clip) the pyramid is built off the GUI
    thread; lowered here so that the clip's own analysis stays short."""
    from cuelab.ui import clip_view
    from cuelab.ui.clip_view import ENVELOPE_BUCKETS

    monkeypatch.setattr(clip_view, "ASYNC_PYRAMID_SAMPLES", 1_000_000)
    from cuelab.ui import analysis_process

    started = analysis_process.children_started
    win = make_window()
    view = win.clip_view
    sr = 16000
    x = (0.01 * np.random.default_rng(2).standard_normal(90 * sr)).astype(np.float32)
    x[sr * 45] = 0.9
    with qtbot.waitSignal(win.session.clip_changed, timeout=10_000):
        win.session.set_audio(x, sr, "ninety seconds")
    assert view.wave_curve.getOriginalDataset()[1].size <= 2 * ENVELOPE_BUCKETS
    qtbot.waitUntil(lambda: view._pyramid is not None, timeout=30_000)
    _ts, ys = view.wave_curve.getOriginalDataset()
    assert ys.size <= 2 * ENVELOPE_BUCKETS and abs(float(ys.max()) - 0.9) < 1e-6
    # A clip of a minute or more: openSMILE, the pyramid and the spectrogram each ran in
    # a child process, not in the window's (issue 26: in threads they stalled it).
    qtbot.waitUntil(lambda: view._clip_spec is not None, timeout=30_000)
    assert analysis_process.children_started - started >= 3


def test_the_spectrogram_is_computed_once_per_clip_and_cropped_for_each_view(make_window, qtbot):
    win = make_window()
    view = win.clip_view
    sr = 16000
    x = (0.01 * np.random.default_rng(1).standard_normal(60 * sr)).astype(np.float32)
    t = np.arange(sr // 10) / sr
    x[30 * sr : 30 * sr + t.size] += 0.8 * np.sin(2 * np.pi * 1000 * t)  # a tone 30 s in
    before = view.spectrogram_computations
    with qtbot.waitSignal(view.spectrogram_drawn, timeout=30_000):
        win.session.set_audio(x, sr, "one minute")
    assert view.spectrogram_computations == before + 1
    whole = view.spec
    vb = view.wave_plot.getViewBox()
    for _ in range(6):  # wheel-zoom steps towards the tone
        with qtbot.waitSignal(view.spectrogram_drawn, timeout=10_000):
            vb.scaleBy(x=0.5, center=(30.05, 0.0))
    assert view.spec.dt < whole.dt  # finer frames for the zoomed view, from the same clip
    loud = view.spec.db.max(axis=1)
    frame_t = vb.viewRange()[0][0] + np.arange(loud.size) * view.spec.dt
    assert 29.9 < float(frame_t[int(np.argmax(loud))]) < 30.3  # the tone is where it was
    with qtbot.waitSignal(view.spectrogram_drawn, timeout=10_000):
        view.zoom_to_fit()
    with qtbot.waitSignal(view.spectrogram_drawn, timeout=10_000):
        view.range_spin.setValue(40)
    assert view.spec.db.max() - view.spec.db.min() <= 40.0 + 1e-3
    assert view.spectrogram_computations == before + 1  # zoom, Fit, range: crops only
    with qtbot.waitSignal(view.spectrogram_drawn, timeout=10_000):
        view.window_spin.setValue(30.0)  # another analysis window: computed again
    assert view.spectrogram_computations == before + 2
    with qtbot.waitSignal(view.spectrogram_drawn, timeout=30_000):
        win.session.set_audio(x[: 10 * sr].copy(), sr, "ten seconds")
    assert view.spectrogram_computations == before + 3
