"""Reading what a server sent: an answer is checked before it is used, and the key is blanked.

A server that answers HTTP 200 with ``{"error": ...}``, with an HTML page, with a
body that is not JSON or with a log-probability that is not one has not answered:
each is a :class:`ServerAnswerError`, which the pool does not retry and which
reaches the user as one line naming the endpoint. :func:`redact` blanks the API
key out of every message, also when the server echoes it in another case or cut
short.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from cuelab.core.errors import ModelError, one_line

__all__ = [
    "ServerAnswerError",
    "check_chat_answer",
    "error_message",
    "logprob_value",
    "parse_json",
    "redact",
]


class ServerAnswerError(ModelError):
    """The server answered, but not with an answer: an error body, HTML, garbage.

    Raised inside a request (by the pool or by the reader a caller passes), it is
    not retried, and it reaches the user as one line that names the endpoint.
    """


#: A key fragment this long (or the whole key, if shorter) found in a text is blanked.
REDACT_MIN = 6

_KEYISH = re.compile(r"[A-Za-z0-9_\-.~+/=:]+")


def redact(text: str, key: str | None) -> str:
    """``text`` with the key blanked out: whole, in any case, or any fragment of it.

    A server may echo the key it refused ("Incorrect API key provided: SK-ABC..."),
    upper-cased or cut short; any run of key-like characters that shares
    :data:`REDACT_MIN` consecutive characters with the key (ignoring case) becomes
    ``***``.
    """
    if not key:
        return text
    lowered = key.lower()
    size = min(len(lowered), REDACT_MIN)
    pieces = {lowered[i : i + size] for i in range(len(lowered) - size + 1)}

    def blank(match: re.Match[str]) -> str:
        word = match.group(0).lower()
        if any(word[i : i + size] in pieces for i in range(len(word) - size + 1)):
            return "***"
        return match.group(0)

    return _KEYISH.sub(blank, text.replace(key, "***"))


def error_message(body: str) -> str:
    """The server's own message in an error body (OpenAI's, vLLM's or FastAPI's shape)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict):
        inner = data.get("error", data)
        if isinstance(inner, dict):
            return str(inner.get("message") or inner.get("detail") or inner)
        return str(inner)
    return str(data)


def _snippet(data: bytes) -> str:
    text = data[:200].decode("utf-8", errors="replace")
    return one_line(" ".join(text.split()))[:60]


def parse_json(data: bytes, content_type: str) -> Any:
    """The JSON of a 2xx body; :class:`ServerAnswerError` when it is not JSON.

    NaN and infinities are read (Python's ``json`` allows them) and checked by the
    reader of each field; a page (``text/html``) or a truncated body is refused here.
    """
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        kind = content_type.split(";")[0].strip() or "no content type"
        raise ServerAnswerError(
            f"the server answered HTTP 200 with a body that is not JSON ({kind}: {_snippet(data)!r})"
        ) from None


def check_chat_answer(data: Any) -> dict[str, Any]:
    """A chat completion, or :class:`ServerAnswerError` for an error or a shapeless body."""
    if not isinstance(data, dict):
        raise ServerAnswerError(f"the answer is a JSON {type(data).__name__}, not an object")
    if "error" in data and not data.get("choices"):
        said = one_line(" ".join(error_message(json.dumps(data)).split()))[:200]
        raise ServerAnswerError(f"the server answered HTTP 200 with an error: {said}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ServerAnswerError("the answer has no choices")
    message = choices[0].get("message")
    if message is not None and not isinstance(message, dict):
        raise ServerAnswerError("the answer's message is not an object")
    return data


def logprob_value(value: Any, what: str) -> float:
    """A log-probability from an answer: a number, not NaN, at most 0 (-inf is p = 0).

    Raises:
        ServerAnswerError: a string, a bool, a missing value, NaN, +inf or a value
            above 0 (a probability above 1), naming ``what``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        shown = "missing" if value is None else f"{type(value).__name__} {str(value)[:20]!r}"
        raise ServerAnswerError(f"the log-probability of {what} is {shown}, not a number")
    number = float(value)
    if math.isnan(number) or number > 1e-4:
        raise ServerAnswerError(f"the log-probability of {what} is {number!r} (must be <= 0)")
    return min(number, 0.0)
