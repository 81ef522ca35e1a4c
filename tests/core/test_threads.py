"""The thread policy and the feature pool's worker count (pure functions, real files)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cuelab.core.audio.io import write_audio
from cuelab.core.cues.workers import choose_workers
from cuelab.core.threads import ThreadsError, choose_threads, idle_cores, usable_cores


def test_an_explicit_request_wins_over_the_environment() -> None:
    env = {"CUELAB_THREADS": "3", "OMP_NUM_THREADS": "2"}
    choice = choose_threads(5, environ=env, cores=8, idle=0.0)
    assert (choice.threads, choice.source) == (5, "flag")
    assert choose_threads(None, environ=env, cores=8, idle=0.0).threads == 3
    with pytest.raises(ThreadsError):
        choose_threads(0, environ={}, cores=8, idle=8.0)
    with pytest.raises(ThreadsError, match="CUELAB_THREADS"):
        choose_threads(None, environ={"CUELAB_THREADS": "many"}, cores=8, idle=8.0)


def test_omp_num_threads_is_honoured_when_set() -> None:
    choice = choose_threads(None, environ={"OMP_NUM_THREADS": "2"}, cores=16, idle=16.0)
    assert (choice.threads, choice.source) == (2, "OMP_NUM_THREADS")
    # a value OpenMP itself rejects falls back to the measured default
    bad = choose_threads(None, environ={"OMP_NUM_THREADS": "x"}, cores=4, idle=4.0)
    assert bad.source == "free cores" and bad.threads == 4


@pytest.mark.parametrize(
    ("cores", "idle", "workers", "expected"),
    [
        (2, 2.0, 0, 2),  # idle machine: every core
        (2, 1.9, 0, 2),  # a little background noise still counts as idle
        (2, 1.1, 0, 1),  # one core busy elsewhere: one thread
        (2, 0.2, 0, 1),  # loaded: one thread, never zero
        (16, 16.0, 4, 12),  # feature workers running at the same time take their cores
        (16, 6.0, 2, 4),
        (4, 4.0, 8, 1),
    ],
)
def test_the_default_never_oversubscribes(
    cores: int, idle: float, workers: int, expected: int
) -> None:
    choice = choose_threads(None, feature_workers=workers, environ={}, cores=cores, idle=idle)
    assert choice.threads == expected and choice.source == "free cores"
    assert choice.threads + workers <= max(cores, workers + 1)
    assert choice.to_dict()["idle"] == round(idle, 2)


def test_idle_cores_is_measured_within_the_machine() -> None:
    free = idle_cores(window_s=0.05)
    assert 0.0 <= free <= usable_cores()


def _files(folder: Path, n: int, seconds: float) -> list[Path]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        path = folder / f"c{i}.wav"
        write_audio(path, (0.01 * rng.standard_normal(int(seconds * 16000))).astype(np.float32),
                    16000)  # fmt: skip
        out.append(path)
    return out


def test_feature_workers_follow_job_size_and_cores(tmp_path: Path) -> None:
    short = _files(tmp_path / "short", 8, 1.0)
    # 8 s of audio: less work than a helper costs to start, so this process alone
    assert choose_workers(short, cores=4).workers == 1
    long = _files(tmp_path / "long", 12, 40.0)  # 8 minutes of audio
    big = choose_workers(long, cores=4)
    assert big.workers == 4  # at most: how many start is decided while the job runs
    assert choose_workers(long, cores=2).workers == 2
    assert choose_workers(long, cores=1).workers == 1
    assert choose_workers(long[:3], cores=8).workers == 3  # never more than the files
    assert big.serial_s == pytest.approx(sum(big.work_s))


def test_applying_the_choice_does_not_import_torch_nor_pose_as_the_user() -> None:
    """A run whose models never need torch must not import it (in the window that import,
    on a worker thread, stalled the GUI thread); the OMP_NUM_THREADS it sets for a later
    torch import is not mistaken for the user's on the next choice."""
    code = (
        "import os, sys\n"
        "os.environ.pop('OMP_NUM_THREADS', None); os.environ.pop('CUELAB_THREADS', None)\n"
        "from cuelab.core.threads import apply_threads, choose_threads\n"
        "first = choose_threads(None, idle=1.0)\n"
        "apply_threads(first)\n"
        "again = choose_threads(None, idle=2.0)\n"
        "print('torch' in sys.modules, os.environ['OMP_NUM_THREADS'], first.source, again.source,"
        " sep='|')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    torch_loaded, omp, first_source, again_source = done.stdout.strip().split("|")
    assert torch_loaded == "False"
    assert omp == "1"
    assert first_source == again_source == "free cores"
