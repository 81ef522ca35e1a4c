"""Numeric helpers for the views: spectrogram, envelopes, memory readout.

Qt-free and pure numpy so that workers can call them off the GUI thread and
tests can check them without a display.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    x = np.asarray(x)
    hop = max(1, round(hop_s * sr))
    n_frames = max(1, int(np.ceil(x.size / hop)))
    win = np.hanning(max(3, round(window_s * sr)))
    win /= win.sum()
    # Hann-weighted mean square at the frame centres only, a few thousand frames at a
    # time, each chunk from its own stretch of samples: no full-length float64 copies
    # (three of 77 MB for 10 minutes held the window's worker threads in long passes).
    half = win.size // 2
    centres = np.minimum(np.arange(n_frames) * hop, max(0, x.size - 1))
    p = np.empty(n_frames)
    for a in range(0, n_frames, 4096):
        c = centres[a : a + 4096]
        # Padded-signal positions [lo, hi) hold samples [lo - half, hi - half), zero outside.
        lo, hi = int(c[0]), int(c[-1]) + win.size
        seg = np.zeros(hi - lo)
        s0, s1 = max(0, lo - half), min(x.size, hi - half)
        if s1 > s0:
            part = x[s0:s1].astype(np.float64)
            seg[s0 + half - lo : s1 + half - lo] = part * part
        frames = np.lib.stride_tricks.sliding_window_view(seg, win.size)
        p[a : a + 4096] = frames[c - lo] @ win
    db = 10.0 * np.log10(np.maximum(p, 1e-30) / 4e-10)
    return np.arange(n_frames) * hop / sr, np.maximum(db, -10.0)


#: One whole-clip pass at a time in the window's process. Opening a long clip started
#: three at once (min/max pyramid, whole-clip spectrogram, intensity) beside openSMILE's
#: child: on two cores the GUI thread then waited for a CPU and for the GIL behind
#: three workers, 100-300 ms at a time (a sampler of the stalls found these three
#: running in them). Held only by worker threads, never by the GUI thread.
_WHOLE_CLIP_PASS = threading.Lock()


@contextmanager
def whole_clip_pass(check: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the window's one whole-clip pass; ``check`` (a job's cancel check) runs once
    it is held, so a pass queued for a clip no longer shown is not computed."""
    with _WHOLE_CLIP_PASS:
        if check is not None:
            check()
        yield


CLIP_SPEC_MAX_FRAMES = 120_000  # the once-per-clip spectrogram: 10 min at a 5 ms hop, ~40 MB
_CHUNK_FRAMES = 1024  # short numpy calls, so the GUI thread gets the GIL between them


@dataclass(frozen=True)
class ClipSpectrogram:
    """The whole clip's spectrogram in dB, unclipped, computed once per clip and settings.

    Views crop and max-pool it (:func:`view_of`) instead of recomputing FFTs on
    every zoom step. ``fine_dt`` is the hop the view would have wanted when it
    is zoomed in further than ``dt`` resolves.
    """

    db: np.ndarray  # (frames, bins) float32
    t0: float
    dt: float
    df: float
    window_s: float
    max_freq_hz: float
    fine_dt: float


def clip_spectrogram(
    x: np.ndarray,
    sr: int,
    window_s: float = 0.005,
    max_freq_hz: float = 5000.0,
    max_frames: int = CLIP_SPEC_MAX_FRAMES,
) -> ClipSpectrogram:
    """The clip's dB spectrogram (Praat's Gaussian window, as :func:`spectrogram`), in chunks.

    The hop is a quarter of the window (at least 1 ms), widened so the whole clip
    has at most ``max_frames`` frames: the memory stays bounded for hour-long clips.
    """
    x = np.asarray(x, dtype=np.float32)
    n_win = max(16, round(2 * window_s * sr))
    fine = max(0.001, window_s / 4)
    hop = max(1, round(fine * sr), int(np.ceil(x.size / max(1, max_frames))))
    n_fft = 1 << (n_win - 1).bit_length()
    if x.size < n_win:
        x = np.pad(x, (0, n_win - x.size))
    n_frames = 1 + (x.size - n_win) // hop
    m = np.arange(n_win) - (n_win - 1) / 2
    win = np.exp(-12.0 * (m / (n_win - 1)) ** 2).astype(np.float32)
    df = sr / n_fft
    keep = max(1, min(n_fft // 2 + 1, math.floor(max_freq_hz / df) + 1))
    windows = np.lib.stride_tricks.sliding_window_view(x, n_win)[::hop]
    db = np.empty((n_frames, keep), dtype=np.float32)
    for a in range(0, n_frames, _CHUNK_FRAMES):
        frames = windows[a : a + _CHUNK_FRAMES] * win
        spec = np.abs(np.fft.rfft(frames, n=n_fft, axis=1)[:, :keep]) ** 2
        db[a : a + _CHUNK_FRAMES] = 10.0 * np.log10(spec + 1e-20)
    return ClipSpectrogram(
        db=db,
        t0=(n_win / 2) / sr,
        dt=hop / sr,
        df=df,
        window_s=window_s,
        max_freq_hz=max_freq_hz,
        fine_dt=round(fine * sr) / sr,
    )


def view_of(
    clip: ClipSpectrogram, t_start: float, t_end: float, dynamic_range_db: float, max_frames: int
) -> tuple[Spectrogram, float]:
    """Crop the clip's spectrogram to ``[t_start, t_end]`` s and max-pool it to at most
    ``max_frames`` frames (so a loud short event stays visible), clipped to
    ``dynamic_range_db`` below the view's loudest cell, as Praat scales a view.

    Returns:
        (the view's spectrogram, the time offset its ``t0`` is relative to).
    """
    n = clip.db.shape[0]
    a = min(n - 1, max(0, int(np.floor((t_start - clip.t0) / clip.dt))))
    b = min(n, max(a + 1, int(np.ceil((t_end - clip.t0) / clip.dt)) + 1))
    step = max(1, int(np.ceil((b - a) / max(1, max_frames))))
    b = min(n, a + step * int(np.ceil((b - a) / step)))
    part = clip.db[a:b]
    if step > 1:
        whole = (part.shape[0] // step) * step
        pooled = part[:whole].reshape(-1, step, part.shape[1]).max(axis=1)
        if whole < part.shape[0]:
            pooled = np.vstack([pooled, part[whole:].max(axis=0, keepdims=True)])
        part = pooled
    top = float(part.max())
    db = np.clip(part, top - dynamic_range_db, top).astype(np.float32)
    dt = clip.dt * step
    # Frame k of the view covers clip frames [a + k*step, a + (k+1)*step): centre it there.
    t0 = clip.t0 + (a + (step - 1) / 2) * clip.dt
    view = Spectrogram(
        db=db, t0=0.0, dt=dt, df=clip.df, max_db=top, dynamic_range_db=float(dynamic_range_db)
    )
    return view, t0
