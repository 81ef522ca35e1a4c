"""VOICE_QUALITY: a documented rule set over robust voice-source measures.

Inputs are the clip's descriptor means as robust z-scores against the norms
profile (``(x − median) / IQR``), so every threshold below is in the
profile's robust units and stored in the profile (``voice_quality``), where a
user can tune it. Rules are tried in order; the first that fires wins.

1. **UNVOICED** — fewer than ``min_voiced_ratio`` of the frames carry F0 (or
   none does). Silence, whisper and noise have no periodic glottal source,
   so no other voice-quality label is meaningful.
2. **CREAKY** — F0 well below the norm (``f0 ≤ creaky_f0_z``) *and* high
   jitter (``jitter ≥ creaky_jitter_z``). Vocal fry is slow, irregular
   glottal pulsing: low and unstable F0.
3. **ROUGH** — high cycle-to-cycle perturbation (``jitter ≥ rough_jitter_z``
   or ``shimmer ≥ rough_shimmer_z``) together with a low harmonics-to-noise
   ratio (``hnr ≤ rough_hnr_z``). Irregular fold vibration shows as both
   period/amplitude perturbation and aperiodic energy.
4. **BREATHY** — a strong first harmonic (``h1h2 ≥ breathy_h1h2_z``: long
   open phase) with turbulence or a steep tilt (``hnr ≤ breathy_hnr_z`` or
   ``h1a3 ≥ breathy_h1a3_z``). Incomplete closure leaks air: noise rises,
   higher harmonics fall.
5. **PRESSED** — a weak first harmonic and flat tilt (``h1h2 ≤
   pressed_h1h2_z`` and ``h1a3 ≤ pressed_h1a3_z``). Strong adduction shortens
   the open phase and boosts the higher harmonics.
6. **MODAL** — none of the above: regular phonation near the norm.

A measure that is undefined (NaN) never makes a rule fire.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

F0 = "F0semitoneFrom27.5Hz_sma3nz"
JITTER = "jitterLocal_sma3nz"
SHIMMER = "shimmerLocaldB_sma3nz"
HNR = "HNRdBACF_sma3nz"
H1H2 = "logRelF0-H1-H2_sma3nz"
H1A3 = "logRelF0-H1-A3_sma3nz"

#: Descriptors the rules read (their medians/IQRs must be in the profile).
VQ_DESCRIPTORS: tuple[str, ...] = (F0, JITTER, SHIMMER, HNR, H1H2, H1A3)

DEFAULT_THRESHOLDS: dict[str, float] = {
    "min_voiced_ratio": 0.15,
    "creaky_f0_z": -1.0,
    "creaky_jitter_z": 1.0,
    "rough_jitter_z": 1.5,
    "rough_shimmer_z": 1.5,
    "rough_hnr_z": -1.0,
    "breathy_h1h2_z": 1.0,
    "breathy_hnr_z": -0.5,
    "breathy_h1a3_z": 1.0,
    "pressed_h1h2_z": -1.0,
    "pressed_h1a3_z": -1.0,
}


def _ge(x: float, t: float) -> bool:
    return math.isfinite(x) and x >= t


def _le(x: float, t: float) -> bool:
    return math.isfinite(x) and x <= t


def classify_voice_quality(
    z: Mapping[str, float], voiced_ratio: float, thresholds: Mapping[str, float] | None = None
) -> tuple[str, str]:
    """Return ``(token, reason)`` for robust z-scores ``z`` (see the module docstring)."""
    th = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    f0, jit, shim = (z.get(k, math.nan) for k in (F0, JITTER, SHIMMER))
    hnr, h1h2, h1a3 = (z.get(k, math.nan) for k in (HNR, H1H2, H1A3))
    if not (voiced_ratio >= th["min_voiced_ratio"]) or not math.isfinite(f0):
        return "UNVOICED", f"voiced frames {voiced_ratio:.0%} < {th['min_voiced_ratio']:.0%}"
    if _le(f0, th["creaky_f0_z"]) and _ge(jit, th["creaky_jitter_z"]):
        return "CREAKY", f"low F0 (z={f0:.2f}) with high jitter (z={jit:.2f})"
    if (_ge(jit, th["rough_jitter_z"]) or _ge(shim, th["rough_shimmer_z"])) and _le(
        hnr, th["rough_hnr_z"]
    ):
        return "ROUGH", f"perturbation (jitter z={jit:.2f}, shimmer z={shim:.2f}), HNR z={hnr:.2f}"
    if _ge(h1h2, th["breathy_h1h2_z"]) and (
        _le(hnr, th["breathy_hnr_z"]) or _ge(h1a3, th["breathy_h1a3_z"])
    ):
        return "BREATHY", f"strong H1 (H1-H2 z={h1h2:.2f}), HNR z={hnr:.2f}, H1-A3 z={h1a3:.2f}"
    if _le(h1h2, th["pressed_h1h2_z"]) and _le(h1a3, th["pressed_h1a3_z"]):
        return "PRESSED", f"weak H1 (H1-H2 z={h1h2:.2f}) and flat tilt (H1-A3 z={h1a3:.2f})"
    return "MODAL", "no rule fired: regular phonation near the norm"
