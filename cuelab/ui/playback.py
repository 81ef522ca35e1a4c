"""Audio playback through sounddevice, with a position for the moving cursor.

PortAudio may be missing, or present with no output device (servers, CI,
this build machine). Both are detected once, inside ``try``: playback is then
disabled with the reason as a tooltip, and nothing else changes. A device
that raises later (unplugged, taken by another program) disables playback
for the rest of the session: :attr:`Player.unavailable` carries the one-line
reason, once, to the buttons and the notifier.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

log = logging.getLogger(__name__)


def probe_output() -> tuple[Any, str]:
    """Return ``(sounddevice module or None, reason when unavailable)``."""
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:  # OSError: PortAudio library not found
        return None, f"Playback unavailable: sounddevice cannot start ({exc})"
    try:
        device = sd.query_devices(kind="output")
    except Exception as exc:  # PortAudioError, ValueError: no default output
        return None, f"Playback unavailable: no audio output device ({_one_line(exc)})"
    if not device or int(device.get("max_output_channels", 0)) < 1:
        return None, "Playback unavailable: no audio output device"
    return sd, ""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class Player(QObject):
    """Plays one signal at a time and reports the play position.

    Signals:
        position(float): seconds into the clip, about 30 times a second.
        playing_changed(bool): started or stopped.
        unavailable(str): the device failed; playback is off for the session
            (emitted once, with the one-line reason also kept in ``reason``).
    """

    position = Signal(float)
    playing_changed = Signal(bool)
    unavailable = Signal(str)

    def __init__(self, parent: QObject | None = None, enabled: bool = True) -> None:
        super().__init__(parent)
        self._sd: Any
        self._sd, self.reason = probe_output() if enabled else (None, "Playback disabled")
        self._timer = QTimer(self)
        self._timer.setInterval(33)
        self._timer.timeout.connect(self._tick)
        self._t0 = 0.0
        self._start_s = 0.0
        self._end_s = 0.0
        self.playing = False
        self.looping = False

    @property
    def available(self) -> bool:
        """True when an output device was found."""
        return self._sd is not None

    def play(
        self,
        x: np.ndarray,
        sr: int,
        start_s: float = 0.0,
        end_s: float | None = None,
        loop: bool = False,
    ) -> None:
        """Play ``x[start_s:end_s]`` (non-blocking, repeated with ``loop``); stops the last."""
        if self._sd is None:
            return
        self.stop()
        a = max(0, int(start_s * sr))
        b = x.size if end_s is None else min(x.size, int(end_s * sr))
        if b <= a:
            return
        try:
            data = np.ascontiguousarray(x[a:b], dtype=np.float32)
            if loop:
                self._sd.play(data, sr, loop=True)
            else:
                self._sd.play(data, sr)
        except Exception as exc:  # a device that vanished: disable, do not crash
            self._fail(exc)
            return
        self._t0 = time.perf_counter()
        self._start_s, self._end_s = a / sr, b / sr
        self.looping = loop
        self.playing = True
        self._timer.start()
        self.playing_changed.emit(True)

    def stop(self) -> None:
        """Stop playback (no-op when idle)."""
        if not self.playing:
            return
        self._timer.stop()
        self.playing = False
        self.playing_changed.emit(False)
        if self._sd is not None:
            try:
                self._sd.stop()
            except Exception as exc:  # the device went away while playing
                self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        """A device that raised is gone for this session: turn playback off, say why once."""
        self.reason = f"Playback failed: {_one_line(exc)}"
        log.debug("%s", self.reason, exc_info=True)  # the notifier logs the one line
        self._sd = None
        self.unavailable.emit(self.reason)

    def _tick(self) -> None:
        elapsed = time.perf_counter() - self._t0
        if self.looping:
            span = max(self._end_s - self._start_s, 1e-3)
            self.position.emit(self._start_s + elapsed % span)
            return
        pos = self._start_s + elapsed
        if pos >= self._end_s:
            self.position.emit(self._end_s)
            self.stop()
        else:
            self.position.emit(pos)
