"""A batch run (:func:`cuelab.core.runs.run_eval`) in a child process.

In the panel's worker thread the run held the GIL for long stretches (model
load, openSMILE calls, numpy) and one Start in three froze the window for
160-260 ms (issue 26). The child cannot stall the GUI thread. This module
imports no Qt: the child imports it to find its entry point.

Protocol over one pipe, child to parent: ``("started", pid)``, then
``("progress", ProgressInfo)`` records, each answered by the parent with
``"go"`` once its progress callback has run (so progress is handled between
clips exactly as when the run was in a thread), then one of ``("done",
folder)``, ``("cancelled",)`` or ``("error", type name, message)``. Cancel is
an event the child checks with its :class:`JobControl` between clips; the run
is marked cancelled by ``run_eval`` itself, as before. The child watches the
parent (:func:`cuelab.core.jobs.pool_worker_init`) and ends with it; the run
folder's lock is an ``flock`` the OS releases when the child ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cuelab.core.errors import Cancelled, CueLabError
from cuelab.core.jobs import JobControl, ProgressInfo, pool_worker_init
from cuelab.core.runs import RunConfig
from cuelab.ui.child_process import context, error_message

log = logging.getLogger(__name__)

#: How often the parent looks at its cancel flag while no message comes (seconds).
POLL_S = 0.05


class _ChildControl(JobControl):
    """The child's control: progress goes over the pipe, cancel comes as an event."""

    def __init__(self, conn: Any, cancel_event: Any) -> None:
        super().__init__(self._send)
        self._conn = conn
        self._cancel_event = cancel_event

    def _send(self, info: ProgressInfo) -> None:
        self._conn.send(("progress", info))
        self._conn.recv()  # "go": the parent has handled the record

    def check(self) -> None:
        if self._cancel_event.is_set():
            self.cancel()
        super().check()


def _child_main(
    conn: Any, cancel_event: Any, parent_pid: int, config: RunConfig, resume: bool, command: Any
) -> None:
    """The child: run the evaluation and send how it ended (one message)."""
    from cuelab.core.runs import run_eval

    pool_worker_init(parent_pid)  # ends with the window; Ctrl-C is the parent's
    conn.send(("started", os.getpid()))
    try:
        control = _ChildControl(conn, cancel_event)
        outcome = run_eval(config, resume=resume, control=control, command=command)
        conn.send(("done", str(outcome.folder)))
    except Cancelled:
        conn.send(("cancelled",))
    except CueLabError as exc:
        log.debug("batch run failed", exc_info=True)
        conn.send(error_message(exc, str(config.out)))
    except Exception as exc:  # the window must hear of it, as from a worker thread
        log.exception("unexpected error in the batch run process")
        conn.send(error_message(exc, str(config.out)))
    finally:
        conn.close()


def run_eval_isolated(
    config: RunConfig,
    *,
    resume: bool,
    control: JobControl,
    on_progress: Callable[[ProgressInfo], None],
    command: Sequence[str],
    on_started: Callable[[int], None] | None = None,
) -> Path:
    """Run ``run_eval`` in a child process; return the run folder.

    ``on_progress`` gets every progress record (in the calling thread, the
    child waiting meanwhile); ``control`` is polled for cancel; a cancel stops the child between clips and raises
    :class:`Cancelled` here once the child has marked the run cancelled.
    ``on_started(pid)`` is called with the child's pid. A child that dies
    without an answer is one :class:`CueLabError`.
    """
    ctx = context()
    parent_conn, child_conn = ctx.Pipe()
    cancel_event = ctx.Event()
    args = (child_conn, cancel_event, os.getpid(), config, resume, list(command))
    # Not a daemon: the run starts its own feature workers.
    proc = ctx.Process(target=_child_main, args=args, name="cuelab-batch-run")
    proc.start()
    child_conn.close()
    outcome: tuple[Any, ...] | None = None
    try:
        while outcome is None:
            if not cancel_event.is_set():
                try:
                    control.check()
                except Cancelled:
                    cancel_event.set()
            if not parent_conn.poll(POLL_S):
                if not proc.is_alive() and not parent_conn.poll(0):
                    break
                continue
            try:
                message = parent_conn.recv()
            except (EOFError, OSError):  # the child died (a reset pipe on Linux)
                break
            if message[0] == "started":
                if on_started is not None:
                    on_started(message[1])
            elif message[0] == "progress":
                try:
                    on_progress(message[1])
                finally:
                    with contextlib.suppress(OSError):  # a dead child: EOF comes next
                        parent_conn.send("go")
            else:
                outcome = message
    except BaseException:
        cancel_event.set()
        raise
    finally:
        proc.join()
        parent_conn.close()
    if outcome is None:
        raise CueLabError(
            f"{config.out}: the batch run process died (exit code {proc.exitcode}); "
            "Resume continues the run"
        )
    if outcome[0] == "done":
        return Path(outcome[1])
    if outcome[0] == "cancelled":
        raise Cancelled("cancelled")
    raise outcome[1]
