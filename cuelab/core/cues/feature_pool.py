"""Features of many clips: cache hits first, then the misses on a process pool.

The pool is started from ``forkserver`` (safe from the window's threads), holds
Ctrl-C and SIGTERM back while it runs, and caches each result as it arrives.
How many workers pay for themselves is :mod:`cuelab.core.cues.workers`' rule.
Each file is read once here (:func:`~cuelab.core.audio.io.read_clip`): its hash
looks up the cache, and a miss is decoded from the same bytes in a worker.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from cuelab.core.audio import io as audio
from cuelab.core.cues.extract import ClipFeatures, FeatureConfig, extract_clip
from cuelab.core.cues.feature_cache import FeatureCache, cache_key, checked_hit
from cuelab.core.cues.workers import choose_workers, run_shared
from cuelab.core.errors import AudioError, CueLabError, FeatureError
from cuelab.core.jobs import JobControl, pool_worker_init

#: Bytes of missed clips one call keeps in memory to hand to the extraction; the
#: misses past it are read again when extracted, so memory stays bounded.
MISS_BYTES_HELD = 64 << 20


def _mp_context() -> multiprocessing.context.BaseContext:
    """A start method that is safe from a threaded (GUI) process.

    ``fork`` copies a process with other threads' locks held and can deadlock
    it; ``forkserver`` forks workers from a clean server process that has the
    heavy modules preloaded, so each pool starts quickly after the first.
    """
    if sys.platform != "win32" and "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["opensmile", "cuelab.core.cues.feature_pool"])
        _start_forkserver()
        return ctx
    return multiprocessing.get_context("spawn")


@contextlib.contextmanager
def _signals_held() -> Iterator[list[int]]:
    """Hold SIGINT and SIGTERM back for the block (main thread); they are raised after it.

    Yields the list of signals noted meanwhile, for the block to poll. Masking
    the signals is not enough: native threads (BLAS, OpenMP) take them for the
    process, so the Python handlers are swapped for ones that only note them.
    """
    import signal

    noted: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield noted
        return
    kinds = (signal.SIGINT, signal.SIGTERM)
    previous = {k: signal.signal(k, lambda num, frame: noted.append(num)) for k in kinds}
    try:
        yield noted
    finally:
        for kind, handler in previous.items():
            signal.signal(kind, handler)
        for num in dict.fromkeys(noted):
            signal.raise_signal(num)  # now handled as it would have been


def _start_forkserver() -> None:
    """Start the fork server with SIGINT ignored, so that its children inherit that.

    Each worker the server forks puts back the server's original SIGINT handler
    before :func:`~cuelab.core.jobs.pool_worker_init` runs; a Ctrl-C at the
    terminal in that instant would print a worker's KeyboardInterrupt traceback.
    A process started with SIGINT ignored keeps it ignored (Python installs its
    handler only over the default), and the parent alone handles Ctrl-C.
    """
    import multiprocessing.forkserver as fs
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        # Dispositions can only be changed from the main thread; a SIGINT blocked in this
        # thread is inherited through fork and exec all the same, and is never delivered.
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            fs.ensure_running()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        fs.ensure_running()
    finally:
        signal.signal(signal.SIGINT, previous)


# One unit of work: the input positions that share it, the clip (read, or a path to
# read) and its cache key.
_Job = tuple[list[int], audio.LoadedClip | Path, str | None]


def _job_path(job: _Job) -> Path:
    source = job[1]
    return source.path if isinstance(source, audio.LoadedClip) else source


def extract_many(
    paths: Sequence[audio.PathLike],
    config: FeatureConfig = FeatureConfig(),
    cache: FeatureCache | None = None,
    *,
    workers: int | None = None,
    control: JobControl | None = None,
    max_seconds: float | None = 600.0,
) -> list[ClipFeatures]:
    """Features of many files (see :func:`extract_many_tolerant`); the first failure raises.

    Raises:
        Cancelled: ``control`` was cancelled (queued work is dropped).
        AudioError, FeatureError: for the first file that failed (named).
    """
    results = _extract_many(paths, config, cache, workers, control, max_seconds, None)
    return [r for r in results if r is not None]


def extract_many_tolerant(
    paths: Sequence[audio.PathLike],
    config: FeatureConfig = FeatureConfig(),
    cache: FeatureCache | None = None,
    *,
    workers: int | None = None,
    control: JobControl | None = None,
    max_seconds: float | None = 600.0,
) -> tuple[list[ClipFeatures | None], dict[int, str]]:
    """Features of many files, going on past files that fail.

    Returns:
        One entry per path (None where the file failed), and the one-line error of
        each failed position.

    Raises:
        Cancelled: ``control`` was cancelled (queued work is dropped).
    """
    errors: dict[int, str] = {}
    results = _extract_many(paths, config, cache, workers, control, max_seconds, errors)
    return results, errors


def _extract_many(
    paths: Sequence[audio.PathLike],
    config: FeatureConfig,
    cache: FeatureCache | None,
    workers: int | None,
    control: JobControl | None,
    max_seconds: float | None,
    errors: dict[int, str] | None,
) -> list[ClipFeatures | None]:
    """Features of many files, in input order, on the cores that pay.

    Cache hits are served first, in this process; misses run in this process
    and, with ``workers`` > 1, on up to ``workers - 1`` helper processes that
    take clips from the same queue (default: as many as the job repays, see
    :func:`choose_workers`; ``workers=1`` runs in-process only). Each result is
    cached as soon as it arrives, so a cancelled or failed run loses nothing
    already computed. Files with the
    same content are extracted once.

    Args:
        paths: audio files.
        config: the feature configuration.
        cache: where to look up and store features, or None for no cache.
        workers: processes extracting, this one included, or None to decide
            (:func:`choose_workers`).
        control: progress (one ``advance`` per clip) and cancellation.
        max_seconds: longest accepted clip.

    Raises:
        Cancelled: ``control`` was cancelled (queued work is dropped).
        AudioError, FeatureError: for the first file that failed (named).
    """
    ctl = control if control is not None else JobControl()
    files = [Path(p) for p in paths]
    ctl.start(len(files))
    results: list[ClipFeatures | None] = [None] * len(files)
    jobs: dict[str, _Job] = {}

    note = ["cache"]  # the progress message: where features come from now

    def fail(idxs: list[int], exc: CueLabError) -> None:
        if errors is None:
            raise exc
        for i in idxs:
            errors[i] = str(exc)
        ctl.advance(len(idxs), note[0])

    held = 0  # bytes of missed clips kept for their extraction
    for i, p in enumerate(files):
        ctl.check()
        source: audio.LoadedClip | Path = p
        key: str | None = None
        try:
            if cache is not None:  # one read: the hash keys the cache, a miss decodes it
                clip = cache.read(p)
                key = cache_key(clip.sha256, config)
                hit = cache.get(key)
                if hit is not None:
                    results[i] = checked_hit(p, hit, max_seconds)
                    ctl.advance(1, note[0])
                    continue
                if key not in jobs and clip.data is not None:
                    held += len(clip.data)
                    # past the budget the worker reads the file again rather than
                    # this process holding every missed clip of a large dataset
                    source = (
                        clip if held <= MISS_BYTES_HELD else dataclasses.replace(clip, data=None)
                    )
        except (AudioError, FeatureError) as exc:
            fail([i], exc)
            continue
        job_id = key if key is not None else str(p.resolve())
        jobs.setdefault(job_id, ([], source, key))[0].append(i)

    def finish(job: _Job, feats: ClipFeatures) -> None:
        idxs, _, key = job
        if cache is not None and key is not None:
            cache.put(key, feats)
        for i in idxs:
            results[i] = feats
        ctl.advance(len(idxs), note[0])

    todo = list(jobs.values())
    choice = choose_workers([_job_path(job) for job in todo]) if workers is None and todo else None
    most = choice.workers if choice is not None else (workers or 1)
    n_workers = max(1, min(most, len(todo)))
    note[0] = "1 worker"
    if n_workers <= 1:
        for job in todo:
            ctl.check()
            try:
                feats = extract_clip(job[1], config, max_seconds=max_seconds)
            except (AudioError, FeatureError) as exc:
                fail(job[0], exc)
                continue
            finish(job, feats)
    else:
        work_s = choice.work_s if choice is not None else (1.0,) * len(todo)
        _run_pool(todo, work_s, config, max_seconds, n_workers, ctl, finish, fail, note,
                  grow=choice is not None)  # fmt: skip
    missing = [i for i, r in enumerate(results) if r is None and i not in (errors or {})]
    if missing:  # every position is filled by a hit, a job or an error
        raise FeatureError("internal error: some clips got no features")
    return results


def _run_pool(
    jobs: list[_Job],
    work_s: Sequence[float],
    config: FeatureConfig,
    max_seconds: float | None,
    n_workers: int,
    ctl: JobControl,
    finish: Callable[[_Job, ClipFeatures], None],
    fail: Callable[[list[int], CueLabError], None],
    note: list[str],
    *,
    grow: bool,
) -> None:
    """Extract ``jobs`` here and on up to ``n_workers - 1`` helper processes.

    This thread starts at once while the helpers start in the background and take jobs
    from the same queue (:func:`~cuelab.core.cues.workers.run_shared`). With ``grow``
    (the count was chosen, not given) helpers start only on cores that stay idle while
    this thread extracts, and each after the first only while the work left repays it.
    ``finish`` and ``fail`` run in this thread, once per job.

    Ctrl-C and SIGTERM (in the main thread) are taken only between jobs; on one, the
    helpers are stopped and joined (none left starting up, none outliving the run),
    and the signal is raised again once they are gone.
    """

    def task(i: int) -> tuple[Callable[..., ClipFeatures], tuple[Any, ...]]:
        return _extract_job, (jobs[i][1], config, max_seconds)

    def settle(i: int, feats: ClipFeatures | None, exc: BaseException | None) -> None:
        job = jobs[i]
        if exc is None and feats is not None:
            finish(job, feats)
        elif isinstance(exc, (AudioError, FeatureError)):
            fail(job[0], exc)
        elif isinstance(exc, cf.process.BrokenProcessPool):
            raise FeatureError(
                f"{_job_path(job)}: a feature worker process died ({type(exc).__name__})"
            ) from exc
        elif exc is not None:
            raise exc

    def workers_now(text: str) -> None:
        note[0] = text

    parent = os.getpid()

    def start_pool(n: int) -> cf.Executor:
        # on the helpers' thread, and only once a helper will start: the fork server's
        # imports cost about 1 s of CPU, which a busy machine takes from this process
        return cf.ProcessPoolExecutor(
            max_workers=n, mp_context=_mp_context(), initializer=pool_worker_init,
            initargs=(parent,),
        )  # fmt: skip

    with _signals_held() as noted:

        def stop() -> bool:
            ctl.check()
            return bool(noted)

        run_shared(work_s, task, settle, helpers=n_workers - 1, start_pool=start_pool,
                   stop=stop, on_workers=workers_now, grow=grow)  # fmt: skip


def _extract_job(
    source: audio.LoadedClip | Path, config: FeatureConfig, max_seconds: float | None
) -> ClipFeatures:
    """The pool's task: :func:`~cuelab.core.cues.extract.extract_clip` (a picklable name)."""
    return extract_clip(source, config, max_seconds=max_seconds)
