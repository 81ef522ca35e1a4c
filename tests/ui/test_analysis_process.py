"""A long clip's openSMILE analysis runs in a child process (issue 26): same features,
typed errors, and a cancelled one stops its child at once."""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import signal
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cuelab.core import errors
from cuelab.core.cues import extract_signal
from cuelab.core.errors import AudioError, Cancelled, CueLabError, FeatureError
from cuelab.ui import analysis_process
from cuelab.ui.analysis_process import (
    CHILD_NICE,
    PROCESS_MIN_S,
    extract_signal_isolated,
    run_isolated,
    samples_file,
)
from cuelab.ui.dsp import clip_spectrogram, intensity_db
from cuelab.ui.waveform_lod import MinMaxPyramid, build_pyramid

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
    """This process's files in RAM, once the arrays they were written for are freed."""
    gc.collect()
    folders = [Path("/dev/shm"), Path(tempfile.gettempdir())]
    return [p for d in folders if d.is_dir() for p in d.glob(f"cuelab-*-{os.getpid()}-*")]


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
    del x
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
    assert not children()

    bad = x.copy()
    del x
    bad[1000] = np.nan
    with pytest.raises(AudioError, match="bad"):
        extract_signal_isolated(bad, SR, name="bad", check=never)
    del bad
    assert not children() and not leftovers()


def _niceness(_x: np.ndarray, _sr: int) -> int:
    """The process's nice value (run in the child by run_isolated)."""
    return os.nice(0)


def test_the_clip_passes_come_back_from_a_child_equal_and_writable():
    """The waveform pyramid, the clip spectrogram and the intensity curve of a long clip
    are computed in a child (issue 26: in threads they stalled the window), and their
    arrays come back through mapped buffers equal to the in-process result."""
    x = voice_like(PROCESS_MIN_S + 1)
    seen = []

    def check() -> None:
        seen.extend(p.pid for p in multiprocessing.active_children() if p.name == "cuelab-analysis")

    spec = run_isolated(clip_spectrogram, x, SR, 0.005, 5000.0, name="spec", check=check)
    assert seen  # a child computed it
    here = clip_spectrogram(x, SR, 0.005, 5000.0)
    assert spec.db.shape == here.db.shape and np.array_equal(spec.db, here.db)
    assert (spec.dt, spec.df, spec.t0) == (here.dt, here.df, here.t0)
    spec.db[0, 0] = 1.0  # a private copy: the view code may write to it
    pyramid = run_isolated(build_pyramid, x, SR, name="wave", check=never)
    expected = MinMaxPyramid(x)
    assert pyramid.peak == expected.peak and len(pyramid.levels) == len(expected.levels)
    for (b1, lo1, hi1), (b2, lo2, hi2) in zip(pyramid.levels, expected.levels, strict=True):
        assert b1 == b2 and np.array_equal(lo1, lo2) and np.array_equal(hi1, hi2)
    t, db = run_isolated(intensity_db, x, SR, name="intensity", check=never)
    t2, db2 = intensity_db(x, SR)
    assert np.array_equal(t, t2) and np.array_equal(db, db2)
    del x
    assert not children() and not leftovers()


def test_the_child_runs_at_a_lower_priority_and_short_signals_stay_here():
    x = voice_like(PROCESS_MIN_S + 1)
    lower = min(19, os.nice(0) + CHILD_NICE)  # nice stops at 19
    assert run_isolated(_niceness, x, SR, name="n", check=never) == lower
    assert run_isolated(_niceness, x[: SR * 5], SR, name="n", check=never) == os.nice(0)
    del x
    assert not children() and not leftovers()


def test_a_clip_is_written_once_for_all_its_passes_and_removed_when_freed(tmp_path):
    """Four passes over one clip share one samples file (four 38 MB writes at once
    starved the GUI thread); it goes with the array, and a killed window's files are
    removed by the next one."""
    x = voice_like(PROCESS_MIN_S + 1)
    first = samples_file(x)
    assert samples_file(x) == first
    assert np.array_equal(np.fromfile(first, dtype=np.float32), x)
    for fn in (build_pyramid, intensity_db, _niceness):
        run_isolated(fn, x, SR, name="x", check=never)
    assert samples_file(x) == first and Path(first).exists()
    assert [p for p in leftovers() if "result" in p.name] == []
    del x
    gc.collect()
    assert not Path(first).exists()
    # A window killed with SIGKILL leaves its files; the next process's first pass
    # removes them (its pid is gone), and leaves a live process's alone.
    # (The system's temporary folder: swept like /dev/shm, and present everywhere.)
    folder = Path(tempfile.gettempdir())
    dead = multiprocessing.get_context("spawn").Process(target=os.getpid)
    dead.start()
    dead.join()
    stale = folder / f"cuelab-samples-{dead.pid}-abc123"
    live = folder / f"cuelab-samples-{os.getppid()}-abc123"
    stale.write_bytes(b"x")
    live.write_bytes(b"x")
    try:
        analysis_process._swept = False
        run_isolated(_niceness, voice_like(PROCESS_MIN_S + 1), SR, name="x", check=never)
        assert not stale.exists() and live.exists()
    finally:
        for p in (stale, live):
            p.unlink(missing_ok=True)


def test_a_small_dev_shm_sends_the_files_to_the_disk():
    """A container's /dev/shm is often 64 MB: a file that would leave less than
    SHM_SPARE there goes to the system's temporary folder instead of failing."""
    from cuelab.ui.analysis_process import SHM_SPARE, temp_dir_for

    need = 40 << 20
    assert temp_dir_for(need, need + SHM_SPARE) == Path("/dev/shm")
    assert temp_dir_for(need, need + SHM_SPARE - 1) is None
    assert temp_dir_for(need, 0) is None


def _dies(_x: np.ndarray, _sr: int) -> None:
    """A child that ends without a word (as a crash in a library would)."""
    os._exit(3)


def _empty(x: np.ndarray, _sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Two empty arrays: buffers of no bytes."""
    return x[:0].copy(), np.zeros((0, 4), dtype=np.float32)


def test_a_child_that_dies_is_an_error_and_empty_results_come_back():
    x = voice_like(PROCESS_MIN_S + 1)
    with pytest.raises(FeatureError, match="the analysis process died"):
        run_isolated(_dies, x, SR, name="dies", check=never)
    a, b = run_isolated(_empty, x, SR, name="empty", check=never)
    assert a.shape == (0,) and b.shape == (0, 4) and b.dtype == np.float32
    del x
    assert not children() and not leftovers()


def _refuses(_x: np.ndarray, _sr: int) -> None:
    """A CueLab error with a subject and a remedy, raised in the child."""
    raise AudioError("long.wav: not decodable", subject="long.wav", remedy=errors.RESUME)


def _breaks(_x: np.ndarray, _sr: int) -> None:
    raise ZeroDivisionError("division by zero")


def test_a_childs_error_crosses_as_itself_with_its_subject_and_remedy():
    """The window offers an error's remedy (e.g. Resume) whichever process raised it."""
    x = voice_like(PROCESS_MIN_S + 1)
    with pytest.raises(AudioError) as caught:
        run_isolated(_refuses, x, SR, name="long", check=never)
    assert str(caught.value) == "long.wav: not decodable"
    assert caught.value.subject == "long.wav" and caught.value.remedies == (errors.RESUME,)
    with pytest.raises(CueLabError) as other:
        run_isolated(_breaks, x, SR, name="long", check=never)
    assert str(other.value) == "long: ZeroDivisionError: division by zero"
