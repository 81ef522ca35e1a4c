"""Running core work off the GUI thread: one job slot per panel.

A :class:`JobSlot` owns at most one live job. Starting a new job cancels the
previous one (through its :class:`~cuelab.core.jobs.JobControl`) and bumps a
generation counter; results, progress and errors carrying an older
generation are dropped, so a slow answer for a clip or token set that is no
longer shown never overwrites a newer one. Workers are plain functions that
take a :class:`Job`; the runnable turns their return value, progress and
exceptions into queued Qt signals (the pattern of superqt's thread workers
and Orange's TaskState). An exception crosses to the GUI thread as the object
it is, so its remedies (:class:`cuelab.core.errors.Remedy`) are worded there
in the window's terms (:mod:`cuelab.ui.remedies`) and a panel can offer one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal, Slot

from cuelab.core.errors import Cancelled, CueLabError
from cuelab.core.jobs import JobControl
from cuelab.ui.remedies import window_text

log = logging.getLogger(__name__)


class Job:
    """What a worker function receives: a cancel flag and a progress channel."""

    def __init__(self, control: JobControl, report: Callable[[str], None]) -> None:
        self.control = control
        self._report = report

    def check(self) -> None:
        """Raise :class:`Cancelled` when a newer job replaced this one."""
        self.control.check()

    def report(self, message: str) -> None:
        """Send a one-line progress message to the panel."""
        self._report(message)


class _Signals(QObject):
    progress = Signal(int, str)
    result = Signal(int, object, float)
    error = Signal(int, object)
    finished = Signal(int)


class _Runnable(QRunnable):
    def __init__(self, fn: Callable[[Job], Any], job: Job, signals: _Signals, gen: int) -> None:
        super().__init__()
        self._fn = fn
        self._job = job
        self._signals = signals
        self._gen = gen

    def run(self) -> None:
        t0 = time.perf_counter()
        try:
            if not self._job.control.cancelled:
                value = self._fn(self._job)
                self._signals.result.emit(self._gen, value, time.perf_counter() - t0)
        except Cancelled:
            pass
        except CueLabError as exc:
            log.debug("job failed", exc_info=True)
            self._signals.error.emit(self._gen, _detached(exc))
        except Exception as exc:  # worker errors must reach the notifier, not vanish
            log.exception("unexpected error in a worker")
            self._signals.error.emit(self._gen, _detached(exc))
        finally:
            self._signals.finished.emit(self._gen)


def _detached(exc: BaseException) -> BaseException:
    """``exc`` (and what it was raised from) without tracebacks, to send to the GUI thread.

    A traceback holds the worker's frames and, through them, whatever they
    held (a model, a clip); the log already has it.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__traceback__ = None
        current = current.__cause__ or current.__context__
    return exc


class JobSlot(QObject):
    """At most one live job for one panel, with stale results dropped.

    Signals:
        busy_changed(bool): a job started or the last one ended.
        progress(str): a progress message of the current job.
        failed(str): the current job raised: one line, in the window's words.
        raised(object): the same failure as the exception object, emitted just
            after ``failed``, for a panel that offers its remedy as a button.
    """

    busy_changed = Signal(bool)
    progress = Signal(str)
    failed = Signal(str)
    raised = Signal(object)

    def __init__(self, name: str, pool: QThreadPool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._pool = pool
        self._gen = 0
        self._control: JobControl | None = None
        self._live: dict[int, tuple[_Runnable, _Signals]] = {}
        self._on_result: Callable[[Any, float], None] | None = None
        self.dropped = 0  # results that arrived for a replaced job

    @property
    def generation(self) -> int:
        """Number of jobs started so far (the id of the current one)."""
        return self._gen

    @property
    def busy(self) -> bool:
        """True while any job of this slot is still running."""
        return bool(self._live)

    def start(self, fn: Callable[[Job], Any], on_result: Callable[[Any, float], None]) -> int:
        """Cancel the current job and run ``fn`` in the pool.

        Args:
            fn: the work; called in a worker thread with a :class:`Job`.
            on_result: called on the GUI thread with ``(value, seconds)`` if
                this job is still the current one when it finishes.

        Returns:
            The job's generation.
        """
        self.cancel()
        self._gen += 1
        gen = self._gen
        signals = _Signals()
        control = JobControl()
        job = Job(control, lambda msg: signals.progress.emit(gen, msg))
        signals.progress.connect(self._relay_progress)
        signals.result.connect(self._relay_result)
        signals.error.connect(self._relay_error)
        signals.finished.connect(self._relay_finished)
        runnable = _Runnable(fn, job, signals, gen)
        runnable.setAutoDelete(False)
        was_busy = self.busy
        self._live[gen] = (runnable, signals)
        self._control = control
        self._on_result = on_result
        if not was_busy:
            self.busy_changed.emit(True)
        self._pool.start(runnable)
        return gen

    def cancel(self) -> None:
        """Ask the current job to stop; whatever it returns will be dropped."""
        if self._control is not None:
            self._control.cancel()
        self._control = None
        self._on_result = None

    def interrupt(self) -> None:
        """Ask the current job to stop, but keep what it returns if it finishes anyway.

        For work whose result stays true when the stop comes too late (a batch
        run that had already scored its last clip): a job that stops raises
        :class:`Cancelled` and delivers nothing; one that returns is delivered.
        """
        if self._control is not None:
            self._control.cancel()

    @Slot(int, str)
    def _relay_progress(self, gen: int, message: str) -> None:
        if gen == self._gen:
            self.progress.emit(message)

    @Slot(int, object, float)
    def _relay_result(self, gen: int, value: object, seconds: float) -> None:
        if gen != self._gen or self._on_result is None:
            self.dropped += 1
            log.debug("%s: dropped stale result of job %d (current %d)", self.name, gen, self._gen)
            return
        callback = self._on_result
        self._control = None
        callback(value, seconds)

    @Slot(int, object)
    def _relay_error(self, gen: int, exc: BaseException) -> None:
        if gen == self._gen:
            self.failed.emit(window_text(exc))
            self.raised.emit(exc)

    @Slot(int)
    def _relay_finished(self, gen: int) -> None:
        self._live.pop(gen, None)
        if not self._live:
            self.busy_changed.emit(False)


def shutdown_pool(pool: QThreadPool, slots: list[JobSlot], timeout_ms: int = 5000) -> bool:
    """Cancel every slot's job and wait for the pool's threads (on window close).

    Returns:
        True when every worker finished within ``timeout_ms``.
    """
    for slot in slots:
        slot.cancel()
    pool.clear()  # jobs queued but not started never run
    return bool(pool.waitForDone(timeout_ms))


class Debouncer(QObject):
    """Call ``callback`` once, ``delay_ms`` after the last :meth:`trigger`.

    Edits arrive in bursts (a slider drag, a menu walk); only the last state
    is worth computing.
    """

    def __init__(self, delay_ms: int, callback: Callable[[], None], parent: QObject | None = None):
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(callback)
        self.first_trigger: float | None = None
        self._timer.timeout.connect(self._reset)

    def trigger(self) -> None:
        """(Re)start the countdown."""
        if self.first_trigger is None:
            self.first_trigger = time.perf_counter()
        self._timer.start()

    def flush(self) -> None:
        """Fire now if a call is pending."""
        if self._timer.isActive():
            self._timer.stop()
            self._timer.timeout.emit()

    def stop(self) -> None:
        """Forget a pending call."""
        self._timer.stop()
        self.first_trigger = None

    @property
    def pending(self) -> bool:
        """True while a call is scheduled."""
        return self._timer.isActive()

    def _reset(self) -> None:
        self.first_trigger = None


def run_detached(pool: QThreadPool, fn: Callable[[Job], Any]) -> None:
    """Run ``fn`` in ``pool`` with no result wanted (freeing memory, cleanup).

    Errors are logged only; nothing on screen depends on the outcome.
    """

    def safe() -> None:
        try:
            fn(Job(JobControl(), lambda _m: None))
        except Exception:
            log.exception("background clean-up failed")

    pool.start(safe)
