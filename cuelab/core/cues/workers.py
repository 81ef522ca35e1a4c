"""How many feature processes a job may use, and how they share it.

Kept apart from :mod:`cuelab.core.cues.feature_pool` (which extracts) so the rule can be
read, tested and benchmarked on its own.

The rule is robust rather than predictive. Measuring the idle cores first cost about
0.2 s and still chose wrongly when the load changed (a shared machine's load does), and
a pool that had to start before the first clip made ``auto`` slower than serial on small
jobs. So the calling process starts extracting at once, while up to ``w - 1`` helper
processes start in the background and take clips from the same queue
(:func:`run_shared`). A helper that starts late or runs on a busy core simply takes
fewer clips; when the queue is empty and a helper still holds a clip for longer than the
caller takes per clip, the caller extracts that clip too and the first result wins (a
backup task), so one slow helper cannot hold up the end. Helpers are only started where
the job is big enough to repay their start (:func:`choose_workers`, :func:`helper_pays`)
and, for ``auto``, on cores that stay idle while the caller already extracts (measured
off the caller's path: Linux gives a session's processes one share of a busy machine,
so there a helper adds nothing and its start-up is lost).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cuelab.core.audio import io as audio
from cuelab.core.errors import AudioError

log = logging.getLogger(__name__)

#: What a helper costs before its first clip (NOTES.md, 2-core machine): the fork server
#: (its imports, once per process), and each worker's extractor.
POOL_START_S = 1.0
POOL_WORKER_S = 0.32
#: Extraction time per second of audio in one process (eGeMAPS, ~20x real time), plus per file.
EXTRACT_S_PER_AUDIO_S = 0.05
EXTRACT_S_PER_FILE = 0.01
#: How long the helpers' thread watches the machine's idle time before starting one.
SPARE_WINDOW_S = 0.2


def predicted_seconds(paths: Sequence[audio.PathLike]) -> list[float]:
    """Predicted extraction time of each file from its duration (a header read each)."""
    out = []
    for p in paths:
        try:
            seconds = audio.audio_duration(p)
        except (AudioError, OSError):
            seconds = 3.0  # undecodable here: it will fail fast in extraction too
        out.append(EXTRACT_S_PER_FILE + seconds * EXTRACT_S_PER_AUDIO_S)
    return out


def helper_pays(work_left_s: float, processes: int, start_s: float = POOL_START_S) -> bool:
    """Whether one more helper repays its start, with ``processes`` already extracting.

    A helper that is ready after ``start_s`` (+ :data:`POOL_WORKER_S` for its extractor)
    shares what is left from then on; it pays when, on free cores, it would still extract
    for at least as long as its extractor took to build. Whether the cores are free is
    not this rule's business: :func:`run_shared` checks that before starting one.
    """
    ready = start_s + POOL_WORKER_S
    finish = (work_left_s + ready) / (processes + 1)
    return finish - ready >= POOL_WORKER_S


@dataclass(frozen=True)
class WorkerChoice:
    """The most feature processes a job may use (the caller included), and why."""

    workers: int
    jobs: int
    serial_s: float
    work_s: tuple[float, ...] = field(default=(), repr=False)  # predicted, per file

    def describe(self) -> str:
        """For the progress line: ``1 worker`` / ``2 workers``."""
        return f"{self.workers} worker" + ("" if self.workers == 1 else "s")


def choose_workers(paths: Sequence[audio.PathLike], *, cores: int | None = None) -> WorkerChoice:
    """The most processes worth using for ``paths``: decided from the job, not the load.

    Nothing is measured (no wait before the first clip): the count is the largest whose
    last helper still repays its start on free cores (:func:`helper_pays`), at most one
    per usable core and per file. How many of them start, and how many clips each
    takes, is decided while the job runs (:func:`run_shared`).
    """
    from cuelab.core.threads import usable_cores

    n_cores = cores if cores is not None else usable_cores()
    times = predicted_seconds(paths)
    serial = sum(times)
    most = 1
    while most < min(n_cores, len(times)) and helper_pays(serial, most):
        most += 1
    return WorkerChoice(most, len(times), serial, tuple(times))


# --- one queue, the caller and its helpers ---------------------------------------------


class _Board:
    """Which job is where. The caller and the helpers take from the front; first result wins."""

    def __init__(self, work_s: Sequence[float]) -> None:
        self.lock = threading.Lock()
        self.n = len(work_s)
        self._left_s = [0.0] * (self.n + 1)  # predicted work from position i on
        for i in range(self.n - 1, -1, -1):
            self._left_s[i] = self._left_s[i + 1] + work_s[i]
        self._next = 0
        self._returned: list[int] = []
        self.held: dict[int, float] = {}  # held by a helper: since when
        self._backed: set[int] = set()
        self.done: set[int] = set()

    def take(self, helper: bool = False) -> int | None:
        with self.lock:
            if self._returned:
                i = self._returned.pop()
            elif self._next < self.n:
                i = self._next
                self._next += 1
            else:
                return None
            if helper:
                self.held[i] = time.monotonic()
            return i

    def give_back(self, i: int) -> None:
        with self.lock:
            self.held.pop(i, None)
            if i not in self.done and i not in self._backed:
                self._returned.append(i)

    def backup(self, older_than_s: float) -> int | None:
        """The helper-held job that has run longest, once it ran over ``older_than_s``."""
        with self.lock:
            now = time.monotonic()
            waiting = [(t, i) for i, t in self.held.items() if i not in self._backed]
            if not waiting or now - min(waiting)[0] < older_than_s:
                return None
            i = min(waiting)[1]
            self._backed.add(i)
            return i

    def settle(self, i: int) -> bool:
        """Mark ``i`` done; False when it already was (the other copy of a backup task)."""
        with self.lock:
            self.held.pop(i, None)
            if i in self.done:
                return False
            self.done.add(i)
            return True

    def work_left_s(self) -> float:
        with self.lock:
            return self._left_s[self._next]

    def finished(self) -> bool:
        with self.lock:
            return len(self.done) == self.n


Task = Callable[[int], tuple[Callable[..., Any], tuple[Any, ...]]]


class _Helpers(threading.Thread):
    """Starts the helper pool off the caller's thread and feeds it one job per process.

    Every pool operation happens on this thread; the caller only sees messages on
    ``out``: ``("spare", 0)`` (no idle core: none starts), ``("online", n)``,
    ``("done", i, result, exc)``, ``("gone", exc)`` (the pool failed; jobs it held are
    back in the queue).
    """

    def __init__(
        self,
        board: _Board,
        task: Task,
        most: int,
        start_pool: Callable[[int], cf.Executor],
        grow: bool,
        out: queue.Queue[tuple[Any, ...]],
    ) -> None:
        super().__init__(name="cuelab-feature-helpers")
        self.board, self.task, self.most, self.grow = board, task, most, grow
        self.start_pool, self.out = start_pool, out
        self.stop = threading.Event()

    def _spare(self) -> int:
        """Helpers the machine has room for now, measured while the caller extracts.

        Linux groups a session's processes for the scheduler (autogroup): on cores that
        other sessions keep busy, a second process of ours shares our group's time with
        the first instead of adding any, and its start-up is pure loss (measured: 2
        workers 1.33x slower than 1). So a helper starts only on a core that stayed
        idle, over :data:`SPARE_WINDOW_S`, beside the caller's own extraction; the
        caller does not wait for this.
        """
        from cuelab.core.threads import cpu_times

        first = cpu_times()
        if first is None:  # no /proc/stat: start them; sharing the queue bounds the loss
            return self.most
        if self.stop.wait(SPARE_WINDOW_S):
            return 0  # the caller finished first
        second = cpu_times()
        if second is None or second[1] <= first[1]:
            return self.most
        share = (second[0] - first[0]) / (second[1] - first[1])
        spare = math.floor(share * (os.cpu_count() or 1) + 0.25)  # 3/4 of a core counts
        return max(0, min(self.most, spare))

    def run(self) -> None:
        pool: cf.Executor | None = None
        in_flight: dict[cf.Future[Any], int] = {}
        spawned = 0
        try:
            most = self._spare() if self.grow else self.most
            if most < 1:
                self.out.put(("spare", 0))  # no core to spare: the caller extracts alone
                return
            pool = self.start_pool(most)
            while not self.stop.is_set():
                while len(in_flight) < most and not self.stop.is_set():
                    more = len(in_flight) >= spawned  # this submit starts a process
                    left = self.board.work_left_s()
                    if more and spawned and self.grow and not helper_pays(left, 1 + spawned, 0.0):
                        break  # the fork server is warm now: a helper costs its extractor
                    i = self.board.take(helper=True)
                    if i is None:
                        break
                    fn, args = self.task(i)
                    try:
                        in_flight[pool.submit(fn, *args)] = i
                    except BaseException:
                        self.board.give_back(i)
                        raise
                    if more:
                        spawned += 1
                        self.out.put(("online", spawned))
                if not in_flight:
                    break
                done, _ = cf.wait(in_flight, timeout=0.1, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    i = in_flight.pop(fut)
                    exc = fut.exception()
                    self.out.put(("done", i, None if exc else fut.result(), exc))
        except BaseException as exc:  # the pool could not start: the caller goes on alone
            self.out.put(("gone", exc))
        finally:
            for i in in_flight.values():
                self.board.give_back(i)
            if pool is not None:
                if in_flight:  # the caller is done with them (or stopping): do not wait
                    procs = getattr(pool, "_processes", None) or {}
                    for proc in list(procs.values()):
                        proc.terminate()
                pool.shutdown(wait=True, cancel_futures=True)


def run_shared(
    work_s: Sequence[float],
    task: Task,
    settle: Callable[[int, Any, BaseException | None], None],
    *,
    helpers: int,
    start_pool: Callable[[int], cf.Executor],
    stop: Callable[[], bool],
    on_workers: Callable[[str], None] = lambda note: None,
    grow: bool = True,
) -> bool:
    """Run every job once, here and on up to ``helpers`` pool processes, from one queue.

    Args:
        work_s: the predicted seconds of each job (the stop-spawning rule reads it).
        task: job index -> ``(function, args)``, run here or submitted to the pool
            (so both picklable).
        settle: called here, once per job, with its result or its exception; it may raise
            to end the run.
        helpers: extra processes at most (0: all in this thread).
        start_pool: ``n`` -> an executor of at most ``n`` processes (called off this thread).
        stop: polled between jobs (it may raise, e.g. on cancel); True ends the run early.
        on_workers: gets the progress note (``2 workers``, ``1 worker, 1 starting``).
        grow: start helpers only on cores measured idle meanwhile, and each after the
            first only while :func:`helper_pays` (False: start all ``helpers``, as an
            explicit count asks).

    Returns:
        True when every job was settled, False when ``stop`` ended the run.
    """
    board = _Board(work_s)
    out: queue.Queue[tuple[Any, ...]] = queue.Queue()
    team = _Helpers(board, task, helpers, start_pool, grow, out) if helpers > 0 else None
    online, alive = 0, team is not None
    local: list[float] = []  # seconds per job here, for the backup rule
    by_helpers = 0

    def note() -> None:
        text = f"{1 + online} worker" + ("" if online == 0 else "s")
        starting = helpers - online if alive and board.work_left_s() > 0 else 0
        on_workers(text + (f", {starting} starting" if starting > 0 else ""))

    def handle(msg: tuple[Any, ...]) -> None:
        nonlocal online, alive, by_helpers
        if msg[0] == "done":
            if board.settle(msg[1]):
                by_helpers += 1
                settle(msg[1], msg[2], msg[3])
        elif msg[0] == "online":
            online = msg[1]
            note()
        elif msg[0] == "spare":
            alive = False
            note()
        elif msg[0] == "gone":
            alive = False
            log.warning("feature helpers stopped (%s); going on in this process", msg[1])
            note()

    note()
    if team is not None:
        team.start()
    clean = False
    try:
        while not board.finished():
            if stop():
                return False
            try:
                handle(out.get_nowait())
                continue
            except queue.Empty:
                pass
            i = board.take()
            if i is None and local:
                i = board.backup(older_than_s=sum(local) / len(local))
            if i is None:
                with contextlib.suppress(queue.Empty):
                    handle(out.get(timeout=0.02))
                continue
            fn, args = task(i)
            started = time.monotonic()
            try:
                result, error = fn(*args), None
            except Exception as exc:  # settle decides what ends the run
                result, error = None, exc
            local.append(time.monotonic() - started)
            if board.settle(i):
                settle(i, result, error)
        clean = True
        log.debug("shared queue: %d jobs, %d here, %d by %d helper(s) of %d",
                  board.n, board.n - by_helpers, by_helpers, online, helpers)  # fmt: skip
        return True
    finally:
        if team is not None:
            team.stop.set()
            if not clean:  # an error, a cancel or a signal: no helper may outlive this call
                team.join()


__all__ = ["WorkerChoice", "choose_workers", "helper_pays", "predicted_seconds", "run_shared"]
