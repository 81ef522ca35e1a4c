"""CueLab's side of a model worker: the process, its timeouts, its log.

One :class:`WorkerProcess` per loaded model. Requests go one at a time (a
lock): a worker holds one model and serves one request. Three threads watch
the process: the caller (writes a request, waits on a queue with a timeout),
a reader of stdout (one protocol line per response) and a reader of stderr
(every line to CueLab's log, the last ones kept for the error message).

A worker that exits, stops answering within the timeout, or writes anything
on stdout that is not a protocol line is stopped and reported as one
:class:`WorkerCrashed` line; the adapter decides whether to start a new one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cuelab.core import errors
from cuelab.core.errors import ModelError
from cuelab.core.models.isolated.worker import protocol

log = logging.getLogger(__name__)

#: The worker script; its folder holds the protocol and the family handlers.
WORKER_DIR = Path(__file__).resolve().parent / "worker"
WORKER_SCRIPT = WORKER_DIR / "main.py"

#: The only variables of CueLab's environment a worker gets (plus every ``LC_*``, and the
#: names listed in ``CUELAB_WORKER_ENV``). A worker may run a checkpoint's own code, so
#: nothing else reaches it: no credentials (``HF_TOKEN``, API keys, a proxy URL with a
#: password), and none of CueLab's ``PYTHONPATH``/``VIRTUAL_ENV``, which would make the
#: environment import CueLab's packages instead of its own.
WORKER_ENV_ALLOWED = (
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP",
    "HF_HOME", "HF_HUB_CACHE", "TRANSFORMERS_CACHE", "TORCH_HOME", "NUMBA_CACHE_DIR",
    "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME",
    "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "NVIDIA_VISIBLE_DEVICES",
    "PYTORCH_CUDA_ALLOC_CONF", "LD_LIBRARY_PATH",
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
)  # fmt: skip

#: Names a user adds to the allow-list (comma-separated), e.g. a site's own cache variable.
WORKER_ENV_EXTRA = "CUELAB_WORKER_ENV"

#: The longest stderr line kept whole (a longer one is logged in pieces).
_STDERR_LINE = 1 << 16

#: Seconds a worker's answer may still arrive after its process has exited.
EXIT_GRACE = 0.5


def worker_env_names(environ: Mapping[str, str]) -> set[str]:
    """The names of ``environ`` a worker may see (the allow-list, ``LC_*``, the user's extras)."""
    extra = {n.strip() for n in environ.get(WORKER_ENV_EXTRA, "").split(",") if n.strip()}
    allowed = set(WORKER_ENV_ALLOWED) | extra
    return {n for n in environ if n in allowed or n.startswith("LC_")}


#: What :meth:`WorkerProcess._next_line` returns when the time is up.
_TIMED_OUT: Any = object()


class WorkerCrashed(ModelError):
    """The worker exited, hung or broke the protocol; it has been stopped."""


@dataclass
class WorkerCommand:
    """How to start a worker.

    Attributes:
        python: the environment's interpreter.
        family: the family name (picks the handler inside the worker).
        handler: ``module:Class`` instead of the family's own handler.
        extra_path: folders put first on the worker's ``sys.path`` (for ``handler``).
        env: extra environment variables.
    """

    python: str
    family: str
    handler: str | None = None
    extra_path: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict)

    def argv(self) -> list[str]:
        """The command line; ``-E -s`` keep CueLab's PYTHONPATH and user site out."""
        args = [self.python, "-E", "-s", str(WORKER_SCRIPT), "--family", self.family]
        if self.handler:
            args += ["--handler", self.handler]
        for folder in self.extra_path:
            args += ["--path", str(folder)]
        return args

    def environment(self, offline: bool) -> dict[str, str]:
        """The worker's environment: the allowed part of CueLab's, offline unless asked otherwise."""
        names = worker_env_names(os.environ)
        env = {k: v for k, v in os.environ.items() if k in names}
        if offline:
            env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        env.update(PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
        env.update(self.env)
        return env


class WorkerProcess:
    """A running worker.

    Args:
        command: how to start it.
        call_timeout: seconds one request may take (``load`` gets ``startup_timeout``).
        startup_timeout: seconds for ``hello`` and ``load``.
        offline: set the Hugging Face offline switches in the worker.
    """

    def __init__(
        self,
        command: WorkerCommand,
        call_timeout: float = 600.0,
        startup_timeout: float = 900.0,
        offline: bool = True,
    ) -> None:
        self.command = command
        self.name = f"{command.family} worker"
        self.call_timeout = call_timeout
        self.startup_timeout = startup_timeout
        self.offline = offline
        self._proc: subprocess.Popen[bytes] | None = None
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._stderr_tail: deque[str] = deque(maxlen=20)
        self._lock = threading.Lock()
        self._ident = 0
        self._log = logging.getLogger(f"cuelab.worker.{command.family}")
        self.hello: dict[str, Any] = {}

    # ------------------------------------------------------------------ life cycle

    def start(self) -> dict[str, Any]:
        """Start the process and greet it; returns the worker's ``hello``.

        Raises:
            ModelError: the interpreter cannot be started or speaks another protocol.
            WorkerCrashed: it died or hung before answering.
        """
        argv = self.command.argv()
        log.info("starting %s: %s", self.name, " ".join(argv))
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self.command.environment(self.offline),
                start_new_session=True,  # its own group: Ctrl-C reaches CueLab, which ends the group
            )
        except OSError as exc:
            raise ModelError(f"{self.name} cannot start {self.command.python}: {exc}") from exc
        self._lines = queue.Queue()
        assert self._proc.stdout is not None and self._proc.stderr is not None
        threading.Thread(
            target=self._read_stdout, args=(self._proc.stdout, self._lines), daemon=True
        ).start()
        threading.Thread(target=self._read_stderr, args=(self._proc.stderr,), daemon=True).start()
        try:
            hello = self.call("hello", {}, timeout=self.startup_timeout)
        except ModelError:
            self.kill()  # a worker that cannot greet is not left running
            raise
        if hello.get("protocol") != protocol.PROTOCOL_VERSION:
            self.kill()
            raise ModelError(
                f"{self.name} speaks protocol {hello.get('protocol')!r}, CueLab speaks "
                f"{protocol.PROTOCOL_VERSION}",
                subject=self.command.family,
                remedy=errors.build_env(self.command.family),
            )
        self.hello = hello
        return hello

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self._proc is not None and not self._exited()

    @property
    def pid(self) -> int | None:
        """The process id (None before start)."""
        return self._proc.pid if self._proc is not None else None

    def close(self, timeout: float = 10.0) -> None:
        """Ask the worker to close, then make sure the process is gone."""
        if self._proc is None:
            return
        if self.alive:
            try:
                self.call("close", {}, timeout=timeout)
            except ModelError as exc:
                log.info("%s did not close cleanly: %s", self.name, exc)
        self.kill()

    def kill(self) -> None:
        """Stop the process and everything it started (its process group), now."""
        proc = self._proc
        if proc is None:
            return
        for stream in (proc.stdin,):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        deadline = time.monotonic() + 2.0  # it exits by itself on end of input
        while not self._exited() and time.monotonic() < deadline:
            time.sleep(0.02)
        self._force_stop()

    # ------------------------------------------------------------------ requests

    def call(self, op: str, args: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Send one request and wait for its response.

        Raises:
            ModelError: the worker answered with an error (it keeps running).
            WorkerCrashed: it exited, did not answer in time, or broke the protocol
                (it has been stopped).
        """
        limit = self.call_timeout if timeout is None else timeout
        with self._lock:
            proc = self._proc
            if proc is None or proc.stdin is None:
                raise WorkerCrashed(f"{self.name} is not running")
            self._ident += 1
            ident = self._ident
            started = time.monotonic()
            data = protocol.encode(protocol.request(ident, op, args))
            if len(data) > protocol.MAX_LINE:  # refused here: the worker is not disturbed
                raise ModelError(
                    f"{self.command.family}: the {op} request is {len(data) / 2**20:.0f} MiB, "
                    f"over the protocol's {protocol.MAX_LINE // 2**20} MiB (a shorter clip "
                    "or a selection)"
                )
            try:
                proc.stdin.write(data)
                proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                raise self._crashed(op, "exited") from None
            try:
                line = self._next_line(limit)
            except BaseException:  # Ctrl-C or SIGTERM mid-request: its answer is lost
                self._force_stop()
                raise
            if line is _TIMED_OUT:
                self._force_stop()
                raise WorkerCrashed(
                    f"{self.name} did not answer {op} within {limit:g} s and was stopped"
                ) from None
            if line is None or not line.endswith(b"\n"):  # gone, perhaps mid-answer
                raise self._crashed(op, "exited")
            try:
                answer = protocol.decode(line)
                ok, result = protocol.check_response(answer, ident)
            except protocol.ProtocolError as exc:
                self._force_stop()
                raise WorkerCrashed(
                    f"{self.name} broke the protocol during {op} and was stopped: {exc}"
                ) from None
            log.debug("%s %s took %.3f s", self.name, op, time.monotonic() - started)
        if not ok:
            raise ModelError(f"{self.command.family}: {result}", remedy=_remedy(answer))
        return dict(result)

    # ------------------------------------------------------------------ internals

    def _next_line(self, limit: float) -> bytes | None:
        """The next protocol line; None when the worker is gone; :data:`_TIMED_OUT` after ``limit``.

        The process is watched, not only the pipe: a worker that exits while a child
        it started still holds stdout open gives no end of file, yet it is gone.
        """
        deadline = time.monotonic() + limit
        exited_at: float | None = None
        while True:
            left = deadline - time.monotonic()
            try:
                return self._lines.get(timeout=max(0.0, min(0.1, left)))
            except queue.Empty:
                pass
            if self._exited():
                exited_at = exited_at or time.monotonic()
                if time.monotonic() - exited_at > EXIT_GRACE:  # its last line would be here
                    return None
            if time.monotonic() >= deadline:
                return _TIMED_OUT

    def _exited(self) -> bool:
        """True once the worker's own process has ended (it is not reaped here, so its
        PID, which is also its process group's ID, cannot be reused before the group is
        stopped)."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return True
        try:
            return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True
        except (AttributeError, OSError):  # pragma: no cover - no waitid (not Linux/macOS)
            return proc.poll() is not None

    def _crashed(self, op: str, what: str) -> WorkerCrashed:
        proc = self._proc
        code = None
        if proc is not None:
            deadline = time.monotonic() + 5.0
            while not self._exited() and time.monotonic() < deadline:
                time.sleep(0.02)
            self._force_stop()
            code = proc.returncode
        time.sleep(0.05)  # let the stderr reader catch the last lines
        last = next((s for s in reversed(self._stderr_tail) if s.strip()), "")
        detail = f"; last message: {last[:300]}" if last else ""
        return WorkerCrashed(f"{self.name} {what} (code {code}) during {op}{detail}")

    def _force_stop(self) -> None:
        """Kill the worker's process group (the worker and whatever it started), then reap."""
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None and hasattr(os, "killpg"):
            # start_new_session: the group's ID is the worker's PID
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=10.0)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not refused
            log.warning("%s (PID %s) did not end after SIGKILL", self.name, proc.pid)

    @staticmethod
    def _read_stdout(stream: IO[bytes], lines: queue.Queue[bytes | None]) -> None:
        try:
            for line in iter(lambda: stream.readline(protocol.MAX_LINE + 1), b""):
                lines.put(line)
        except (OSError, ValueError):
            pass
        lines.put(None)

    def _read_stderr(self, stream: IO[bytes]) -> None:
        try:
            for raw in iter(lambda: stream.readline(_STDERR_LINE), b""):  # bounded memory
                text = raw.decode("utf-8", errors="replace").rstrip()
                self._stderr_tail.append(text)
                self._log.info("%s", text)
        except (OSError, ValueError):
            pass


def _remedy(answer: dict[str, Any]) -> errors.Remedy | None:
    """The remedy a worker's error response names (``allow-pickle``…), if CueLab knows it."""
    try:
        return errors.Remedy(errors.RemedyKind(answer.get("remedy")))
    except ValueError:  # none, or one this CueLab does not know
        return None
