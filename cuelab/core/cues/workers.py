"""How many feature processes a job gets: a pool only where it pays for itself.

Kept apart from :mod:`cuelab.core.cues.feature_pool` (which runs the pool) so the
decision can be read, tested and benchmarked on its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cuelab.core.audio import io as audio
from cuelab.core.errors import AudioError

#: What a process pool costs (NOTES.md, 2-core machine): starting it, and each worker's extractor.
POOL_START_S = 1.0
POOL_WORKER_S = 0.32
#: Extraction time per second of audio in one process (eGeMAPS, ~20x real time), plus per file.
EXTRACT_S_PER_AUDIO_S = 0.05
EXTRACT_S_PER_FILE = 0.01
#: Throughput of w workers on w idle cores, relative to w times one (measured 1.65 for 2).
POOL_EFFICIENCY = 0.8
#: A pool is used only when its predicted time is at most this share of serial's, so that
#: a wrong guess (load arriving mid-run, slow pool start) stays within 5 % of serial.
POOL_MARGIN = 0.75


@dataclass(frozen=True)
class WorkerChoice:
    """How many feature processes a job gets, and the figures that decided it."""

    workers: int
    jobs: int
    idle_cores: float | None  # None: not measured (the job is too small for any pool)
    serial_s: float
    pool_s: float | None

    def describe(self) -> str:
        """For the progress line: ``1 worker`` / ``2 workers``."""
        return f"{self.workers} worker" + ("" if self.workers == 1 else "s")


def choose_workers(
    paths: Sequence[audio.PathLike],
    *,
    idle: float | None = None,
    cores: int | None = None,
) -> WorkerChoice:
    """Feature processes for extracting ``paths``: what pays for itself on this machine now.

    A pool costs about :data:`POOL_START_S` plus :data:`POOL_WORKER_S` per worker before the
    first clip, and it only helps on cores that are idle: with other processes on the
    cores, two workers ran at 0.76x the speed of one (NOTES.md). So the count is the one
    whose predicted time (start-up + work / (w x efficiency)) is lowest, among the idle
    cores measured now (:func:`cuelab.core.threads.idle_cores`); serial unless the pool's
    prediction is at most :data:`POOL_MARGIN` of serial's. Work is predicted from the
    files' durations (a header read each).
    """
    from cuelab.core.threads import idle_cores, usable_cores

    n_cores = cores if cores is not None else usable_cores()
    seconds = 0.0
    for p in paths:
        try:
            seconds += audio.audio_duration(p)
        except (AudioError, OSError):
            seconds += 3.0  # undecodable here: it will fail fast in the worker too
    serial = len(paths) * EXTRACT_S_PER_FILE + seconds * EXTRACT_S_PER_AUDIO_S
    cheapest_pool = POOL_START_S + 2 * POOL_WORKER_S
    if len(paths) < 2 or n_cores < 2 or cheapest_pool > POOL_MARGIN * serial:
        return WorkerChoice(1, len(paths), None, serial, None)
    free = idle if idle is not None else idle_cores(cores=n_cores)
    most = min(n_cores, len(paths), math.floor(free + 0.25))
    best, best_s = 1, serial
    for w in range(2, most + 1):
        pool = POOL_START_S + POOL_WORKER_S * w + serial / (w * POOL_EFFICIENCY)
        if pool <= POOL_MARGIN * serial and pool < best_s:
            best, best_s = w, pool
    return WorkerChoice(best, len(paths), free, serial, best_s if best > 1 else None)
