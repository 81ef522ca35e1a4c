"""Feature extraction shared between this process and helper processes (one queue).

The helpers are real pool processes. A helper is made late (its pool starts after a
pause) or slow (it sleeps before each clip) by the function it runs; the caller runs
the same function without the pause. Whatever the helpers do, every clip's features
must equal serial extraction's, in input order, each settled once.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cuelab.core.cues import ClipFeatures, FeatureCache, FeatureConfig, extract_many
from cuelab.core.cues.extract import extract_clip
from cuelab.core.cues.feature_pool import _mp_context
from cuelab.core.cues.workers import choose_workers, helper_pays, run_shared
from cuelab.core.jobs import JobControl, pool_worker_init
from cuelab.core.threads import usable_cores
from tests.core.cues.test_features import harmonic, make_clips, write_clip


def pace(
    path: str, caller: int, marker: str, helper_delay_s: float, caller_delay_s: float
) -> tuple[int, ClipFeatures]:
    """Extract ``path``; in a helper, say so in ``marker`` and sleep first; in the caller,
    wait (at most 60 s) until a helper has taken a clip, so the queue is really shared,
    and sleep ``caller_delay_s``."""
    if os.getpid() == caller:
        deadline = time.monotonic() + 60
        while not os.path.exists(marker) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(caller_delay_s)
    else:
        Path(marker).touch()
        time.sleep(helper_delay_s)
    return os.getpid(), extract_clip(path, FeatureConfig(), max_seconds=600.0)


def _pool(pause_s: float = 0.0) -> Any:
    ctx = _mp_context()

    def start(n: int) -> cf.Executor:
        time.sleep(pause_s)  # a late helper
        return cf.ProcessPoolExecutor(n, mp_context=ctx, initializer=pool_worker_init,
                                      initargs=(os.getpid(),))  # fmt: skip

    return start


def _share(
    clips: list[Path], tmp: Path, helper_delay_s: float, pause_s: float, caller_delay_s: float
) -> Any:
    """Run ``clips`` through :func:`run_shared` with one helper; what each job gave."""
    marker = str(tmp / "helper-started")
    got: dict[int, tuple[int, ClipFeatures]] = {}
    settled: list[int] = []
    notes: list[str] = []

    def settle(i: int, result: Any, exc: BaseException | None) -> None:
        assert exc is None, exc
        settled.append(i)
        got[i] = result

    def task(i: int) -> tuple[Any, tuple[Any, ...]]:
        return pace, (str(clips[i]), os.getpid(), marker, helper_delay_s, caller_delay_s)

    complete = run_shared([0.05] * len(clips), task, settle, helpers=1, start_pool=_pool(pause_s),
                          stop=lambda: False, on_workers=notes.append, grow=False)  # fmt: skip
    assert complete
    return got, settled, notes


def _helpers_gone(within_s: float = 60.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not any(t.name == "cuelab-feature-helpers" for t in threading.enumerate()):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("clips")
    return make_clips(folder, [float(f) for f in range(120, 360, 20)])  # 12 clips


@pytest.fixture(scope="module")
def serial(clips: list[Path]) -> list[dict[str, Any]]:
    return [f.to_dict() for f in extract_many(clips, workers=1)]


def test_a_late_slow_helper_takes_few_clips_and_changes_nothing(
    clips: list[Path], serial: list[dict[str, Any]], tmp_path: Path
) -> None:
    got, settled, notes = _share(
        clips, tmp_path, helper_delay_s=0.6, pause_s=0.3, caller_delay_s=0.1
    )
    assert sorted(settled) == list(range(len(clips)))  # each clip settled once
    assert [got[i][1].to_dict() for i in range(len(clips))] == serial  # identical, in order
    by_helper = [i for i, (pid, _) in got.items() if pid != os.getpid()]
    assert 1 <= len(by_helper) < len(clips) // 2  # it took part, and took fewer clips
    assert notes[0] == "1 worker, 1 starting" and "2 workers" in notes
    assert _helpers_gone()


def test_a_hung_helper_does_not_hold_up_the_end(
    clips: list[Path], serial: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The clip a helper holds is extracted here too once the queue is empty (a backup
    task); the first result wins and the hung helper is stopped."""
    got, settled, _ = _share(clips, tmp_path, helper_delay_s=120.0, pause_s=0.0, caller_delay_s=0.0)
    assert sorted(settled) == list(range(len(clips)))
    assert [got[i][1].to_dict() for i in range(len(clips))] == serial
    assert {pid for pid, _ in got.values()} == {os.getpid()}  # the helper finished none
    assert _helpers_gone()


def test_helpers_that_cannot_start_leave_the_work_here(
    clips: list[Path], serial: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(n: int) -> cf.Executor:
        raise OSError("no more processes")

    got: dict[int, ClipFeatures] = {}

    def settle(i: int, result: Any, exc: BaseException | None) -> None:
        got[i] = result

    def task(i: int) -> tuple[Any, tuple[Any, ...]]:
        return _extract, (str(clips[i]), FeatureConfig(), 600.0)

    with caplog.at_level(logging.WARNING, logger="cuelab.core.cues.workers"):
        run_shared([0.05] * len(clips), task, settle, helpers=1, start_pool=refuse,
                   stop=lambda: False, grow=False)  # fmt: skip
    assert [got[i].to_dict() for i in range(len(clips))] == serial
    assert "no more processes" in caplog.text


def _cache_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.json"))}


@pytest.mark.parametrize("workers", [2, None])
def test_shared_extraction_writes_the_serial_cache_byte_for_byte(
    tmp_path: Path, workers: int | None
) -> None:
    """Auto here is a job big enough for a helper (whether one starts depends on the
    idle cores now); ``2`` starts one whatever the load."""
    clips = [write_clip(tmp_path / f"long{i}.wav", harmonic(110.0 + 15 * i, 5.0))
             for i in range(8)]  # fmt: skip
    assert choose_workers(clips).workers >= min(2, usable_cores())
    one = FeatureCache(tmp_path / "one")
    many = FeatureCache(tmp_path / "many")
    serial = [f.to_dict() for f in extract_many(clips, cache=one, workers=1)]
    notes: list[str] = []
    control = JobControl(lambda info: notes.append(info.message))
    feats = extract_many([*clips, clips[0]], cache=many, workers=workers, control=control)
    assert [f.to_dict() for f in feats] == [*serial, serial[0]]  # input order, duplicate too
    assert _cache_bytes(many.root) == _cache_bytes(one.root)
    assert len(_cache_bytes(one.root)) == len(clips)
    assert notes[-1] in ("1 worker", "2 workers")  # the progress line says how many ran


def test_the_count_follows_the_job_not_a_measurement(clips: list[Path]) -> None:
    # 12 clips of 0.6 s: less work than a helper costs to start, so this process alone
    small = choose_workers(clips, cores=4)
    assert small.workers == 1 and small.jobs == len(clips) and len(small.work_s) == len(clips)
    assert choose_workers([], cores=4).workers == 1
    # a helper pays once the work left outlasts its start by its extractor's cost
    assert not helper_pays(1.0, 1) and helper_pays(8.0, 1)
    assert helper_pays(3.0, 1, start_s=0.0) and not helper_pays(0.5, 1, start_s=0.0)
    # more processes already running: each further helper needs more work to pay
    assert helper_pays(8.0, 1) and not helper_pays(8.0, 6)


def _extract(path: str, config: FeatureConfig, max_seconds: float) -> ClipFeatures:
    """A picklable task for the pool: one clip's features."""
    return extract_clip(path, config, max_seconds=max_seconds)
