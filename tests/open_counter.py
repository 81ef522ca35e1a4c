"""Count the opens of files, as the kernel sees them (inotify), from every process.

libsndfile opens files in C and feature workers are other processes, so a wrapper
around a Python function would miss them; inotify's ``IN_OPEN`` sees them all. The
kernel merges an event identical to the one queued just before it, so closes are
watched too: open, close, open, close never repeats, and each open is counted.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

IN_CLOSE_NOWRITE = 0x10
IN_OPEN = 0x20
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (struct inotify_event)


class OpenCounter:
    """Opens of the files directly in ``folders``, by file name, since creation."""

    def __init__(self, folders: Iterable[Path]) -> None:
        self._libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        for folder in folders:
            if (
                self._libc.inotify_add_watch(
                    self.fd, os.fsencode(folder), IN_OPEN | IN_CLOSE_NOWRITE
                )
                < 0
            ):
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {folder} failed")
        self.counts: Counter[str] = Counter()

    def take(self) -> Counter[str]:
        """The opens counted since the last call (and reset)."""
        while True:
            try:
                buf = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            i = 0
            while i < len(buf):
                _wd, mask, _cookie, length = _EVENT.unpack_from(buf, i)
                name = buf[i + _EVENT.size : i + _EVENT.size + length].rstrip(b"\0").decode()
                if mask & IN_OPEN and name:  # no name: the folder itself was opened
                    self.counts[name] += 1
                i += _EVENT.size + length
        got, self.counts = self.counts, Counter()
        return got

    def close(self) -> None:
        os.close(self.fd)
