"""Models behind OpenAI-compatible audio servers (vLLM, SGLang, hosted APIs).

``spec`` (the ``openai:URL[,URL...][#MODEL]`` location, the API key, the
prompt families), ``client`` (one client per endpoint, requests spread over
them, bounded retries with backoff), ``protocol`` (the chat requests, label
token ids from the server's tokenizer, the three ways of scoring a closed
label set) and ``adapter`` (the model family ``openai``). The server does the
batching and the prefix caching; several servers give data parallelism.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cuelab.core._faces import lazy_face

if TYPE_CHECKING:
    from cuelab.core.models.remote.adapter import OpenAIAdapter
    from cuelab.core.models.remote.client import EndpointPool, RemoteRequestError
    from cuelab.core.models.remote.spec import (
        PROMPT_FAMILIES,
        SCORING_CHOICES,
        SERVER_FAMILY,
        RemoteSpec,
        parse_remote_location,
        shown_url,
    )

# The public face: each name's module is imported on first use.
_LAZY = {
    "EndpointPool": "cuelab.core.models.remote.client",
    "OpenAIAdapter": "cuelab.core.models.remote.adapter",
    "PROMPT_FAMILIES": "cuelab.core.models.remote.spec",
    "RemoteRequestError": "cuelab.core.models.remote.client",
    "RemoteSpec": "cuelab.core.models.remote.spec",
    "SCORING_CHOICES": "cuelab.core.models.remote.spec",
    "SERVER_FAMILY": "cuelab.core.models.remote.spec",
    "parse_remote_location": "cuelab.core.models.remote.spec",
    "shown_url": "cuelab.core.models.remote.spec",
}
__getattr__, __dir__ = lazy_face(__name__, _LAZY)

__all__ = [
    "PROMPT_FAMILIES",
    "SCORING_CHOICES",
    "SERVER_FAMILY",
    "EndpointPool",
    "OpenAIAdapter",
    "RemoteRequestError",
    "RemoteSpec",
    "parse_remote_location",
    "shown_url",
]
