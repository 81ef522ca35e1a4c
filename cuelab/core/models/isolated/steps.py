"""What keeps an environment build from leaving anything behind: its lock, its steps' lifetime.

A build holds ``<root>/<family>.lock`` (an exclusive ``flock``, like a run
folder's lock) from start to end, so a second ``cuelab env create FAMILY``
refuses in one line naming the first. Each step (pip, git, venv) runs under a
small supervisor, the leader of its own process group: when CueLab ends, even
by ``kill -9``, the supervisor sees it (a pidfd of its parent) and kills the
whole group, pip's build processes included. The lock's file descriptor is
handed down to every step, so a process that escaped the group still holds the
lock: a retry is refused instead of rebuilding the folder under it.
"""

from __future__ import annotations

import contextvars
import errno
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from cuelab.core.errors import ModelError
from cuelab.core.safeio import locked_file

#: The lock of the build in progress (its descriptor is passed to every step).
LOCK_FD: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "cuelab_env_lock_fd", default=None
)
#: The folder being built (named by a "No space left on device" error).
TARGET: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "cuelab_env_target", default=None
)

#: Run as ``python -I -c SUPERVISOR PARENT_PID ARGV...``: start ARGV in this process's group
#: (CueLab starts the supervisor as a group leader), exit with its status, and kill the
#: whole group when CueLab is gone. Standard library only.
SUPERVISOR = """
import os, select, signal, subprocess, sys, threading, time
parent = int(sys.argv[1])
child = subprocess.Popen(sys.argv[2:], close_fds=False)
def end():
    os.killpg(0, signal.SIGKILL)
def watch():
    try:
        fd = os.pidfd_open(parent)
    except ProcessLookupError:
        end()
    except (AttributeError, OSError):
        while os.getppid() == parent:
            time.sleep(0.2)
        end()
    select.select([fd], [], [])
    end()
threading.Thread(target=watch, daemon=True).start()
code = child.wait()
sys.exit(128 - code if code < 0 else code)
"""


def supervised(argv: Sequence[str]) -> list[str]:
    """``argv`` under the supervisor (see :data:`SUPERVISOR`)."""
    return [sys.executable, "-I", "-c", SUPERVISOR, str(os.getpid()), *argv]


class NoSpace(ModelError):
    """The disk of the environment is full (the message names the folder)."""


def no_space(target: Path | None, what: str, family: str) -> NoSpace:
    """The one-line error for a full disk during ``what``."""
    where = target or Path(".")
    return NoSpace(
        f"{where}: No space left on device (during: {what}); free some space and run "
        f"cuelab env create {family} again"
    )


def out_of_space(text: str, target: Path | None) -> bool:
    """True when a failed step's output says the disk is full, or the disk is full now."""
    if "No space left on device" in text or "[Errno 28]" in text or "Disk quota exceeded" in text:
        return True
    if target is None:
        return False
    try:
        return shutil.disk_usage(_existing(target)).free < (1 << 20)
    except OSError:
        return False


def is_no_space(exc: OSError) -> bool:
    """True for the errors a full disk or quota gives."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def build_lock(family: str, root: Path) -> Iterator[int]:
    """Hold ``<root>/<family>.lock`` for a build; one line naming the holder when taken."""

    def in_use(holder: str) -> str:
        if _alive(holder):
            return (
                f"cuelab env create {family} is already running (PID {holder}); wait for it "
                "to finish or stop it"
            )
        return (
            f"a step of an earlier cuelab env create {family} (PID {holder}, which has ended) "
            f"still runs and holds {root / (family + '.lock')}; stop it (fuser -k that file) "
            "before building again"
        )

    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            f"{root}: cannot create the environments folder ({exc.strerror})"
        ) from None
    with locked_file(root / f"{family}.lock", ModelError, in_use, inheritable=True) as fd:
        token = LOCK_FD.set(fd)
        try:
            yield fd
        finally:
            LOCK_FD.reset(token)
