"""Synthetic voiced signals for physics tests (numpy only)."""

from __future__ import annotations

import numpy as np

SR = 16000


def voiced(
    f0: float = 150.0,
    seconds: float = 1.5,
    amp: float = 0.3,
    tilt: float = 1.0,
    sr: int = SR,
    seed: int = 0,
) -> np.ndarray:
    """A harmonic 'vowel' with slight vibrato and spectral tilt ``k**-tilt``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    inst = f0 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(inst) / sr
    x = np.zeros_like(t)
    for k in range(1, int(4000 / f0)):
        x += k**-tilt * np.sin(k * phase)
    x = x / np.abs(x).max()
    x += 0.002 * rng.standard_normal(len(t))
    return (amp * x).astype(np.float32)
