"""A long clip's whole-clip passes in a child process, so that they cannot stall the window.

openSMILE hands every frame to a Python callback: a 10-minute clip is some
60,000 callbacks, each taking the GIL, while the clip view's workers build the
waveform pyramid, the spectrogram and the intensity curve. In worker threads
that traffic kept the GUI thread waiting for the GIL and for a CPU, and opening a
10-minute clip froze the window for 100-400 ms at a time (issue 26). A signal of
:data:`PROCESS_MIN_S` or more is therefore handed to a child process
(:func:`run_isolated`: the same function, the same result); a short one stays in
the thread, where a process start would cost more than it saves.

- The samples go to the child through a file in RAM (``/dev/shm``) written with
  ``os.write``, which lets go of the GIL; pickled into the process's arguments,
  10 minutes of samples held it for 100-300 ms on a busy machine. The file is
  written once per clip (:func:`samples_file`) and shared by every pass: four
  38 MB writes at once (openSMILE, pyramid, spectrogram, intensity) kept both
  cores in the kernel and starved the GUI thread for up to 180 ms. It is removed
  when the clip's samples are freed, and a later window removes those of a
  window that was killed. Where ``/dev/shm`` is short of room (a container's is
  often 64 MB), the files go to the system's temporary folder instead.
- The child's arrays come back the same way: pickled with protocol 5, their
  buffers out of band in a second file that the parent maps, so no 40 MB
  spectrogram is copied while the GIL is held.
- The child runs at a lower priority (:data:`CHILD_NICE`): on two cores the GUI
  thread wins the CPU from it.
- A cancelled pass (another clip was opened) kills its child at once instead of
  waiting for it, and both files are removed whatever happens.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import pickle
import tempfile
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from cuelab.core.cues import ClipFeatures, extract_signal
from cuelab.core.errors import FeatureError
from cuelab.core.jobs import pool_worker_init
from cuelab.ui.child_process import context, error_message

#: Signals at least this long (seconds) are handed to a child process.
PROCESS_MIN_S = 60.0
#: How often the waiting thread looks at its cancel flag (seconds).
POLL_S = 0.05
#: How much lower the child's CPU priority is than the window's.
CHILD_NICE = 10
#: Out-of-band buffers start at multiples of this many bytes in the result file.
_ALIGN = 64
#: Bytes per ``os.write``: the kernel's copy is cut into short calls.
_WRITE_CHUNK = 1 << 22

T = TypeVar("T")

#: How many child processes this process has started (the window's passes show it).
children_started = 0


def _write_all(fd: int, data: memoryview) -> None:
    view = data.cast("B") if data.format != "B" or data.ndim != 1 else data
    while view:
        view = view[os.write(fd, view[:_WRITE_CHUNK]) :]


def _child(
    conn: Any,
    fn: Callable[..., Any],
    samples: str,
    shape: tuple[int, ...],
    sr: int,
    args: tuple[Any, ...],
    name: str,
    result_path: str,
    parent_pid: int,
) -> None:
    """The child: run ``fn``, write its buffers, send the rest (or the error)."""
    pool_worker_init(parent_pid)  # ends with the window
    with contextlib.suppress(OSError, AttributeError):  # no os.nice on Windows
        os.nice(CHILD_NICE)
    try:
        x = np.asarray(np.memmap(samples, dtype=np.float32, mode="c", shape=shape))
        value = fn(x, sr, *args)
        buffers: list[pickle.PickleBuffer] = []
        payload = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
        spans = []
        fd = os.open(result_path, os.O_WRONLY)
        try:
            offset = 0
            for buf in buffers:
                raw = buf.raw()
                pad = -offset % _ALIGN
                if pad:
                    os.write(fd, b"\0" * pad)
                    offset += pad
                spans.append((offset, raw.nbytes))
                _write_all(fd, raw)
                offset += raw.nbytes
        finally:
            os.close(fd)
        conn.send(("ok", payload, spans))
    except Exception as exc:  # the window must hear of it, as from a worker thread
        conn.send(error_message(exc, name))
    finally:
        conn.close()


_SHM = Path("/dev/shm")
_swept = False


#: Room left in ``/dev/shm`` beside a file before it goes to the disk's temporary folder
#: instead (a container's ``/dev/shm`` is often 64 MB).
SHM_SPARE = 64 << 20


def _ram_free() -> int:
    """Bytes free in ``/dev/shm`` (0 where there is none)."""
    try:
        st = os.statvfs(_SHM)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize


def temp_dir_for(need: int, free: int) -> Path | None:
    """``/dev/shm`` when ``need`` bytes leave :data:`SHM_SPARE` free there; else None
    (the system's temporary folder, on disk: slower, but a full ``/dev/shm`` fails)."""
    return _SHM if free >= need + SHM_SPARE else None


def _temp_file(kind: str, need: int) -> tuple[int, str]:
    """A new file for ``need`` bytes, in RAM where there is room, named after this process."""
    _sweep()
    folder = temp_dir_for(need, _ram_free())
    return tempfile.mkstemp(prefix=f"cuelab-{kind}-{os.getpid()}-", dir=folder)


def _sweep() -> None:
    """Once per process: remove the files of windows that are gone (killed ones)."""
    global _swept
    if _swept or os.name != "posix":  # (on Windows, os.kill(pid, 0) ends the process)
        return
    _swept = True
    folders = {Path(tempfile.gettempdir())} | ({_SHM} if _SHM.is_dir() else set())
    for folder in folders:
        for kind in ("samples", "result"):
            for path in folder.glob(f"cuelab-{kind}-*-*"):
                try:
                    os.kill(int(path.name.split("-")[2]), 0)
                except ValueError:
                    continue
                except ProcessLookupError:
                    if path.is_file():
                        with contextlib.suppress(OSError):
                            path.unlink()
                except PermissionError:
                    pass  # another user's live process


class _Shared:
    """One array's samples file: written once, under its own lock."""

    def __init__(self, x: np.ndarray) -> None:
        self.ref = weakref.ref(x)
        self.lock = threading.Lock()
        self.path: str | None = None


_SHARED: dict[int, _Shared] = {}
#: Re-entrant: a garbage collection inside the locked block may free an old clip's
#: array, whose finalizer (:func:`_forget`) takes this lock in the same thread.
_SHARED_LOCK = threading.RLock()


def _forget(key: int, entry: _Shared) -> None:
    with _SHARED_LOCK:
        if _SHARED.get(key) is entry:
            del _SHARED[key]
    if entry.path is not None:
        with contextlib.suppress(OSError):
            os.unlink(entry.path)


def samples_file(x: np.ndarray) -> str:
    """A file holding ``x`` (contiguous float32), written once per array object and
    removed when the array is freed (or the process exits)."""
    with _SHARED_LOCK:
        entry = _SHARED.get(id(x))
        if entry is None or entry.ref() is not x:
            entry = _SHARED[id(x)] = _Shared(x)
            weakref.finalize(x, _forget, id(x), entry)
    with entry.lock:  # a second pass waits for the first one's write
        if entry.path is None:
            fd, path = _temp_file("samples", 2 * x.nbytes)  # and the results beside it
            try:
                _write_all(fd, x.data)
            except BaseException:
                os.close(fd)
                os.unlink(path)
                raise
            os.close(fd)
            entry.path = path
        return entry.path


def _load_result(payload: bytes, spans: list[tuple[int, int]], path: str) -> Any:
    """Unpickle the child's value, its buffers mapped (copy-on-write) from ``path``."""
    if not spans:
        return pickle.loads(payload)
    with open(path, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:  # only empty buffers (an empty file cannot be mapped)
            return pickle.loads(payload, buffers=[bytearray() for _ in spans])
        mapped = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY)
    view = memoryview(mapped)
    return pickle.loads(payload, buffers=[view[a : a + n] for a, n in spans])


def run_isolated(
    fn: Callable[..., T],
    x: np.ndarray,
    sr: int,
    *args: Any,
    name: str,
    check: Callable[[], None],
    min_s: float = PROCESS_MIN_S,
) -> T:
    """``fn(x, sr, *args)``, in a child process when ``x`` is ``min_s`` seconds or longer.

    Args:
        fn: a module-level function (the child imports it by name).
        x: the samples (float32 in the child).
        sr: their rate.
        name: what errors call the signal.
        check: raises :class:`~cuelab.core.errors.Cancelled` when the caller's job is
            cancelled; polled while the child works, and the child is then killed.
        min_s: signals shorter than this run here, in the calling thread.
    """
    if x.shape[0] < min_s * sr:
        return fn(x, sr, *args)
    ctx = context()
    x = np.ascontiguousarray(x, dtype=np.float32)
    samples = samples_file(x)
    fd, result_path = _temp_file("result", 4 * x.nbytes)  # a spectrogram: up to ~4x
    os.close(fd)
    parent_conn: Any = None
    try:
        parent_conn, child_conn = ctx.Pipe(duplex=False)
        child_args = (child_conn, fn, samples, x.shape, int(sr), args, name, result_path,
                      os.getpid())  # fmt: skip
        proc = ctx.Process(target=_child, args=child_args, name="cuelab-analysis", daemon=True)
        try:
            proc.start()
            global children_started
            children_started += 1
        finally:
            child_conn.close()
        try:
            while not parent_conn.poll(POLL_S):
                check()
                if not proc.is_alive() and not parent_conn.poll(0):
                    raise FeatureError(
                        f"{name}: the analysis process died (exit code {proc.exitcode})"
                    )
            try:
                message = parent_conn.recv()
            except (EOFError, OSError) as exc:
                raise FeatureError(f"{name}: the analysis process died ({exc})") from exc
        finally:
            if proc.is_alive():
                proc.kill()  # cancelled (or failed): its result is not wanted
            if proc.pid is not None:
                proc.join()
        if message[0] == "ok":
            value: T = _load_result(message[1], message[2], result_path)
            return value
        raise message[1]
    finally:
        if parent_conn is not None:
            parent_conn.close()
        with contextlib.suppress(OSError):  # (Windows: a mapped file cannot be removed)
            os.unlink(result_path)


def extract_signal_isolated(
    x: np.ndarray, sr: int, *, name: str, check: Callable[[], None]
) -> ClipFeatures:
    """:func:`extract_signal` of ``x``, in a child process when ``x`` is long.

    Args:
        x: the samples (as for ``extract_signal``).
        sr: their rate.
        name: what errors call the signal.
        check: as for :func:`run_isolated`.
    """
    return run_isolated(_extract, x, sr, name, name=name, check=check)


def _extract(x: np.ndarray, sr: int, name: str) -> ClipFeatures:
    return extract_signal(x, sr, name=name)
