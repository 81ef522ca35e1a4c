"""Models behind OpenAI-compatible audio servers (vLLM, SGLang, hosted APIs).

``spec`` (the ``openai:URL[,URL...][#MODEL]`` location, the API key, the
prompt families), ``client`` (one client per endpoint, requests spread over
them, bounded retries with backoff), ``protocol`` (the chat requests, label
token ids from the server's tokenizer, the three ways of scoring a closed
label set) and ``adapter`` (the model family ``openai``). The server does the
batching and the prefix caching; several servers give data parallelism.
"""

from __future__ import annotations
