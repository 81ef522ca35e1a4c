"""Progress and cancellation for long work in the core.

Core jobs are plain functions that take a :class:`JobControl`, call
:meth:`JobControl.advance` after each item and :meth:`JobControl.check`
between items. The window runs them in a worker thread and turns progress
callbacks into Qt signals; the command line prints a progress bar. Nothing
here knows about Qt.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cuelab.core.errors import Cancelled


@dataclass(frozen=True)
class ProgressInfo:
    """One progress record: ``done`` of ``total`` items, rate and ETA.

    ``message`` names the stage (``features``, ``scoring``) or the item; ``detail`` says
    more for a progress line (e.g. how many feature workers run).
    """

    done: int
    total: int
    elapsed_s: float
    message: str = ""
    detail: str = ""

    @property
    def rate(self) -> float:
        """Items per second so far (0 before the first item)."""
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate, or None when unknown."""
        if self.done <= 0 or self.total <= 0:
            return None
        return max(0.0, (self.total - self.done) / self.rate)


ProgressCallback = Callable[[ProgressInfo], None]


class JobControl:
    """Carries a cancel flag and a progress callback into a core job.

    Thread-safe: :meth:`cancel` may be called from any thread while the job
    runs in another.
    """

    def __init__(self, on_progress: ProgressCallback | None = None) -> None:
        self._on_progress = on_progress
        self._cancel = threading.Event()
        self._start = time.monotonic()
        self._done = 0
        self._total = 0

    def cancel(self) -> None:
        """Ask the job to stop at its next check."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if cancellation was requested."""
        if self._cancel.is_set():
            raise Cancelled("cancelled")

    def start(self, total: int, message: str = "") -> None:
        """Announce the number of items and reset the clock."""
        self._start = time.monotonic()
        self._done = 0
        self._total = total
        self._emit(message)

    def advance(self, n: int = 1, message: str = "", detail: str = "") -> None:
        """Record ``n`` more finished items and report progress."""
        self._done += n
        self._emit(message, detail)

    @property
    def done(self) -> int:
        """Items finished so far."""
        return self._done

    def _emit(self, message: str, detail: str = "") -> None:
        if self._on_progress is not None:
            elapsed = time.monotonic() - self._start
            self._on_progress(ProgressInfo(self._done, self._total, elapsed, message, detail))


def pool_worker_init(parent_pid: int) -> None:
    """Initializer for process-pool workers: they end with the process that started them.

    Pool workers block on their task queue, whose write end they hold themselves,
    so a parent killed with ``SIGKILL`` would leave them (and the resource
    tracker, and every pipe they inherited, e.g. the parent's stdout) alive for
    good. A daemon thread waits on a pidfd of the parent (polls on systems
    without one) and ends the worker when the parent is gone. ``SIGINT`` is
    ignored: Ctrl-C at a terminal reaches the whole process group, and the
    parent alone decides what an interrupt means (no worker tracebacks).
    """
    import os
    import select
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        try:
            fd = os.pidfd_open(parent_pid)  # Linux 5.3+: readable once the process ends
        except ProcessLookupError:
            os._exit(1)
        except (AttributeError, OSError):
            while True:  # other systems: poll (a reused PID is not our parent)
                time.sleep(0.5)
                try:
                    os.kill(parent_pid, 0)
                except ProcessLookupError:
                    os._exit(1)
                if os.getppid() == 1:
                    os._exit(1)
        select.select([fd], [], [])
        os._exit(1)

    threading.Thread(target=watch, name="cuelab-parent-watch", daemon=True).start()
