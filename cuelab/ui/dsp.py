"""Numeric helpers for the views: spectrogram, envelopes, memory readout.

Qt-free and pure numpy so that workers can call them off the GUI thread and
tests can check them without a display.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Spectrogram:
    """A dB power spectrogram ready to draw.

    Attributes:
        db: array (frames, bins), clipped to ``[max - dynamic_range, max]``.
        t0: time of the first frame centre in seconds.
        dt: time between frames in seconds.
        df: frequency step between bins in Hz.
        max_db: the loudest cell (the top of the colour scale).
        dynamic_range_db: the colour-scale span below ``max_db``.
    """

    db: np.ndarray
    t0: float
    dt: float
    df: float
    max_db: float
    dynamic_range_db: float


def spectrogram(
    x: np.ndarray,
    sr: int,
    window_s: float = 0.005,
    dynamic_range_db: float = 70.0,
    max_freq_hz: float = 5000.0,
    time_step_s: float | None = None,
) -> Spectrogram:
    """Short-time power spectrum in dB with Praat's defaults.

    Praat draws a Gaussian-windowed spectrogram whose "window length" is the
    effective duration (the Gaussian spans twice that), 5 ms by default
    (broad-band, shows formants), 30 ms or more for narrow-band (harmonics),
    and a dynamic range of 70 dB below the loudest cell.

    Args:
        x: mono samples.
        sr: rate in Hz.
        window_s: effective window length in seconds.
        dynamic_range_db: how far below the maximum the colour scale reaches.
        max_freq_hz: highest frequency kept.
        time_step_s: hop; default a quarter of the window, at least 1 ms.
    """
    x = np.asarray(x, dtype=np.float64)
    n_win = max(16, round(2 * window_s * sr))
    hop = max(1, round((time_step_s or max(0.001, window_s / 4)) * sr))
    n_fft = 1 << (n_win - 1).bit_length()
    if x.size < n_win:
        x = np.pad(x, (0, n_win - x.size))
    n_frames = 1 + (x.size - n_win) // hop
    idx = np.arange(n_win)[None, :] + hop * np.arange(n_frames)[:, None]
    # Gaussian window as in Praat (edges at exp(-12) of the centre).
    m = np.arange(n_win) - (n_win - 1) / 2
    win = np.exp(-12.0 * (m / (n_win - 1)) ** 2)
    frames = x[idx] * win
    spec = np.abs(np.fft.rfft(frames, n=n_fft, axis=1)) ** 2
    df = sr / n_fft
    keep = max(1, min(spec.shape[1], math.floor(max_freq_hz / df) + 1))
    db = 10.0 * np.log10(spec[:, :keep] + 1e-20)
    top = float(db.max())
    db = np.clip(db, top - dynamic_range_db, top).astype(np.float32)
    return Spectrogram(
        db=db,
        t0=(n_win / 2) / sr,
        dt=hop / sr,
        df=df,
        max_db=top,
        dynamic_range_db=float(dynamic_range_db),
    )


def process_rss_bytes() -> int:
    """Resident memory of this process in bytes (0 when unknown).

    ``/proc/self/status`` gives the current value on Linux; elsewhere the
    peak from :mod:`resource` is the best cheap estimate.
    """
    status = Path("/proc/self/status")
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak) if os.uname().sysname == "Darwin" else int(peak) * 1024
    except (ImportError, OSError, AttributeError):
        return 0


def format_bytes(n: int) -> str:
    """``1.2 GiB`` style."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


INTENSITY_HOP_S = 0.01
INTENSITY_WINDOW_S = 0.032  # Praat's default: 3.2 / (minimum pitch 100 Hz)


def intensity_db(
    x: np.ndarray, sr: int, hop_s: float = INTENSITY_HOP_S, window_s: float = INTENSITY_WINDOW_S
) -> tuple[np.ndarray, np.ndarray]:
    """Intensity contour as Praat computes it, in dB re (2·10⁻⁵)² (full scale ≈ 94 dB).

    Frame ``k`` is centred at ``k * hop_s``; each is the Hann-weighted mean square of
    ``window_s`` of signal (zero-padded at the ends), floored at -10 dB so digital
    silence is a low line rather than -inf.

    Returns:
        (times in s, dB), one value per hop over the whole signal.
    """
    x = np.asarray(x, dtype=np.float64)
    hop = max(1, round(hop_s * sr))
    n_frames = max(1, int(np.ceil(x.size / hop)))
    win = np.hanning(max(3, round(window_s * sr)))
    win /= win.sum()
    # Hann-weighted mean square at the frame centres only, a few thousand frames at a time.
    half = win.size // 2
    sq = np.pad(x * x, (half, win.size - half))
    frames = np.lib.stride_tricks.sliding_window_view(sq, win.size)
    centres = np.minimum(np.arange(n_frames) * hop, max(0, x.size - 1))
    p = np.empty(n_frames)
    for a in range(0, n_frames, 4096):
        p[a : a + 4096] = frames[centres[a : a + 4096]] @ win
    db = 10.0 * np.log10(np.maximum(p, 1e-30) / 4e-10)
    return np.arange(n_frames) * hop / sr, np.maximum(db, -10.0)
