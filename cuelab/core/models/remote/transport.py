"""The sockets under the remote clients: a deadline per try, and cancellation.

httpx's timeouts bound each socket operation, not a request: a server that
sends one byte every 40 ms never trips a 1 s read timeout, and holds the
request for as long as it likes. And a request blocked in ``recv`` cannot be
stopped from another thread, so Ctrl-C or SIGTERM had to wait for it.

:class:`DeadlineBackend` is an httpcore network backend (the layer httpx
builds its connection pool on) that fixes both:

* every connect, read and write is given at most the time left before the
  calling thread's deadline (:meth:`DeadlineBackend.deadline`), so a try ends
  when its deadline passes, however the server trickles;
* every socket it opens is tracked, and :meth:`DeadlineBackend.abort` shuts
  them all down, which wakes a thread blocked in ``connect`` or ``recv`` at
  once; the backend refuses new connections from then on.
"""

from __future__ import annotations

import socket
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import httpcore
from httpcore._backends.sync import SyncStream


class Aborted(httpcore.ConnectError):
    """A connection refused or cut because the pool was aborted (a signal, a closing window)."""


class _BoundedStream(httpcore.NetworkStream):
    """A stream whose operations never outlast the calling thread's deadline."""

    def __init__(self, inner: httpcore.NetworkStream, backend: DeadlineBackend) -> None:
        self._inner = inner
        self._backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._backend.bound(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # one bounded write per chunk, so a server that stops reading cannot hold it
        view = memoryview(buffer)
        while view:
            chunk = view[:65536]
            self._inner.write(bytes(chunk), self._backend.bound(timeout, httpcore.WriteTimeout))
            view = view[len(chunk) :]

    def close(self) -> None:
        self._backend.forget(self._inner.get_extra_info("socket"))
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        old = self._inner.get_extra_info("socket")
        limit = self._backend.bound(timeout, httpcore.ConnectTimeout)
        inner = self._inner.start_tls(ssl_context, server_hostname, limit)
        self._backend.forget(old)
        self._backend.track(inner.get_extra_info("socket"))
        return _BoundedStream(inner, self._backend)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """Plain TCP (and TLS on top) with per-thread deadlines and an abort switch."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self.aborted = threading.Event()

    # ----- deadlines -------------------------------------------------------------------

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """Give every socket operation of this thread in the block ``seconds`` in all."""
        previous = getattr(self._local, "until", None)
        self._local.until = time.monotonic() + seconds
        try:
            yield
        finally:
            self._local.until = previous

    def bound(self, timeout: float | None, error: type[Exception]) -> float:
        """``timeout`` cut to the time left before the deadline; ``error`` when none is left."""
        if self.aborted.is_set():
            raise Aborted("cancelled")
        until = getattr(self._local, "until", None)
        if until is None:
            return timeout if timeout is not None else 600.0
        left = until - time.monotonic()
        if left <= 0:
            raise error("the request's deadline passed")
        return left if timeout is None else min(timeout, left)

    # ----- tracking and aborting ---------------------------------------------------------

    def track(self, sock: Any) -> None:
        if isinstance(sock, socket.socket):
            with self._lock:
                self._sockets.add(sock)
            if self.aborted.is_set():  # aborted while this one was being opened
                _shut(sock)

    def forget(self, sock: Any) -> None:
        if isinstance(sock, socket.socket):
            with self._lock:
                self._sockets.discard(sock)

    def abort(self) -> None:
        """Refuse new connections and cut every open one (wakes blocked reads at once)."""
        self.aborted.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    # ----- httpcore.NetworkBackend -------------------------------------------------------

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        limit = self.bound(timeout, httpcore.ConnectTimeout)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        last: Exception = httpcore.ConnectError(f"no address for {host}")
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            self.track(sock)
            try:
                if local_address is not None:
                    sock.bind((local_address, 0))
                for option in socket_options or ():
                    sock.setsockopt(*option)
                sock.settimeout(limit)
                sock.connect(address)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as exc:
                self.forget(sock)
                sock.close()
                if self.aborted.is_set():
                    raise Aborted("cancelled") from None
                if isinstance(exc, socket.timeout):
                    raise httpcore.ConnectTimeout(f"no connection within {limit:.3g} s") from exc
                last = httpcore.ConnectError(str(exc) or type(exc).__name__)
                continue
            return _BoundedStream(SyncStream(sock), self)
        raise last

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:  # pragma: no cover - endpoints are http(s) URLs
        raise httpcore.ConnectError("unix sockets are not used for remote models")

    def sleep(self, seconds: float) -> None:
        self.aborted.wait(seconds)


def _shut(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
