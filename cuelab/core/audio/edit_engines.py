"""The engines behind :mod:`cuelab.core.audio.edits`: WORLD, Praat, plain filters.

Kept apart from the value objects so that parsing an edit (the CLI, TOML, the
window) never imports a vocoder. ``pyworld`` (MIT; the ``pyworld-prebuilt``
wheels need no compiler) is a dependency; ``parselmouth`` (GPL-3) is imported
only when the ``praat`` engine is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cuelab.core.audio.edits import (
    PRAAT_KINDS,
    Edit,
    EditChain,
    EditError,
    check_engine,
    parse_edit,
)

# WORLD analysis settings: 5 ms frames; the F0 search range covers adult and child speech.
FRAME_PERIOD_MS = 5.0
F0_FLOOR = 60.0
F0_CEIL = 700.0
# Tilt is applied relative to 1 kHz and held flat below this frequency (no boost at DC).
TILT_REF_HZ = 1000.0
TILT_FLOOR_HZ = 50.0
# Mean |e_i - e_{i+1}| of i.i.d. unit normals: turns a jitter / shimmer percentage
# (a mean cycle-to-cycle difference) into the std of a per-frame perturbation.
_MEAN_ABS_DIFF = 2.0 / math.sqrt(math.pi)


def _pyworld() -> Any:
    try:
        import pyworld
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise EditError("the world engine needs pyworld (pip install pyworld-prebuilt)") from exc
    return pyworld


def _parselmouth() -> Any:
    try:
        import parselmouth
    except ImportError:
        raise EditError(
            "the praat engine needs praat-parselmouth, which is GPL-3 and not installed "
            "by default: pip install 'cuelab[praat]'"
        ) from None
    return parselmouth


@dataclass(frozen=True)
class WorldAnalysis:
    """WORLD's parameters of one signal: F0 per frame, spectral envelope, aperiodicity.

    Analysis is about 80 % of an edit's cost, so a caller that edits one clip many
    ways (the window's sliders, a sweep, the edits of a run) analyses once and
    passes this to :func:`apply_edit`.
    """

    f0: np.ndarray
    sp: np.ndarray
    ap: np.ndarray
    sr: int
    n_samples: int


def analyse_world(x: np.ndarray, sr: int) -> WorldAnalysis:
    """DIO + StoneMask F0, CheapTrick envelope and D4C aperiodicity of ``x``."""
    pw = _pyworld()
    x = np.ascontiguousarray(x, dtype=np.float64)
    f0, t = pw.dio(x, sr, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=FRAME_PERIOD_MS)
    f0 = pw.stonemask(x, f0, t, sr)
    fft_size = pw.get_cheaptrick_fft_size(sr, F0_FLOOR)  # one size for both, at any rate
    sp = pw.cheaptrick(x, f0, t, sr, f0_floor=F0_FLOOR, fft_size=fft_size)
    ap = pw.d4c(x, f0, t, sr, fft_size=fft_size)
    return WorldAnalysis(f0, sp, ap, sr, x.size)


def world_edit(
    x: np.ndarray,
    sr: int,
    edits: Sequence[Edit],
    *,
    seed: int = 0,
    analysis: WorldAnalysis | None = None,
) -> np.ndarray:
    """Apply the edits to WORLD's F0 / envelope / aperiodicity of ``x`` and synthesise."""
    pw = _pyworld()
    if analysis is None or analysis.sr != sr or analysis.n_samples != x.size:
        analysis = analyse_world(x, sr)
    f0, sp, ap = analysis.f0, analysis.sp, analysis.ap
    voiced = f0 > 0
    rng = np.random.default_rng(seed)
    frame_period = FRAME_PERIOD_MS
    tempo = 1.0
    for e in edits:
        if e.kind == "pitch":
            f0 = f0 * 2.0 ** (e.amount / 12.0)
        elif e.kind == "pitch-range" and voiced.any():
            log_f0 = np.log2(f0[voiced])
            median = float(np.median(log_f0))
            f0 = f0.copy()
            f0[voiced] = 2.0 ** (median + e.amount * (log_f0 - median))
        elif e.kind == "tempo":
            tempo = e.amount
            frame_period = FRAME_PERIOD_MS / tempo
        elif e.kind == "formant":
            sp = _warp_envelope(sp, e.amount)
        elif e.kind == "jitter":
            sigma = e.amount / 100.0 / _MEAN_ABS_DIFF
            f0 = np.where(voiced, f0 * (1.0 + sigma * rng.standard_normal(f0.size)), 0.0)
        elif e.kind == "shimmer":
            sigma = e.amount / 100.0 / _MEAN_ABS_DIFF
            amp = np.clip(1.0 + sigma * rng.standard_normal(f0.size), 0.05, None)
            sp = sp * np.where(voiced, amp**2, 1.0)[:, None]
        elif e.kind == "breathiness":
            ap = np.clip(ap * 10.0 ** (e.amount / 20.0), 1e-3, 1.0 - 1e-9)
    y = pw.synthesize(
        np.ascontiguousarray(f0), np.ascontiguousarray(sp), np.ascontiguousarray(ap), sr,
        frame_period,
    )  # fmt: skip
    return _fit_length(y, round(x.size / tempo))


def _warp_envelope(sp: np.ndarray, ratio: float) -> np.ndarray:
    """Move every spectral-envelope feature (so the formants) up by ``ratio``."""
    bins = np.arange(sp.shape[1], dtype=np.float64)
    source = np.clip(bins / ratio, 0, sp.shape[1] - 1)
    out = np.empty_like(sp)
    for i, frame in enumerate(sp):
        out[i] = np.interp(source, bins, frame)
    return out


def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """WORLD's output ends on a frame boundary: trim or zero-pad to the expected length."""
    if y.size >= n:
        return y[:n]
    return np.concatenate([y, np.zeros(n - y.size)])


def praat_edit(x: np.ndarray, sr: int, edits: Sequence[Edit]) -> np.ndarray:
    """Praat's "Change gender" (PSOLA; resampling for a formant ratio other than 1)."""
    pm = _parselmouth()
    from parselmouth.praat import call

    amounts = {e.kind: e.amount for e in edits}
    snd = pm.Sound(np.ascontiguousarray(x, dtype=np.float64), sampling_frequency=sr)
    new_median = 0.0  # Praat: 0 keeps the median
    if "pitch" in amounts:
        pitch = snd.to_pitch(pitch_floor=F0_FLOOR, pitch_ceiling=F0_CEIL)
        median = call(pitch, "Get quantile", 0, 0, 0.5, "Hertz")
        if not math.isfinite(median):
            raise EditError("the praat engine found no voiced frame to shift")
        new_median = float(median) * 2.0 ** (amounts["pitch"] / 12.0)
    out = call(
        snd,
        "Change gender",
        F0_FLOOR,
        F0_CEIL,
        amounts.get("formant", 1.0),
        new_median,
        amounts.get("pitch-range", 1.0),
        1.0 / amounts.get("tempo", 1.0),
    )
    y = np.asarray(out.values, dtype=np.float64)[0]
    return _fit_length(y, round(x.size / amounts.get("tempo", 1.0)))


def apply_filter(x: np.ndarray, sr: int, edit: Edit) -> np.ndarray:
    """Gain, loudness normalisation or spectral tilt (no resynthesis)."""
    if edit.kind == "gain":
        return x * 10.0 ** (edit.amount / 20.0)
    if edit.kind == "tilt":
        return _tilt(x, sr, edit.amount)
    if edit.kind == "loudness":
        return _normalise_loudness(x, sr, edit.amount)
    raise EditError(f"{edit.kind} is not a filter edit")  # pragma: no cover


def _tilt(x: np.ndarray, sr: int, db_per_octave: float) -> np.ndarray:
    """Zero-phase spectral tilt: ``db_per_octave * log2(f / 1 kHz)``, flat below 50 Hz."""
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(x.size, 1.0 / sr)
    octaves = np.log2(np.maximum(freqs, TILT_FLOOR_HZ) / TILT_REF_HZ)
    return np.fft.irfft(spectrum * 10.0 ** (db_per_octave * octaves / 20.0), n=x.size)


def integrated_loudness(x: np.ndarray, sr: int) -> float:
    """ITU-R BS.1770 integrated loudness in LUFS (``pyloudnorm``); -inf for silence."""
    try:
        import pyloudnorm
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise EditError("loudness needs pyloudnorm (pip install pyloudnorm)") from exc
    if x.size < int(0.4 * sr):
        raise EditError("loudness needs at least 0.4 s of audio (one BS.1770 block)")
    return float(pyloudnorm.Meter(sr).integrated_loudness(np.asarray(x, dtype=np.float64)))


def _normalise_loudness(x: np.ndarray, sr: int, target: float) -> np.ndarray:
    current = integrated_loudness(x, sr)
    if not math.isfinite(current):
        raise EditError("loudness: the audio is silent (no gated block), nothing to normalise")
    return x * 10.0 ** ((target - current) / 20.0)


def apply_edit(
    x: np.ndarray,
    sr: int,
    chain: EditChain | str,
    engine: str = "world",
    *,
    seed: int = 0,
    analysis: WorldAnalysis | None = None,
) -> np.ndarray:
    """The edited signal (float32, mono, same rate; its length changes with tempo).

    Args:
        x: mono samples.
        sr: their rate in Hz.
        chain: the edit (or its text).
        engine: ``world`` or ``praat`` (resynthesis edits only).
        seed: seeds the random perturbations of jitter and shimmer, so an
            edit of a clip is reproducible.
        analysis: ``x``'s WORLD analysis from :func:`analyse_world`, reused (world
            engine only; ignored when it is of another signal length or rate).

    Raises:
        EditError: a bad edit, an engine that is missing or cannot do the edit,
            or a signal the engine cannot analyse.
    """
    if isinstance(chain, str):
        chain = parse_edit(chain)
    name = check_engine(engine, chain)
    y = np.asarray(x, dtype=np.float64)
    if y.ndim != 1 or y.size == 0:
        raise EditError("an edit needs a non-empty mono signal")
    if chain.needs_engine:
        resynth = [e for e in chain.edits if e.needs_engine]
        if name == "world":
            y = world_edit(y, sr, resynth, seed=seed, analysis=analysis)
        else:
            y = praat_edit(y, sr, resynth)
    for e in chain.edits:
        if not e.needs_engine:
            y = apply_filter(y, sr, e)
    return y.astype(np.float32)


__all__ = [
    "PRAAT_KINDS",
    "WorldAnalysis",
    "analyse_world",
    "apply_edit",
    "apply_filter",
    "integrated_loudness",
]
