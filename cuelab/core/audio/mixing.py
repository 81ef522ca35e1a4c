"""Speech over a background recording at a chosen signal-to-noise ratio.

SSEU-style conditions place clean speech inside an acoustic scene. The SNR is
measured where it matters, over the span the speech occupies:
``SNR = 10·log10(ΣS² / ΣB²)`` with both sums over those samples. Speech keeps
its level and the background is scaled to reach the SNR; a single joint gain
then lowers both together when the sum, or either stem on its own, would
clip, so the SNR is unchanged and the written stems sum to the mix.

The background is cropped, or looped with short equal-power crossfades (no
click at the seams), to cover the lead-in (``onset``), the speech and a
tail. The arithmetic is pure numpy so the GUI's mixer panel and the command
line share it; :func:`mix_files` adds file input and output.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cuelab.core.audio.io import check_signal, load_audio, write_audio
from cuelab.core.errors import AudioError, CueLabError

PathLike = str | os.PathLike[str]

DEFAULT_SR = 44100
DEFAULT_CROSSFADE_S = 0.05
DEFAULT_PEAK = 0.99
# RMS under which a signal counts as silent (-100 dBFS, below 16-bit dither).
SILENCE_RMS = 1e-5
# Longest mix accepted (the longest clip load_audio accepts by default).
MAX_MIX_SECONDS = 600.0
# Largest finite |SNR| in dB: beyond it the quieter stem falls below float32
# resolution and the gains overflow float64 (use inf / -inf for one signal alone).
MAX_FINITE_SNR_DB = 300.0


class MixError(CueLabError):
    """A mix cannot be made: bad parameters, or silent speech or background."""


@dataclass(frozen=True)
class MixResult:
    """A mix and how it was made.

    ``mix == speech_stem + background_stem`` sample for sample. The stems are
    ``joint_gain · speech_gain · speech`` (placed at the onset) and
    ``joint_gain · background_gain · background`` (cropped or looped).

    Attributes:
        mix: float32 mono mixture.
        speech_stem: float32, the scaled speech at its place, zeros elsewhere.
        background_stem: float32, the scaled, cropped or looped background.
        sr: sample rate of all three.
        speech_gain: gain on the speech before the joint gain (1, or 0 for -inf).
        background_gain: gain on the background before the joint gain.
        joint_gain: the common anti-clipping gain (1 when nothing clipped).
        requested_snr_db: the SNR asked for.
        achieved_snr_db: the SNR measured on the stems over the speech span.
        onset_samples: first sample of the speech in the mix.
        looped: whether the background had to be looped.
        speech_samples: length of the speech in samples.
    """

    mix: np.ndarray
    speech_stem: np.ndarray
    background_stem: np.ndarray
    sr: int
    speech_gain: float
    background_gain: float
    joint_gain: float
    requested_snr_db: float
    achieved_snr_db: float
    onset_samples: int
    looped: bool

    speech_samples: int

    @property
    def speech_span(self) -> slice:
        """Samples of the mix that hold the speech."""
        return slice(self.onset_samples, self.onset_samples + self.speech_samples)


def parse_snr(text: str | float) -> float:
    """Read an SNR in dB; ``inf``/``+inf`` mean speech alone, ``-inf`` background alone.

    Raises:
        MixError: for text that is not a number, or NaN.
    """
    try:
        value = float(str(text).strip())
    except ValueError:
        raise MixError(f"SNR {text!r} is not a number of dB (or inf, -inf)") from None
    if math.isnan(value):
        raise MixError("SNR must be a number of dB (or inf, -inf), not NaN")
    return value


def measure_snr_db(speech: np.ndarray, background: np.ndarray) -> float:
    """``10·log10(ΣS² / ΣB²)``; +inf without background energy, -inf without speech."""
    ps = float(np.sum(np.square(speech, dtype=np.float64)))
    pb = float(np.sum(np.square(background, dtype=np.float64)))
    if pb == 0.0:
        return math.inf if ps > 0.0 else math.nan
    if ps == 0.0:
        return -math.inf
    return 10.0 * math.log10(ps / pb)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def loop_to_length(x: np.ndarray, n: int, crossfade: int) -> tuple[np.ndarray, bool]:
    """Crop ``x`` to ``n`` samples, or loop it with equal-power crossfades.

    Each repetition overlaps the previous one by ``crossfade`` samples, faded
    with cos/sin ramps whose squares sum to one, so an uncorrelated seam keeps
    the background's power and a correlated one has no step. The crossfade is
    shortened to half the signal when the signal is very short.

    Returns:
        ``(signal, looped)``: a float64 array of length ``n``, and whether it
        had to be looped.
    """
    x = np.asarray(x, dtype=np.float64)
    if n <= x.size:
        return x[:n].copy(), False
    xf = max(0, min(crossfade, x.size // 2))
    ramp = (np.arange(xf) + 0.5) / xf if xf else np.zeros(0)
    fade_in, fade_out = np.sin(0.5 * np.pi * ramp), np.cos(0.5 * np.pi * ramp)
    out = np.zeros(n + x.size)
    out[: x.size] = x
    end = x.size
    while end < n:
        start = end - xf
        out[start:end] = out[start:end] * fade_out + x[:xf] * fade_in
        out[end : start + x.size] = x[xf:]
        end = start + x.size
    return out[:n], True


def _check_params(
    sr: int, snr: float, onset_s: float, tail_s: float, peak: float, crossfade_s: float
) -> None:
    if sr <= 0:
        raise MixError(f"sample rate must be positive, got {sr}")
    if math.isnan(snr):
        raise MixError("SNR must be a number of dB (or inf, -inf), not NaN")
    if math.isfinite(snr) and abs(snr) > MAX_FINITE_SNR_DB:
        raise MixError(
            f"SNR {snr:g} dB is outside ±{MAX_FINITE_SNR_DB:g} dB "
            "(use inf for speech alone, -inf for background alone)"
        )
    if not (math.isfinite(crossfade_s) and crossfade_s >= 0.0):
        raise MixError(f"crossfade must be zero or more seconds, got {crossfade_s:g}")
    if not (math.isfinite(onset_s) and onset_s >= 0.0):
        raise MixError(f"onset must be zero or more seconds, got {onset_s:g}")
    if not (math.isfinite(tail_s) and tail_s >= 0.0):
        raise MixError(f"tail must be zero or more seconds, got {tail_s:g}")
    if not 0.0 < peak <= 1.0:
        raise MixError(f"peak limit must lie in (0, 1], got {peak:g}")


def mix_at_snr(
    speech: np.ndarray,
    background: np.ndarray,
    sr: int,
    snr_db: float,
    onset_s: float = 0.0,
    *,
    tail_s: float | None = None,
    crossfade_s: float = DEFAULT_CROSSFADE_S,
    peak: float = DEFAULT_PEAK,
    speech_name: str = "speech",
    background_name: str = "background",
) -> MixResult:
    """Place speech at ``onset_s`` inside a background and mix at ``snr_db``.

    The mix lasts ``onset + speech + tail`` seconds; the tail defaults to the
    onset, so the speech sits in the middle of equal background context.

    Args:
        speech: speech samples (mono, or multichannel to be averaged).
        background: background samples at the same rate.
        sr: their sample rate in Hz.
        snr_db: wanted SNR over the speech span; ``inf`` gives the speech
            alone, ``-inf`` the background alone.
        onset_s: where the speech starts in the mix, in seconds.
        tail_s: background after the speech ends, in seconds (None: the onset).
        crossfade_s: crossfade length at loop seams, in seconds.
        peak: the largest absolute sample the mix may have.
        speech_name: what to call the speech in error messages (its path).
        background_name: what to call the background in error messages.

    Returns:
        The :class:`MixResult`.

    Raises:
        MixError: bad parameters, silent speech (unless ``-inf``), or a silent
            background where the speech lies (unless ``inf``).
        AudioError: empty or non-finite signals.
    """
    tail = onset_s if tail_s is None else tail_s
    _check_params(sr, snr_db, onset_s, tail, peak, crossfade_s)
    s = check_signal(speech, sr, speech_name, min_seconds=0.0).astype(np.float64)
    b = check_signal(background, sr, background_name, min_seconds=0.0).astype(np.float64)
    total_s = onset_s + s.size / sr + tail
    if total_s > MAX_MIX_SECONDS:
        raise MixError(f"mix would last {total_s:.6g} s; the limit is {MAX_MIX_SECONDS:g} s")
    onset = round(onset_s * sr)
    span = slice(onset, onset + s.size)
    n = onset + s.size + round(tail * sr)
    bg, looped = loop_to_length(b, n, round(crossfade_s * sr))

    s_gain, b_gain = _gains(s, bg[span], snr_db, speech_name, background_name, onset_s, sr)
    speech_full = np.zeros(n)
    speech_full[span] = s_gain * s
    bg = b_gain * bg
    # One gain for everything written: the mix and both stems stay within ``peak``, so a
    # stem saved as integer PCM is never clipped where the mix is not, and the stems
    # always sum to the mix.
    top = max(float(np.max(np.abs(speech_full + bg))), float(np.max(np.abs(speech_full))),
              float(np.max(np.abs(bg))))  # fmt: skip
    joint = min(1.0, peak / top) if top > 0.0 else 1.0
    speech_stem = (joint * speech_full).astype(np.float32)
    background_stem = (joint * bg).astype(np.float32)
    return MixResult(
        mix=speech_stem + background_stem,
        speech_stem=speech_stem,
        background_stem=background_stem,
        sr=sr,
        speech_gain=s_gain,
        background_gain=b_gain,
        joint_gain=joint,
        requested_snr_db=float(snr_db),
        achieved_snr_db=measure_snr_db(speech_stem[span], background_stem[span]),
        speech_samples=s.size,
        onset_samples=onset,
        looped=looped,
    )


def _gains(
    s: np.ndarray,
    b_span: np.ndarray,
    snr: float,
    speech_name: str,
    background_name: str,
    onset_s: float,
    sr: int,
) -> tuple[float, float]:
    """Speech and background gains that give ``snr`` over the speech span."""
    if snr == -math.inf:
        return 0.0, 1.0
    if _rms(s) < SILENCE_RMS:
        raise MixError(f"{speech_name}: speech is silent (RMS below -100 dBFS)")
    if snr == math.inf:
        return 1.0, 0.0
    if _rms(b_span) < SILENCE_RMS:
        end = onset_s + s.size / sr
        raise MixError(
            f"{background_name}: background is silent where the speech lies "
            f"({onset_s:.2f}-{end:.2f} s), so no finite SNR can be reached"
        )
    ps = float(np.sum(s * s))
    pb = float(np.sum(b_span * b_span))
    return 1.0, math.sqrt(ps / (pb * 10.0 ** (snr / 10.0)))


def stem_paths(out_path: PathLike, stems_dir: PathLike) -> tuple[Path, Path]:
    """Where :func:`mix_files` writes the stems: ``<out stem>_speech`` / ``_background``."""
    out = Path(out_path)
    folder = Path(stems_dir)
    return (
        folder / f"{out.stem}_speech{out.suffix}",
        folder / f"{out.stem}_background{out.suffix}",
    )


def mix_files(
    speech_path: PathLike,
    background_path: PathLike,
    snr_db: float,
    out_path: PathLike,
    onset_s: float = 0.0,
    stems_dir: PathLike | None = None,
    sr: int = DEFAULT_SR,
    *,
    tail_s: float | None = None,
    crossfade_s: float = DEFAULT_CROSSFADE_S,
    peak: float = DEFAULT_PEAK,
) -> MixResult:
    """Mix two audio files and write the mono result (and optionally the stems).

    Both inputs are read through :func:`cuelab.core.audio.io.load_audio`, so any
    rate and channel count is accepted and resampled/downmixed to ``sr``.
    The output format follows ``out_path``'s suffix (``.wav`` float32 keeps
    the SNR exact; ``.flac`` is 24-bit).

    Args:
        speech_path: clean speech file.
        background_path: background recording.
        snr_db: wanted SNR in dB (``inf``/``-inf`` allowed).
        out_path: the mixture file to write.
        onset_s: where the speech starts, in seconds.
        stems_dir: when given, also write the scaled speech and background
            (see :func:`stem_paths`); they sum to the mix.
        sr: output rate in Hz.
        tail_s: background after the speech, in seconds (None: the onset).
        crossfade_s: loop crossfade length in seconds.
        peak: the largest absolute sample the mix may have.

    Returns:
        The :class:`MixResult`.

    Raises:
        AudioError: a missing, unreadable or unwritable file.
        MixError: see :func:`mix_at_snr`.
    """
    if sr <= 0:
        raise MixError(f"sample rate must be positive, got {sr}")
    out = Path(out_path)
    if out.resolve() in {Path(speech_path).resolve(), Path(background_path).resolve()}:
        raise AudioError(f"{out}: output would overwrite an input file")
    speech, _ = load_audio(speech_path, sr=sr, min_seconds=0.0)
    background, _ = load_audio(background_path, sr=sr, min_seconds=0.0)
    result = mix_at_snr(
        speech,
        background,
        sr,
        snr_db,
        onset_s,
        tail_s=tail_s,
        crossfade_s=crossfade_s,
        peak=peak,
        speech_name=str(speech_path),
        background_name=str(background_path),
    )
    write_audio(out, result.mix, sr)
    if stems_dir is not None:
        speech_out, background_out = stem_paths(out, stems_dir)
        write_audio(speech_out, result.speech_stem, sr)
        write_audio(background_out, result.background_stem, sr)
    return result
