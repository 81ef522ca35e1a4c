"""A level-of-detail waveform: min/max pyramids, so a long clip draws as fast as a short one.

Handing pyqtgraph every visible sample of a long clip (a million or more at a
middle zoom) stalled the window for hundreds of milliseconds on each wheel step.
The pyramid holds the minimum and maximum of buckets of 16, 64, 256, … samples,
built once per clip; each view draws the coarsest level that still gives a few
buckets per pixel, so no redraw hands the curve more than a few thousand points.
This is what audio editors (Audacity's summary blocks, Sonic Visualiser's
waveform caches) do.
"""

from __future__ import annotations

import numpy as np

BASE = 16  # samples per bucket of the finest level
FACTOR = 4  # each level's buckets hold this many of the level below


class MinMaxPyramid:
    """Min/max summaries of a signal at bucket sizes BASE, BASE*FACTOR, …"""

    def __init__(self, x: np.ndarray) -> None:
        self.size = int(x.size)
        self.levels: list[tuple[int, np.ndarray, np.ndarray]] = []  # (bucket, mins, maxs)
        n = x.size // BASE
        tail = x[n * BASE :]
        #: The largest absolute sample (the view's amplitude range), found here, not
        #: on the GUI thread (a pass over 10 minutes of samples is 20-80 ms there).
        self.peak = float(np.max(np.abs(tail))) if tail.size else 0.0
        if n == 0:
            return
        blocks = x[: n * BASE].reshape(n, BASE)
        mins, maxs = blocks.min(axis=1), blocks.max(axis=1)
        self.peak = max(self.peak, float(-mins.min()), float(maxs.max()))
        bucket = BASE
        while True:
            self.levels.append((bucket, mins, maxs))
            m = mins.size // FACTOR
            if m < 2:
                break
            mins = mins[: m * FACTOR].reshape(m, FACTOR).min(axis=1)
            maxs = maxs[: m * FACTOR].reshape(m, FACTOR).max(axis=1)
            bucket *= FACTOR

    def level_for(self, span: int, max_buckets: int, raw_limit: int) -> int:
        """The finest level showing ``span`` samples in at most ``max_buckets`` buckets;
        -1 (the samples themselves) for spans of at most ``raw_limit`` samples."""
        if span <= raw_limit or not self.levels:
            return -1
        for i, (bucket, _mins, _maxs) in enumerate(self.levels):
            if span / bucket <= max_buckets:
                return i
        return len(self.levels) - 1

    def curve(self, level: int, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample positions and values of samples ``[a, b)`` at ``level`` (min and max of
        each bucket interleaved, so peaks and the outline survive)."""
        bucket, mins, maxs = self.levels[level]
        i0, i1 = a // bucket, min(mins.size, -(-b // bucket))
        y = np.empty(2 * (i1 - i0), dtype=np.float32)
        y[0::2], y[1::2] = mins[i0:i1], maxs[i0:i1]
        pos = np.repeat(np.arange(i0, i1, dtype=np.float64), 2) * bucket + bucket / 2
        return pos, y


def build_pyramid(x: np.ndarray, _sr: int) -> MinMaxPyramid:
    """The pyramid of ``x`` (a module-level function: a child process can be handed it)."""
    return MinMaxPyramid(x)
