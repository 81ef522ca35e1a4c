"""A long clip's openSMILE analysis runs in a child process (issue 26): same features,
typed errors, and a cancelled one stops its child at once."""

from __future__ import annotations

import multiprocessing
import pickle
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cuelab.core.cues import extract_signal
from cuelab.core.errors import AudioError, Cancelled
from cuelab.ui.analysis_process import PROCESS_MIN_S, extract_signal_isolated

SR = 16000


def voice_like(seconds: float) -> np.ndarray:
    """Harmonic tones gliding around 140 Hz, with pauses and a little noise."""
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(140 + 30 * np.sin(2 * np.pi * 0.3 * t)) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 6)) * (np.sin(2 * np.pi * 0.5 * t) > -0.3)
    noise = np.random.default_rng(0).standard_normal(t.size)
    return (0.2 * x / np.max(np.abs(x)) + 0.005 * noise).astype(np.float32)


def children() -> list[str]:
    return [p.name for p in multiprocessing.active_children() if p.name == "cuelab-analysis"]


def leftovers() -> list[Path]:
    shm = Path("/dev/shm")
    return list(shm.glob("cuelab-analysis-*")) if shm.is_dir() else []


def never() -> None:
    """A job that is never cancelled."""


def test_a_long_signal_is_analysed_in_a_child_with_the_same_features():
    x = voice_like(PROCESS_MIN_S + 1)
    main = threading.get_ident()
    pids = []
    seen = threading.Event()

    def check() -> None:  # called while the child works: it is another process
        pids.extend(p.pid for p in multiprocessing.active_children() if p.name == "cuelab-analysis")
        seen.set()
        assert threading.get_ident() == main

    isolated = extract_signal_isolated(x, SR, name="long", check=check)
    assert seen.is_set() and pids  # a child did the work
    assert pickle.dumps(isolated) == pickle.dumps(extract_signal(x, SR, name="long"))
    assert not children() and not leftovers()


def test_a_short_signal_stays_in_this_process():
    x = voice_like(3.0)
    calls = []
    feats = extract_signal_isolated(x, SR, name="short", check=lambda: calls.append(1))
    assert calls == []  # nothing to wait for: no child was started
    assert pickle.dumps(feats) == pickle.dumps(extract_signal(x, SR, name="short"))


def test_cancelling_kills_the_child_and_an_error_crosses_typed():
    x = voice_like(PROCESS_MIN_S + 1)
    t0 = time.monotonic()
    procs = []

    def cancel_soon() -> None:
        procs.extend(p for p in multiprocessing.active_children() if p.name == "cuelab-analysis")
        if time.monotonic() - t0 > 0.3:
            raise Cancelled("cancelled")

    with pytest.raises(Cancelled):
        extract_signal_isolated(x, SR, name="long", check=cancel_soon)
    assert procs[-1].exitcode == -signal.SIGKILL  # killed, not waited for
    assert not children() and not leftovers()

    bad = x.copy()
    bad[1000] = np.nan
    with pytest.raises(AudioError, match="bad"):
        extract_signal_isolated(bad, SR, name="bad", check=never)
    assert not children() and not leftovers()
