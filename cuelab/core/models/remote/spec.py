"""The remote model spec ``openai:URL[,URL...][#MODEL]``, its API key and prompt families.

``URL`` is an OpenAI-compatible base URL ending in ``/v1`` (vLLM's
``vllm serve`` gives ``http://HOST:8000/v1``); several, comma-separated, are
used together. ``MODEL`` is the served model id; without it the one id that
``GET /v1/models`` lists is used. The API key comes from the environment
(``CUELAB_API_KEY``, then ``OPENAI_API_KEY``) and is never part of a spec, a
record, a log line or an error.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from cuelab.core.errors import ModelError

#: Environment variables read for the API key, in order.
API_KEY_VARIABLES = ("CUELAB_API_KEY", "OPENAI_API_KEY")

#: Scoring policies a user can ask for (``--scoring``); see :mod:`.protocol`.
SCORING_CHOICES = ("auto", "first-token", "continuation", "generate")

#: The default prompt family: no system turn is sent, the server's chat template decides.
SERVER_FAMILY = "server"

#: Known families and the system prompt CueLab sends for them (None: no system turn).
#: Qwen2-Audio's and AF3's templates add "You are a helpful assistant." themselves when
#: no system turn is given, which is also what their in-process adapters send.
PROMPT_FAMILIES: dict[str, str | None] = {
    SERVER_FAMILY: None,
    "qwen2-audio": "You are a helpful assistant.",
    "audio-flamingo-3": "You are a helpful assistant.",
    "qwen2.5-omni": (
        "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of "
        "perceiving auditory and visual inputs, as well as generating text and speech."
    ),
    "midashenglm": None,
    "kimi-audio": None,
    "step-audio-2-mini": None,
}


@dataclass(frozen=True)
class RemoteSpec:
    """Where a remote model is served.

    Attributes:
        endpoints: base URLs (``http://gpu1:8000/v1``), without a trailing slash.
        model: the served model id, or None to take the only one listed.
    """

    endpoints: tuple[str, ...]
    model: str | None


#: Everything up to the last ``@`` of a URL (after its scheme): where credentials sit.
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*:/*)?.*@", re.DOTALL)


def shown_url(url: str) -> str:
    """``url`` as it may be shown or logged: anything before an ``@`` is blanked.

    A URL that carries ``user:password@`` (or is so malformed that its parts cannot
    be told apart) must not reach a message, a log line or a record.
    """
    return _USERINFO.sub(lambda m: (m.group(1) or "") + "***@", url)


def parse_remote_location(location: str) -> RemoteSpec:
    """Parse ``URL[,URL...][#MODEL]`` (the part of a spec after ``openai:``).

    Raises:
        ModelError: no URL, or a URL that is not ``http(s)://host[:port]/...``.
    """
    urls_text, _, model = location.partition("#")
    endpoints: list[str] = []
    for raw in urls_text.split(","):
        url = raw.strip().rstrip("/")
        if not url:
            continue
        if "@" in url:  # user:password@host, whatever the scheme: refused before it is shown
            raise ModelError(
                f"endpoint {shown_url(url)!r}: URLs must not carry credentials (user:password@); "
                "set CUELAB_API_KEY instead"
            )
        try:
            parts = urlsplit(url)
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            parts, port_ok = urlsplit(""), False
        if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
            raise ModelError(
                f"endpoint {shown_url(url)!r} is not an http(s) URL; write e.g. http://gpu1:8000/v1"
            )
        if url not in endpoints:
            endpoints.append(url)
    if not endpoints:
        raise ModelError("openai: spec has no endpoint; write openai:http://HOST:8000/v1[#MODEL]")
    return RemoteSpec(tuple(endpoints), model.strip() or None)


def api_key() -> str | None:
    """The API key from the environment (``CUELAB_API_KEY``, then ``OPENAI_API_KEY``).

    Raises:
        ModelError: the key holds a character an HTTP header cannot carry (the message
            names the variable, never the key).
    """
    for name in API_KEY_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            if not all(33 <= ord(ch) < 127 for ch in value):
                raise ModelError(
                    f"${name} holds a space, a control or a non-ASCII character; "
                    "an API key must be printable ASCII"
                )
            return value
    return None


def system_prompt(family: str | None) -> str | None:
    """The system prompt sent for ``family`` (None: no system turn).

    Raises:
        ModelError: an unknown family (the message lists the known ones).
    """
    name = (family or SERVER_FAMILY).strip().lower()
    if name not in PROMPT_FAMILIES:
        known = ", ".join(sorted(PROMPT_FAMILIES))
        raise ModelError(f"unknown prompt family {family!r} (known: {known})")
    return PROMPT_FAMILIES[name]
