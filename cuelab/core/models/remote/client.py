"""One client per endpoint, requests spread over the endpoints, bounded retries with backoff.

Every request (chat completions, the model list, vLLM's root endpoints
``/version`` and ``/tokenize``) goes through ``httpx`` over
:class:`~cuelab.core.models.remote.transport.DeadlineBackend`, so each try has
a whole-request deadline (connect included) and :meth:`EndpointPool.abort`
cuts every request in flight at once. Retries follow the usual recipe
(tenacity, exponential backoff with jitter): a 429, a 5xx or a broken connection is tried
again, on the next endpoint in turn; a try that ran out its deadline only
once more; a 4xx is the request's fault and is not. An endpoint that keeps
failing is rested for a while so the others carry the run; one that stays
down ends the run with one line that names it.

An answer is checked before it is used: a body that is not JSON (an HTML
page), an HTTP 200 that carries ``{"error": ...}``, a body larger than
:data:`MAX_RESPONSE_BYTES` or a redirect to another host or port is one
:class:`ServerAnswerError` naming the endpoint, never an empty answer.

The API key is given to the clients and nowhere else: it is not an attribute
of the pool, and every message is passed through :func:`redact`, which also
catches the key when the server echoes it in another case or cut short.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from cuelab.core.errors import ModelError
from cuelab.core.models.remote.answers import (
    ServerAnswerError,
    check_chat_answer,
    error_message,
    parse_json,
    redact,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Consecutive failures after which an endpoint is rested for ``REST_S`` seconds.
REST_AFTER = 3
REST_S = 30.0
#: Seconds to open a connection (within the try's deadline): a host that drops packets
#: is a failed try, not a long wait.
CONNECT_TIMEOUT_S = 10.0
#: Tries of one request that may end by running out their deadline: a server that held
#: a request for the whole deadline is stuck or overloaded, not flaky.
TIMEOUT_TRIES = 2
#: The most bytes one answer may have (a prompt_logprobs answer for an 8k-token prompt
#: is about 1 MB); a larger one is refused, not stored.
MAX_RESPONSE_BYTES = 32 * 1024 * 1024


def _redactor(key: str | None) -> Callable[[str], str]:
    """A function that blanks the key out of a text (a second guard behind ``reason``)."""
    return lambda text: redact(text, key)


class RemoteRequestError(ModelError):
    """A request the server refused (a 4xx other than 429): retrying would not help."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class StatusError(Exception):
    """An HTTP status other than 2xx, with the body the server sent (read within the bound)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status_code = status
        self.text = text


class RequestCancelled(ModelError):
    """The pool was aborted while the request was in flight (Ctrl-C, SIGTERM, a closed window)."""


def root_url(endpoint: str) -> str:
    """The server root of a ``.../v1`` base URL (vLLM serves ``/version`` and ``/tokenize`` there)."""
    parts = urlsplit(endpoint)
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _origin(url: Any) -> tuple[str, str, int | None]:
    import httpx

    u = httpx.URL(str(url))
    default = {"http": 80, "https": 443}.get(u.scheme)
    return u.scheme, u.host, u.port or default


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if status is None:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
    return int(status) if isinstance(status, int) else None


def _timed_out(exc: BaseException) -> bool:
    import httpx

    return isinstance(exc, httpx.TimeoutException)


def retryable(exc: BaseException) -> bool:
    """429, 5xx, timeouts and broken connections are worth another try."""
    import httpx

    if isinstance(exc, (ServerAnswerError, RequestCancelled)):
        return False
    if isinstance(exc, httpx.TransportError):
        return True
    status = _status(exc)
    return status is not None and (status == 429 or status >= 500)


def reason(exc: BaseException) -> str:
    """A short, credential-free reason for a failed request."""
    import httpx

    if _timed_out(exc):
        return "timed out"
    if isinstance(exc, httpx.TransportError):
        cause = exc.__cause__ or exc
        text = " ".join(str(cause).split()) or type(cause).__name__
        return f"connection failed ({text[:120]})"
    if isinstance(exc, ModelError):
        return " ".join(str(exc).split())
    status = _status(exc)
    message = ""
    if isinstance(exc, StatusError):
        message = error_message(exc.text)
    message = " ".join(message.split())[:200]
    if status is not None:
        return f"HTTP {status}" + (f": {message}" if message else "")
    return " ".join(str(exc).split())[:200] or type(exc).__name__


@dataclass
class RequestStats:
    """Counts for progress lines: requests sent, retries, failures, time since the first."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    started: float = field(default_factory=time.monotonic)

    def note(self) -> str:
        """``12.5 req/s, 2 retries`` (failures only when there were some)."""
        elapsed = max(time.monotonic() - self.started, 1e-6)
        text = f"{self.requests / elapsed:.1f} req/s, {self.retries} retries"
        if self.failures:
            text += f", {self.failures} failed"
        return text


class EndpointPool:
    """Clients for a list of endpoints, used in turn, with retries and resting.

    Args:
        endpoints: base URLs (``http://host:8000/v1``).
        key: the API key, or None (vLLM without ``--api-key``).
        timeout: seconds a single try of a request may take in all (connect, send,
            wait, read), however the server trickles.
        attempts: tries per request, over the endpoints in turn.
        backoff: first wait between tries, doubled each time (at most ``max_backoff``).
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        key: str | None,
        *,
        timeout: float = 600.0,
        attempts: int = 6,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
    ) -> None:
        import httpx

        from cuelab.core.models.remote.transport import DeadlineBackend

        self.endpoints = tuple(endpoints)
        self.attempts = max(1, attempts)
        self.timeout = float(timeout)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._backend = DeadlineBackend()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        limits = httpx.Timeout(self.timeout, connect=min(CONNECT_TIMEOUT_S, self.timeout))
        self._http = []
        for url in self.endpoints:
            transport = httpx.HTTPTransport(retries=0, proxy=_proxy_for(url))
            # httpx builds its pool on httpcore; ours gives each try a deadline and can abort
            transport._pool._network_backend = self._backend
            self._http.append(httpx.Client(
                headers=headers, timeout=limits, transport=transport, follow_redirects=True,
                event_hooks={"request": [self._same_origin(url)]}, trust_env=False,
            ))  # fmt: skip
        self._secret = _redactor(key)
        self._lock = threading.Lock()
        self._turn = 0
        self._fails = [0] * len(self.endpoints)
        self._rest_until = [0.0] * len(self.endpoints)
        self.stats = RequestStats()

    @staticmethod
    def _same_origin(endpoint: str) -> Callable[[Any], None]:
        """A request hook refusing a redirect to another scheme, host or port."""
        origin = _origin(endpoint)

        def check(request: Any) -> None:
            if _origin(request.url) != origin:
                u = request.url
                raise ServerAnswerError(
                    f"the server redirects to {u.scheme}://{u.host}:{u.port or ''}, another "
                    "host or port; put the URL it serves on in the model spec"
                )

        return check

    # ----- choosing an endpoint ------------------------------------------------------

    def _pick(self) -> int:
        """The next endpoint in turn that is not resting (any, when all are)."""
        with self._lock:
            now = time.monotonic()
            n = len(self.endpoints)
            for step in range(n):
                i = (self._turn + step) % n
                if self._rest_until[i] <= now:
                    self._turn = i + 1
                    return i
            i = self._turn % n
            self._turn = i + 1
            return i

    def _done(self, i: int, ok: bool) -> None:
        with self._lock:
            if ok:
                self._fails[i] = 0
                return
            self.stats.failures += 1
            self._fails[i] += 1
            if self._fails[i] >= REST_AFTER and len(self.endpoints) > 1:
                self._rest_until[i] = time.monotonic() + REST_S
                log.warning("endpoint %s rested for %.0f s after %d failures",
                            self.endpoints[i], REST_S, self._fails[i])  # fmt: skip

    # ----- requests --------------------------------------------------------------------

    @property
    def aborted(self) -> bool:
        """True once :meth:`abort` was called: every request fails at once."""
        return self._backend.aborted.is_set()

    def abort(self) -> None:
        """Cut every request in flight and refuse new ones (Ctrl-C, SIGTERM, a closed window).

        Threads blocked in a connect, a read or a backoff wait return at once with
        :class:`RequestCancelled`.
        """
        self._backend.abort()

    def call(self, fn: Callable[[int], T], *, endpoint: int | None = None, what: str = "") -> T:
        """Run ``fn(endpoint_index)`` with retries, on ``endpoint`` or on each in turn.

        Raises:
            RemoteRequestError: the server refused the request (4xx other than 429).
            ServerAnswerError: the server answered with something that is not an answer.
            RequestCancelled: the pool was aborted.
            ModelError: every try failed; the message names the endpoint(s) and why.
        """
        from tenacity import (
            RetryCallState,
            Retrying,
            retry_if_exception,
            stop_after_attempt,
            wait_exponential,
            wait_random,
        )

        tried: dict[int, str] = {}
        timeouts = made = 0

        def count_retry(state: RetryCallState) -> None:
            with self._lock:
                self.stats.retries += 1

        def worth_retrying(exc: BaseException) -> bool:
            if self.aborted:
                return False
            return retryable(exc) and not (_timed_out(exc) and timeouts >= TIMEOUT_TRIES)

        def attempt() -> T:
            nonlocal timeouts, made
            if self.aborted:
                raise RequestCancelled("cancelled")
            i = self._pick() if endpoint is None else endpoint
            made += 1
            with self._lock:
                self.stats.requests += 1
            try:
                with self._backend.deadline(self.timeout):
                    result = fn(i)
            except Exception as exc:
                if self.aborted:
                    raise RequestCancelled("cancelled") from None
                timeouts += _timed_out(exc)
                tried[i] = self._secret(reason(exc))
                if retryable(exc):  # a refused request says nothing about the server's health
                    self._done(i, ok=False)
                log.info("request to %s failed: %s", self.endpoints[i], tried[i])
                raise
            self._done(i, ok=True)
            return result

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            # jitter: requests that failed together must not retry in lockstep (a server
            # that sheds every n-th request would otherwise refuse the same one each round)
            wait=wait_exponential(multiplier=self.backoff, max=self.max_backoff)
            + wait_random(0, self.backoff),
            retry=retry_if_exception(worth_retrying),
            before_sleep=count_retry,
            sleep=self._backend.sleep,  # an abort ends the wait between tries at once
            reraise=True,
        )
        try:
            return retrying(attempt)
        except RequestCancelled:
            raise
        except Exception as exc:
            where = ", ".join(self.endpoints[i] for i in sorted(tried)) or ", ".join(self.endpoints)
            label = f" ({what})" if what else ""
            why = self._secret(reason(exc))
            if self.aborted:
                raise RequestCancelled("cancelled") from None
            if isinstance(exc, ServerAnswerError):
                raise ServerAnswerError(f"{where}{label}: {why}") from None
            if isinstance(exc, ModelError) and not isinstance(exc, RemoteRequestError):
                raise ModelError(f"{where}{label}: {why}") from None  # a reader's finding
            if not retryable(exc):
                raise RemoteRequestError(f"{where}{label}: {why}", _status(exc)) from None
            deadline = f" (each try is given {self.timeout:g} s)" if _timed_out(exc) else ""
            raise ModelError(
                f"{where}{label}: no answer after {made} tries; last: {why}{deadline}"
            ) from None

    def _send(
        self, i: int, method: str, url: str, body: Any = None, missing_ok: bool = False
    ) -> Any:
        """One request: the JSON of a 2xx, or None for a 404 or 405 when ``missing_ok``.

        Raises:
            StatusError: any other status (429 and 5xx are retried).
            ServerAnswerError: a 2xx whose body is not JSON or is too large.
        """
        client = self._http[i]
        response = client.send(client.build_request(method, url, json=body), stream=True)
        try:
            data = _read_bounded(response)
        finally:
            response.close()
        status = response.status_code
        if missing_ok and status in (404, 405):
            return None
        if not 200 <= status < 300:
            raise StatusError(status, data.decode("utf-8", errors="replace"))
        return parse_json(data, response.headers.get("content-type", ""))

    def chat(
        self,
        payload: dict[str, Any],
        *,
        endpoint: int | None = None,
        read: Callable[[dict[str, Any]], T] | None = None,
    ) -> Any:
        """One non-streaming chat completion; ``payload``'s ``extra_body`` is merged in.

        ``read`` turns the answer into what the caller needs inside the try, so that a
        :class:`ServerAnswerError` it raises names the endpoint that gave the answer.
        """
        params = dict(payload)
        params.update(params.pop("extra_body", None) or {})

        def send(i: int) -> Any:
            data = self._send(i, "POST", f"{self.endpoints[i]}/chat/completions", params)
            answer = check_chat_answer(data)
            return read(answer) if read is not None else answer

        return self.call(send, endpoint=endpoint, what="chat completion")

    def embeddings(self, body: dict[str, Any], *, endpoint: int | None = None) -> dict[str, Any]:
        """One ``POST /v1/embeddings`` (OpenAI's protocol), answered as the server's JSON.

        The raw JSON is returned (not the ``openai`` package's parsed object) so that a
        ``base64`` answer is decoded by the caller exactly as the server sent it.
        """

        def send(i: int) -> dict[str, Any]:
            data = self._send(i, "POST", f"{self.endpoints[i]}/embeddings", body)
            if not isinstance(data, dict):
                raise ServerAnswerError("/embeddings answered no JSON object")
            if "error" in data and "data" not in data:
                raise ServerAnswerError(
                    f"/embeddings answered HTTP 200 with an error: {data['error']}"
                )
            return data

        return self.call(send, endpoint=endpoint, what="POST /v1/embeddings")

    def models(self, endpoint: int) -> list[str]:
        """The model ids one endpoint serves (``GET /v1/models``)."""

        def send(i: int) -> list[str]:
            data = self._send(i, "GET", f"{self.endpoints[i]}/models")
            listed = data.get("data") if isinstance(data, dict) else None
            if not isinstance(listed, list) or not all(
                isinstance(m, dict) and isinstance(m.get("id"), str) and 0 < len(m["id"]) <= 500
                for m in listed
            ):
                raise ServerAnswerError(
                    "the answer is not a list of models (ids of 1-500 characters)"
                )
            return [str(m["id"]) for m in listed]

        return self.call(send, endpoint=endpoint, what="GET /v1/models")

    def root_get(self, path: str, endpoint: int = 0) -> dict[str, Any] | None:
        """``GET`` a root endpoint (``/version``); None when the server has no such route."""
        return self._root("GET", path, None, endpoint)

    def root_post(
        self,
        path: str,
        body: dict[str, Any],
        endpoint: int | None = None,
        read: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> dict[str, Any] | None:
        """``POST`` to a root endpoint (``/tokenize``); None when the server has no such route.

        Raises:
            ServerAnswerError: a 200 that is not a JSON object (a broken server, not a
                missing feature).
        """
        return self._root("POST", path, body, endpoint, read)

    def _root(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        endpoint: int | None,
        read: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> dict[str, Any] | None:
        def send(i: int) -> dict[str, Any] | None:
            url = f"{root_url(self.endpoints[i])}{path}"
            data = self._send(i, method, url, body, missing_ok=True)
            if data is not None and not isinstance(data, dict):
                raise ServerAnswerError(
                    f"the answer is a JSON {type(data).__name__}, not an object"
                )
            return read(data) if read is not None and data is not None else data

        return self.call(send, endpoint=endpoint, what=f"{method} {path}")

    def close(self) -> None:
        """Close every connection."""
        for http in self._http:
            http.close()


def _proxy_for(url: str) -> str | None:
    """The HTTP proxy the environment names for ``url`` (``HTTPS_PROXY``, ``NO_PROXY``...).

    The clients are given their transport (for the deadline backend), so httpx does
    not read the proxy variables itself; only http(s) proxies are used.
    """
    from urllib.request import getproxies, proxy_bypass

    parts = urlsplit(url)
    if not parts.hostname or proxy_bypass(parts.hostname):
        return None
    proxy = getproxies().get(parts.scheme)
    return proxy if proxy and proxy.startswith(("http://", "https://")) else None


def _read_bounded(response: Any) -> bytes:
    """The body of ``response``, refused past :data:`MAX_RESPONSE_BYTES`."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        raise ServerAnswerError(
            f"the answer is {int(declared):,} bytes; at most {MAX_RESPONSE_BYTES:,} are read"
        )
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise ServerAnswerError(f"the answer is over {MAX_RESPONSE_BYTES:,} bytes; refused")
        chunks.append(chunk)
    return b"".join(chunks)
