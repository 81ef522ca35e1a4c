"""Playback when the sound device fails in the middle of a session."""

from __future__ import annotations

import numpy as np

import cuelab.ui.playback as playback


class PortAudioError(Exception):
    """What sounddevice raises when a device has gone (its own class needs PortAudio)."""


class VanishingDevice:
    """A stand-in for the sounddevice module: the first play works, later ones raise.

    No audio device exists on the test machines, so the device is the one
    thing replaced; the window, the session and Qt are real.
    """

    def __init__(self) -> None:
        self.played: list[int] = []
        self.fail = False

    def play(self, data: np.ndarray, samplerate: int) -> None:
        if self.fail:
            raise PortAudioError(
                "Error starting stream: Unanticipated host error\n[PaErrorCode -9999]"
            )
        self.played.append(data.size)

    def stop(self) -> None:
        if self.fail:
            raise PortAudioError("Error stopping stream")


def test_a_device_failing_mid_session_disables_play_and_reports_once(
    make_window, qtbot, monkeypatch
):
    device = VanishingDevice()
    monkeypatch.setattr(playback, "probe_output", lambda: (device, ""))
    win = make_window(playback=True)
    errors = []
    win.notifier.posted.connect(lambda level, msg: errors.append(msg) if level == "error" else None)
    view, mixer = win.clip_view, win.mixer_panel
    tone = 0.1 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000).astype(np.float32)
    win.session.set_audio(tone, 16000, "tone")
    assert view.play_button.isEnabled()

    view.play_button.click()  # the device works at first
    assert device.played == [16000] and win.player.playing
    assert view.play_button.text() == "Pause"
    view.play_button.click()
    assert not win.player.playing

    device.fail = True  # unplugged, or taken by another program
    view.play_button.click()
    assert not win.player.playing and view.play_button.text() == "Play"
    assert not view.play_button.isEnabled()
    reason = view.play_button.toolTip()
    assert reason.startswith("Playback failed:") and "Unanticipated host error" in reason
    assert "\n" not in reason
    assert errors == [reason]
    assert all(not b.isEnabled() and b.toolTip() == reason for b in mixer.listen_buttons.values())

    view.toggle_play()  # Space: nothing happens, nothing crashes, no second report
    mixer.listen("mix")
    assert errors == [reason] and device.played == [16000]


def test_a_device_failing_while_playing_stops_cleanly(make_window, monkeypatch):
    device = VanishingDevice()
    monkeypatch.setattr(playback, "probe_output", lambda: (device, ""))
    win = make_window(playback=True)
    errors = []
    win.notifier.posted.connect(lambda level, msg: errors.append(msg) if level == "error" else None)
    view = win.clip_view
    win.session.set_audio(np.zeros(32000, dtype=np.float32), 16000, "silence")
    view.play_button.click()
    assert win.player.playing
    device.fail = True
    view.play_button.click()  # Pause: stopping the stream raises
    assert not win.player.playing and view.play_button.text() == "Play"
    assert not view.play_button.isEnabled()
    assert errors == [view.play_button.toolTip()] == ["Playback failed: Error stopping stream"]
    assert not any(line.isVisible() for line in view.cursors)
