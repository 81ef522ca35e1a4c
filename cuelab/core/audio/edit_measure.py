"""Measure what an edit actually did to the audio, and flag a miss.

An edit is never trusted on its request: the output is measured with trackers
independent of the engine that made it (Praat's autocorrelation pitch when
``parselmouth`` is installed, otherwise librosa's pYIN; formants from LPC
roots on the loud frames, which on espeak speech tracked a +10 % formant
shift as +11 % where Praat's Burg tracker jumped between formants), and
compared with the input. The measured quantities:

``f0_shift_st``      median F0 over voiced frames, output minus input, in semitones
``f0_range_ratio``   inter-quartile range of the voiced F0 (semitones), output / input
``duration_ratio``   output length / input length
``rms_change_db``    RMS level change in dB
``loudness_change_db`` BS.1770 integrated loudness change (LU)
``loudness_lufs``    the output's integrated loudness
``f1_change_pct``, ``f2_change_pct``  median F1 / F2 over voiced frames, change in %
``tilt_change_db_oct`` change of the long-term spectrum's slope (100 Hz–5 kHz), dB/octave
``jitter_change_pct``, ``shimmer_change_pct``, ``hnr_change_db``  Praat's local jitter and
                     shimmer (percentage points) and mean HNR; NaN without parselmouth

:data:`TOLERANCES` documents, per edit kind, the target quantity with its
allowed miss and the side effects that must stay small; :func:`check_edit`
turns a miss into a flag (a sentence), so an edit is flagged, never silently used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cuelab.core.audio.edits import RESYNTH, EditChain

F0_FLOOR = 60.0
F0_CEIL = 700.0
_HOP_S = 0.01


@dataclass(frozen=True)
class Tolerance:
    """What an edit kind must achieve (``target``) and what it must leave alone (``side``).

    ``target``: (measured key, function of the requested amount giving the expected
    value, allowed absolute miss). ``side``: measured key -> largest allowed |value|
    (for ratios, |value - 1|).
    """

    target: tuple[str, Any, float] | None
    side: Mapping[str, float]


def _ratio_keys(key: str) -> bool:
    return key.endswith("_ratio")


# Per edit kind; documented in docs/audio-edits.md. Side limits apply when the
# chain does not itself edit that quantity.
TOLERANCES: dict[str, Tolerance] = {
    "pitch": Tolerance(("f0_shift_st", lambda a: a, 0.3), {"f1_change_pct": 5.0}),
    "pitch-range": Tolerance(("f0_range_ratio", lambda a: a, 0.25), {"f0_shift_st": 0.5}),
    "tempo": Tolerance(("duration_ratio", lambda a: 1.0 / a, 0.02), {"f0_shift_st": 0.3}),
    "gain": Tolerance(("rms_change_db", lambda a: a, 0.2), {"f0_shift_st": 0.2}),
    "loudness": Tolerance(("loudness_lufs", lambda a: a, 0.5), {"f0_shift_st": 0.2}),
    "tilt": Tolerance(("tilt_change_db_oct", lambda a: a, 0.5), {"f0_shift_st": 0.2}),
    "formant": Tolerance(("f1_change_pct", lambda a: (a - 1.0) * 100.0, 5.0), {"f0_shift_st": 0.3}),
    # WORLD's 5 ms frames smooth a per-frame perturbation: on espeak speech Praat
    # measured about 0.4x the requested jitter, and shimmer hardly at all. So these
    # are checked for direction only (DIRECTIONS), not against a tolerance.
    "jitter": Tolerance(None, {"f0_shift_st": 0.3, "duration_ratio": 0.01}),
    "shimmer": Tolerance(None, {"f0_shift_st": 0.3, "duration_ratio": 0.01}),
    "breathiness": Tolerance(None, {"f0_shift_st": 0.3, "duration_ratio": 0.01}),
    RESYNTH: Tolerance(None, {"f0_shift_st": 0.2, "duration_ratio": 0.01, "f1_change_pct": 5.0}),
}
# Voice-quality edits: the measured key that must move with the sign of the request
# (+1) or against it (-1, more breathiness lowers the HNR); skipped when unmeasured.
DIRECTIONS: dict[str, tuple[str, int]] = {
    "jitter": ("jitter_change_pct", 1),
    "breathiness": ("hnr_change_db", -1),
}
# Which measured keys each kind is allowed to move (so no side flag for them).
_MOVES = {
    "pitch": {"f0_shift_st", "f1_change_pct", "f2_change_pct"},
    "pitch-range": {"f0_range_ratio", "f0_shift_st"},
    "tempo": {"duration_ratio"},
    "gain": {"rms_change_db", "loudness_change_db", "loudness_lufs"},
    "loudness": {"rms_change_db", "loudness_change_db", "loudness_lufs"},
    "tilt": {"tilt_change_db_oct", "rms_change_db", "loudness_change_db", "loudness_lufs"},
    "formant": {"f1_change_pct", "f2_change_pct"},
}


def _praat_available() -> bool:
    try:
        import parselmouth  # noqa: F401
    except ImportError:
        return False
    return True


def _pitch_track(x: np.ndarray, sr: int, tracker: str) -> np.ndarray:
    """Voiced F0 values in Hz (NaN-free) by ``tracker`` (``praat`` or ``pyin``)."""
    if tracker == "praat":
        import parselmouth

        snd = parselmouth.Sound(np.asarray(x, dtype=np.float64), sampling_frequency=sr)
        try:
            f0 = snd.to_pitch(time_step=_HOP_S, pitch_floor=F0_FLOOR, pitch_ceiling=F0_CEIL)
        except parselmouth.PraatError:  # shorter than three periods of the floor: unmeasurable
            return np.zeros(0)
        values = f0.selected_array["frequency"]
        return values[values > 0]
    import librosa

    from cuelab.core.audio.io import resample

    y = resample(np.asarray(x, dtype=np.float32), sr, 16000) if sr != 16000 else x
    f0, voiced, _ = librosa.pyin(
        np.asarray(y, dtype=np.float64), fmin=F0_FLOOR, fmax=F0_CEIL, sr=16000,
        frame_length=1024, hop_length=160,
    )  # fmt: skip
    values = np.asarray(f0)[np.asarray(voiced, dtype=bool)]
    return values[np.isfinite(values)]


def _lpc_formants(x: np.ndarray, sr: int) -> tuple[float, float]:
    """LPC-root formants on loud frames at 10 kHz (the classic textbook estimate)."""
    import librosa

    from cuelab.core.audio.io import resample

    rate = 10000
    y = resample(np.asarray(x, dtype=np.float32), sr, rate).astype(np.float64)
    y = np.append(y[0], y[1:] - 0.63 * y[:-1])  # pre-emphasis
    frame, hop = int(0.025 * rate), int(_HOP_S * rate)
    if y.size < frame:
        return math.nan, math.nan
    frames = librosa.util.frame(y, frame_length=frame, hop_length=hop).T
    energy = (frames**2).mean(axis=1)
    # voiced speech is the loud part; silence and weak fricatives give no formants
    loud = frames[energy > 0.4 * np.median(energy[energy > 0])] if energy.any() else frames[:0]
    from scipy.linalg import solve_toeplitz

    order = 12
    windowed = loud * np.hamming(frame)
    spec = np.fft.rfft(windowed, n=2 * frame, axis=1)
    acf = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, : order + 1]  # autocorrelation method
    f1s: list[float] = []
    f2s: list[float] = []
    for r in acf:
        if r[0] <= 0:
            continue
        r = r * np.exp(-0.5 * (2 * np.pi * 60 / rate * np.arange(order + 1)) ** 2)  # lag window
        r[0] *= 1.0 + 1e-9
        a = np.concatenate([[1.0], solve_toeplitz(r[:order], -r[1 : order + 1])])
        roots = [r for r in np.roots(a) if np.imag(r) > 0]
        freqs = np.angle(roots) * rate / (2 * np.pi)
        bws = -rate / np.pi * np.log(np.abs(roots))
        cand = sorted(f for f, b in zip(freqs, bws, strict=True) if 90 < f < 4500 and b < 400)
        if len(cand) >= 2:
            f1s.append(cand[0])
            f2s.append(cand[1])
    if not f1s:
        return math.nan, math.nan
    return float(np.median(f1s)), float(np.median(f2s))


def _spectral_slope(x: np.ndarray, sr: int) -> float:
    """Slope (dB per octave) of the long-term average spectrum between 100 Hz and 5 kHz."""
    from scipy.signal import welch

    freqs, power = welch(x, fs=sr, nperseg=min(2048, x.size))
    band = (freqs >= 100) & (freqs <= min(5000, sr / 2))
    if band.sum() < 4:
        return math.nan
    db = 10 * np.log10(power[band] + 1e-20)
    return float(np.polyfit(np.log2(freqs[band]), db, 1)[0])


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _semitones(f0: np.ndarray) -> np.ndarray:
    return 12.0 * np.log2(f0)


def _iqr(values: np.ndarray) -> float:
    q75, q25 = np.percentile(values, [75, 25])
    return float(q75 - q25)


def measure_edit(x: np.ndarray, y: np.ndarray, sr: int, tracker: str = "auto") -> dict[str, Any]:
    """The measured effect of turning ``x`` into ``y`` (both mono at ``sr``).

    Args:
        x: the input signal.
        y: the edited signal.
        sr: their rate in Hz.
        tracker: the F0 tracker, ``praat`` (parselmouth's autocorrelation pitch),
            ``pyin`` (librosa, slower) or ``auto`` (praat when installed).

    Undefined quantities (no voiced frame, silence) are NaN.
    """
    if tracker == "auto":
        tracker = "praat" if _praat_available() else "pyin"
    from cuelab.core.audio.edit_engines import integrated_loudness

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    f0_x = _pitch_track(x, sr, tracker)
    f0_y = _pitch_track(y, sr, tracker)
    out: dict[str, Any] = {"tracker": tracker}
    if f0_x.size and f0_y.size:
        st_x, st_y = _semitones(f0_x), _semitones(f0_y)
        out["f0_shift_st"] = float(np.median(st_y) - np.median(st_x))
        iqr_x = _iqr(st_x)
        out["f0_range_ratio"] = _iqr(st_y) / iqr_x if iqr_x > 0 else math.nan
    else:
        out["f0_shift_st"] = out["f0_range_ratio"] = math.nan
    out["duration_ratio"] = y.size / x.size
    rms_x, rms_y = _rms(x), _rms(y)
    out["rms_change_db"] = 20 * math.log10(rms_y / rms_x) if rms_x > 0 and rms_y > 0 else math.nan
    try:
        lx, ly = integrated_loudness(x, sr), integrated_loudness(y, sr)
    except Exception:  # too short for a BS.1770 block
        lx = ly = math.nan
    finite = math.isfinite(lx) and math.isfinite(ly)
    out["loudness_lufs"] = ly if math.isfinite(ly) else math.nan
    out["loudness_change_db"] = ly - lx if finite else math.nan
    f1_x, f2_x = _lpc_formants(x, sr)
    f1_y, f2_y = _lpc_formants(y, sr)
    out["f1_change_pct"] = (f1_y / f1_x - 1) * 100 if f1_x > 0 else math.nan
    out["f2_change_pct"] = (f2_y / f2_x - 1) * 100 if f2_x > 0 else math.nan
    out["tilt_change_db_oct"] = _spectral_slope(y, sr) - _spectral_slope(x, sr)
    vx, vy = _voice_quality(x, sr), _voice_quality(y, sr)
    for i, key in enumerate(("jitter_change_pct", "shimmer_change_pct", "hnr_change_db")):
        out[key] = vy[i] - vx[i]
    return out


def _voice_quality(x: np.ndarray, sr: int) -> tuple[float, float, float]:
    """Praat's local jitter and shimmer (%) and mean HNR (dB); NaN without parselmouth."""
    if not _praat_available():
        return math.nan, math.nan, math.nan
    import parselmouth
    from parselmouth.praat import call

    snd = parselmouth.Sound(np.asarray(x, dtype=np.float64), sampling_frequency=sr)
    try:
        points = call(snd, "To PointProcess (periodic, cc)", F0_FLOOR, F0_CEIL)
        jitter = call(points, "Get jitter (local)", 0, 0, 0.0001, 0.02, 1.3)
        shimmer = call([snd, points], "Get shimmer (local)", 0, 0, 0.0001, 0.02, 1.3, 1.6)
        hnr = call(call(snd, "To Harmonicity (cc)", _HOP_S, F0_FLOOR, 0.1, 1.0), "Get mean", 0, 0)
    except parselmouth.PraatError:  # no voiced periods
        return math.nan, math.nan, math.nan
    return float(jitter) * 100, float(shimmer) * 100, float(hnr)


def check_edit(chain: EditChain, measured: Mapping[str, Any]) -> list[str]:
    """Flags (sentences) where the measured effect misses the request or a side effect shows.

    A quantity that could not be measured (NaN) on a target is flagged too:
    an edit whose effect is unknown is not silently used.
    """
    flags: list[str] = []
    kinds = chain.kinds() or []
    moved: set[str] = set()
    for kind in kinds:
        moved |= _MOVES.get(kind, set())
    for edit in chain.edits:
        tol = TOLERANCES[edit.kind]
        if tol.target is None:
            continue
        key, expect, allowed = tol.target
        want = float(expect(edit.amount))
        got = measured.get(key, math.nan)
        if not isinstance(got, int | float) or not math.isfinite(got):
            flags.append(f"{edit.text()}: {key} could not be measured")
        elif abs(got - want) > allowed:
            flags.append(
                f"{edit.text()}: {key} is {got:.3g}, requested {want:.3g} (tolerance {allowed:g})"
            )
    for edit in chain.edits:
        if edit.kind in DIRECTIONS and edit.amount != 0:
            key, sign = DIRECTIONS[edit.kind]
            got = measured.get(key, math.nan)
            finite = isinstance(got, int | float) and math.isfinite(got)
            if finite and got * sign * math.copysign(1.0, edit.amount) <= 0:
                flags.append(f"{edit.text()}: {key} moved the wrong way ({got:+.3g})")
    limits: dict[str, float] = {}
    for kind in kinds:
        for key, limit in TOLERANCES[kind].side.items():
            if key not in moved:
                limits[key] = min(limit, limits.get(key, limit))
    for key, limit in limits.items():
        got = measured.get(key, math.nan)
        if not isinstance(got, int | float) or not math.isfinite(got):
            continue
        off = abs(got - 1.0) if _ratio_keys(key) else abs(got)
        if off > limit:
            flags.append(f"{chain.text()} moved {key} by {got:.3g} (limit {limit:g})")
    return flags
