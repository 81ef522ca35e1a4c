"""The model worker: started by CueLab inside a family's environment, it serves one model.

Run as a script (``python -E -s main.py --family ms-clap --handler
wk_msclap:MsClapHandler``, the handler named by the family's recipe), so its folder is
first on ``sys.path`` and ``import protocol`` finds the sibling module; nothing
else of CueLab is imported. Standard library only, Python 3.8 syntax: the
family handlers (``wk_*.py`` beside this file) import the model's own packages
when ``load`` arrives.

Before anything else the real stdout (file descriptor 1) is kept for protocol
lines and fd 1 is pointed at stderr, so a library that prints (laion_clap
prints every parameter name while loading) cannot corrupt the protocol.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from typing import Any, BinaryIO, Dict, Optional

import protocol

#: The protocol stream (the original stdout), once :func:`main` has set it up.
PROTOCOL_OUT = None  # type: Optional[BinaryIO]


def protocol_stream() -> BinaryIO:
    """The original stdout for protocol lines; fd 1 and ``sys.stdout`` now go to stderr."""
    sys.stdout.flush()
    fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(fd, "wb", buffering=0)


def installed_packages() -> Dict[str, str]:
    """Every distribution installed in this environment, name -> version."""
    try:
        from importlib import metadata
    except ImportError:  # pragma: no cover - Python < 3.8
        return {}
    found = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[str(name).lower().replace("_", "-")] = str(dist.version)
    return dict(sorted(found.items()))


def load_class(entry: str) -> Any:
    """Import ``module:Class``."""
    module_name, _, class_name = entry.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)


class Worker:
    """Dispatches requests to one family handler."""

    def __init__(self, family: str, entry: str) -> None:
        self.family = family
        self.entry = entry
        self.handler: Optional[Any] = None

    def handle(self, message: Dict[str, Any]) -> Dict[str, Any]:
        """The response to one request (never raises)."""
        ident = message.get("id")
        op = message.get("op")
        args = message.get("args")
        if op not in protocol.OPS or not isinstance(args, dict):
            return protocol.error(ident, "unknown operation %r" % (op,), "request")
        try:
            return protocol.ok(ident, self._dispatch(str(op), args))
        except protocol.ProtocolError as exc:
            return protocol.error(ident, str(exc), "request")
        except Exception as exc:  # the model's failure, reported as one line
            traceback.print_exc(file=sys.stderr)
            why = "%s: %s" % (type(exc).__name__, exc)
            return protocol.error(ident, why, "model", getattr(exc, "remedy", None))

    def _dispatch(self, op: str, args: Dict[str, Any]) -> Dict[str, Any]:
        if op == "hello":
            return {
                "protocol": protocol.PROTOCOL_VERSION,
                "family": self.family,
                "python": protocol.python_version(),
                "pid": os.getpid(),
                "packages": installed_packages(),
            }
        if op == "close":
            handler, self.handler = self.handler, None
            if handler is not None and hasattr(handler, "close"):
                handler.close()
            return {}
        if op == "load":
            try:  # before any model code: transformers and timm import torchvision
                from wk_common import prepare_torchvision

                prepare_torchvision()
            except ImportError:  # no torch in this environment: the handler will say so
                pass
            cls = load_class(self.entry)
            self.handler = cls(str(args.get("location", "")), dict(args.get("options") or {}))
            return dict(self.handler.info())
        if self.handler is None:
            raise protocol.ProtocolError("%s before load" % op)
        method = getattr(self.handler, op, None)
        if method is None:
            raise protocol.ProtocolError("family %s does not serve %s" % (self.family, op))
        if "audio" in args:
            args = dict(args)
            args["audio"] = Audio(args["audio"])
        return dict(method(**args))


class Audio:
    """Audio of a request: float32 samples (bytes) or a file path, at ``sr``."""

    def __init__(self, payload: Dict[str, Any]) -> None:
        self.data, self.path, self.sr = protocol.audio_from_payload(payload)

    def samples(self, rate: int) -> Any:
        """The samples as a float32 numpy array at ``rate`` (files are read and resampled)."""
        import numpy as np

        if self.data is not None:
            if self.sr != rate:
                raise ValueError("audio at %d Hz, the model wants %d Hz" % (self.sr, rate))
            return np.frombuffer(self.data, dtype="<f4").astype(np.float32)
        import librosa

        audio, _ = librosa.load(self.path, sr=rate, mono=True)
        return audio.astype(np.float32)


def serve(worker: Worker, inp: BinaryIO, out: BinaryIO) -> None:
    """Answer requests until ``close`` or the end of input (one response per line)."""
    while True:
        line = inp.readline(protocol.MAX_LINE + 1)
        if not line:
            return
        if len(line) > protocol.MAX_LINE and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):  # the rest of the same request
                line = inp.readline(protocol.MAX_LINE + 1)
            message = "request longer than %d bytes" % protocol.MAX_LINE
            out.write(protocol.encode(protocol.error(None, message, "request")))
            continue
        if not line.strip():
            continue
        try:
            message = protocol.decode(line)
        except protocol.ProtocolError as exc:
            out.write(protocol.encode(protocol.error(None, str(exc), "request")))
            continue
        response = worker.handle(message)
        try:
            data = protocol.encode(response)
        except (TypeError, ValueError) as exc:  # NaN or infinity, or not JSON at all
            why = "the model returned a value JSON cannot carry (%s)" % exc
            data = protocol.encode(protocol.error(message.get("id"), why, "model"))
        out.write(data)
        if message.get("op") == "close":
            return


def watch_parent() -> None:
    """End this worker and what it started when CueLab is gone (even after kill -9).

    The parent holds our stdin; we notice its end only at the next read, so a long
    request would run on for nothing. Linux: a pidfd of the parent; else a poll.
    """
    import os
    import select
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        try:
            fd = os.pidfd_open(parent)
        except ProcessLookupError:
            end_group()
        except (AttributeError, OSError):
            while os.getppid() == parent:
                time.sleep(0.5)
            end_group()
        select.select([fd], [], [])
        end_group()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def end_group() -> None:
    """Exit, taking the processes this worker started along (CueLab starts each worker as
    the leader of its own process group); a worker started otherwise only exits."""
    import signal

    if hasattr(os, "killpg") and os.getpgrp() == os.getpid():
        os.killpg(0, signal.SIGKILL)
    os._exit(1)


def main(argv: Optional[list] = None) -> int:
    """Entry point: ``--family NAME --handler module:Class [--path DIR ...]``.

    The handler comes from the family's recipe (the parent passes it): the worker knows
    no list of families, so a new family needs no edit here.
    """
    parser = argparse.ArgumentParser(description="CueLab model worker")
    parser.add_argument("--family", required=True)
    parser.add_argument("--handler", required=True, help="module:Class of the family's handler")
    parser.add_argument("--path", action="append", default=[], help="prepend to sys.path")
    args = parser.parse_args(argv)
    global PROTOCOL_OUT
    out = PROTOCOL_OUT = protocol_stream()
    for folder in reversed(args.path):
        sys.path.insert(0, folder)
    watch_parent()
    serve(Worker(args.family, args.handler), sys.stdin.buffer, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
