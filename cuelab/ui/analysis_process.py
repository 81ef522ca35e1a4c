"""openSMILE on a long clip in a child process, so that it cannot stall the window.

openSMILE hands every frame to a Python callback: a 10-minute clip is some
60,000 callbacks, each taking the GIL, while the clip view's workers build the
waveform pyramid and the spectrogram. In a worker thread that traffic kept the
GUI thread waiting for the GIL, and opening a 10-minute clip froze the window for
100-400 ms at a time (issue 26). A clip of :data:`PROCESS_MIN_S` or more is
therefore analysed by :func:`cuelab.core.cues.extract.extract_signal` in a child
process (same function, same result); a short one stays in the thread, where a
process start would cost more than it saves. A cancelled analysis (another clip
was opened) kills its child at once instead of waiting for it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cuelab.core.cues import ClipFeatures, extract_signal
from cuelab.core.errors import CueLabError, FeatureError
from cuelab.core.jobs import pool_worker_init
from cuelab.ui.batch_process import _typed_error

#: Signals at least this long (seconds) are analysed in a child process.
PROCESS_MIN_S = 60.0
#: How often the waiting thread looks at its cancel flag (seconds).
POLL_S = 0.05


def _child(
    conn: Any, samples: str, shape: tuple[int, ...], sr: int, name: str, parent_pid: int
) -> None:
    """The child: extract, send the features or the error (one message)."""
    pool_worker_init(parent_pid)  # ends with the window
    try:
        x = np.fromfile(samples, dtype=np.float32).reshape(shape)
        conn.send(("ok", extract_signal(x, sr, name=name)))
    except CueLabError as exc:
        conn.send(("error", type(exc).__name__, str(exc)))
    except Exception as exc:  # the window must hear of it, as from a worker thread
        conn.send(("error", "", f"{name}: {type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def extract_signal_isolated(
    x: np.ndarray, sr: int, *, name: str, check: Callable[[], None]
) -> ClipFeatures:
    """:func:`extract_signal` of ``x``, in a child process when ``x`` is long.

    Args:
        x: the samples (as for ``extract_signal``).
        sr: their rate.
        name: what errors call the signal.
        check: raises :class:`~cuelab.core.errors.Cancelled` when the caller's job is
            cancelled; polled while the child works, and the child is then killed.
    """
    if x.shape[0] < PROCESS_MIN_S * sr:
        return extract_signal(x, sr, name=name)
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx: Any = mp.get_context(method)
    # The samples go through a file (in RAM where /dev/shm exists), written by os.write,
    # which lets go of the GIL: pickled into the process's arguments, 10 minutes of
    # samples held it for 100-300 ms on a busy machine.
    x = np.ascontiguousarray(x, dtype=np.float32)
    shm = Path("/dev/shm")
    fd, samples = tempfile.mkstemp(prefix="cuelab-analysis-", dir=shm if shm.is_dir() else None)
    try:
        view = x.data.cast("B")
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    args = (child_conn, samples, x.shape, int(sr), name, os.getpid())
    proc = ctx.Process(target=_child, args=args, name="cuelab-analysis", daemon=True)
    try:
        proc.start()
    except BaseException:
        os.unlink(samples)
        raise
    child_conn.close()
    try:
        while not parent_conn.poll(POLL_S):
            check()
            if not proc.is_alive() and not parent_conn.poll(0):
                raise FeatureError(f"{name}: the analysis process died (exit code {proc.exitcode})")
        try:
            message = parent_conn.recv()
        except (EOFError, OSError) as exc:
            raise FeatureError(f"{name}: the analysis process died ({exc})") from exc
    finally:
        if proc.is_alive():
            proc.kill()  # cancelled (or failed): its result is not wanted
        proc.join()
        parent_conn.close()
        os.unlink(samples)
    if message[0] == "ok":
        feats: ClipFeatures = message[1]
        return feats
    raise _typed_error(message[1], message[2])
