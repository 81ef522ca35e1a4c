"""One client per endpoint, requests spread over the endpoints, bounded retries with backoff.

Chat completions and the model list go through the ``openai`` package (vLLM's
extras ride in ``extra_body``); vLLM's root endpoints (``/version``,
``/tokenize``) through ``httpx``, which ``openai`` is built on. Retries follow
the usual recipe (tenacity, exponential backoff): a 429, a 5xx, a timeout or a
broken connection is tried again, on the next endpoint in turn; a 4xx is the
request's fault and is not. An endpoint that keeps failing is rested for a
while so the others carry the run; one that stays down ends the run with one
line that names it.

The API key is given to the clients and nowhere else: it is not an attribute
of the pool, and error messages are built from status codes and the server's
own message, never from the request.
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

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Consecutive failures after which an endpoint is rested for ``REST_S`` seconds.
REST_AFTER = 3
REST_S = 30.0
#: Seconds to open a connection: a host that drops packets is a failed try, not a long wait.
CONNECT_TIMEOUT_S = 10.0


def _redactor(key: str | None) -> Callable[[str], str]:
    """A function that blanks the key out of a text (a second guard behind ``reason``)."""
    if not key:
        return lambda text: text
    return lambda text: text.replace(key, "***")


class RemoteRequestError(ModelError):
    """A request the server refused (a 4xx other than 429): retrying would not help."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def root_url(endpoint: str) -> str:
    """The server root of a ``.../v1`` base URL (vLLM serves ``/version`` and ``/tokenize`` there)."""
    parts = urlsplit(endpoint)
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if status is None:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
    return int(status) if isinstance(status, int) else None


def retryable(exc: BaseException) -> bool:
    """429, 5xx, timeouts and broken connections are worth another try."""
    import httpx
    import openai

    if isinstance(exc, (openai.APIConnectionError, httpx.TransportError)):
        return True
    status = _status(exc)
    return status is not None and (status == 429 or status >= 500)


def reason(exc: BaseException) -> str:
    """A short, credential-free reason for a failed request."""
    import httpx
    import openai

    if isinstance(exc, (openai.APITimeoutError, httpx.TimeoutException)):
        return "timed out"
    if isinstance(exc, (openai.APIConnectionError, httpx.TransportError)):
        cause = exc.__cause__ or exc
        text = " ".join(str(cause).split()) or type(cause).__name__
        return f"connection failed ({text[:120]})"
    status = _status(exc)
    message = ""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = str(inner.get("message", "")) if isinstance(inner, dict) else str(inner)
    elif isinstance(exc, httpx.HTTPStatusError):
        message = exc.response.text
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
        timeout: seconds a single request may take.
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
        import openai

        self.endpoints = tuple(endpoints)
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        # a host that never answers is given up on in seconds, a slow answer in minutes
        chat_limits = openai.Timeout(timeout, connect=CONNECT_TIMEOUT_S)
        self._chat = [
            openai.OpenAI(base_url=url, api_key=key or "EMPTY", max_retries=0, timeout=chat_limits)
            for url in self.endpoints
        ]
        limits = httpx.Timeout(timeout, connect=CONNECT_TIMEOUT_S)
        self._http = [
            httpx.Client(base_url=root_url(url), headers=headers, timeout=limits)
            for url in self.endpoints
        ]
        self._secret = _redactor(key)
        self._lock = threading.Lock()
        self._turn = 0
        self._fails = [0] * len(self.endpoints)
        self._rest_until = [0.0] * len(self.endpoints)
        self.stats = RequestStats()

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

    def call(self, fn: Callable[[int], T], *, endpoint: int | None = None, what: str = "") -> T:
        """Run ``fn(endpoint_index)`` with retries, on ``endpoint`` or on each in turn.

        Raises:
            RemoteRequestError: the server refused the request (4xx other than 429).
            ModelError: every try failed; the message names the endpoint(s) and why.
        """
        from tenacity import (
            RetryCallState,
            Retrying,
            retry_if_exception,
            stop_after_attempt,
            wait_exponential,
        )

        tried: dict[int, str] = {}

        def count_retry(state: RetryCallState) -> None:
            with self._lock:
                self.stats.retries += 1

        def attempt() -> T:
            i = self._pick() if endpoint is None else endpoint
            with self._lock:
                self.stats.requests += 1
            try:
                result = fn(i)
            except Exception as exc:
                tried[i] = self._secret(reason(exc))
                if retryable(exc):  # a refused request says nothing about the server's health
                    self._done(i, ok=False)
                log.info("request to %s failed: %s", self.endpoints[i], tried[i])
                raise
            self._done(i, ok=True)
            return result

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff, max=self.max_backoff),
            retry=retry_if_exception(retryable),
            before_sleep=count_retry,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except Exception as exc:
            where = ", ".join(self.endpoints[i] for i in sorted(tried)) or ", ".join(self.endpoints)
            label = f" ({what})" if what else ""
            why = self._secret(reason(exc))
            if not retryable(exc):
                raise RemoteRequestError(f"{where}{label}: {why}", _status(exc)) from None
            raise ModelError(
                f"{where}{label}: no answer after {self.attempts} tries; last: {why}"
            ) from None

    def chat(self, payload: dict[str, Any], *, endpoint: int | None = None) -> dict[str, Any]:
        """One non-streaming chat completion; ``payload`` keys outside OpenAI's go in extra_body."""
        params = dict(payload)
        extra = params.pop("extra_body", None)

        def send(i: int) -> dict[str, Any]:
            response = self._chat[i].chat.completions.create(**params, extra_body=extra)
            return response.model_dump()

        return self.call(send, endpoint=endpoint, what="chat completion")

    def embeddings(self, body: dict[str, Any], *, endpoint: int | None = None) -> dict[str, Any]:
        """One ``POST /v1/embeddings`` (OpenAI's protocol), answered as the server's JSON.

        The raw JSON is returned (not the ``openai`` package's parsed object) so that a
        ``base64`` answer is decoded by the caller exactly as the server sent it.
        """

        def send(i: int) -> dict[str, Any]:
            data = self._chat[i].post("/embeddings", body=body, cast_to=object)
            if not isinstance(data, dict):
                raise ModelError(f"{self.endpoints[i]}: /embeddings answered no JSON object")
            return data

        return self.call(send, endpoint=endpoint, what="POST /v1/embeddings")

    def models(self, endpoint: int) -> list[str]:
        """The model ids one endpoint serves (``GET /v1/models``)."""

        def send(i: int) -> list[str]:
            return [m.id for m in self._chat[i].models.list()]

        return self.call(send, endpoint=endpoint, what="GET /v1/models")

    def root_get(self, path: str, endpoint: int = 0) -> dict[str, Any] | None:
        """``GET`` a root endpoint (``/version``); None when the server has no such route."""
        return self._root("GET", path, None, endpoint)

    def root_post(
        self, path: str, body: dict[str, Any], endpoint: int | None = None
    ) -> dict[str, Any] | None:
        """``POST`` to a root endpoint (``/tokenize``); None when the server has no such route."""
        return self._root("POST", path, body, endpoint)

    def _root(
        self, method: str, path: str, body: dict[str, Any] | None, endpoint: int | None
    ) -> dict[str, Any] | None:
        def send(i: int) -> dict[str, Any] | None:
            response = self._http[i].request(method, path, json=body)
            if response.status_code in (404, 405):
                return None
            response.raise_for_status()
            data = response.json()
            return data if isinstance(data, dict) else None

        return self.call(send, endpoint=endpoint, what=f"{method} {path}")

    def close(self) -> None:
        """Close every connection."""
        for chat in self._chat:
            chat.close()
        for http in self._http:
            http.close()
