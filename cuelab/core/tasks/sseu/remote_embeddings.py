"""The SSEU paper's matcher on any OpenAI-compatible embeddings server.

Matcher spec: ``openai-embeddings:URL[,URL...][#MODEL]``. SSEU-Bench maps
free answers with OpenAI's ``text-embedding-3-large``; the same
``POST /v1/embeddings`` route is served by OpenAI, by vLLM and Text
Embeddings Inference serving an embedding model, and by other compatible
servers. Requests go through the same client stack as ``openai:`` models
(:class:`~cuelab.core.models.remote.client.EndpointPool`): the key from
``CUELAB_API_KEY`` / ``OPENAI_API_KEY``, given to the clients only; retries
with backoff over the endpoints; one-line errors that never hold the key.

The scores are :class:`~cuelab.core.tasks.sseu.matching.EmbeddingMatcher`'s,
which are the paper's equations 1–3: a scene answer's class probabilities
are the softmax of its cosine similarities with the class names; an event
class's confidence is the maximum, over the predicted events, of the sigmoid
of their cosine similarity with it.

Every embedding is cached per (model, text) in the run folder
(``embeddings.jsonl``: one JSON object per line with the model id, the text
and the vector as base64 little-endian float32, appended and fsynced). The
matcher reads vectors *from the cache form*, so the scores written to
predictions.csv can be recomputed exactly from the file, and ``--resume``
never asks the server for a text twice.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cuelab.core.errors import ModelError

log = logging.getLogger(__name__)

PREFIX = "openai-embeddings:"
CACHE_FILE = "embeddings.jsonl"
#: Texts per request (OpenAI takes up to 2048; smaller batches retry cheaply).
BATCH = 64


def is_remote_matcher(spec: str) -> bool:
    """True for an ``openai-embeddings:`` matcher spec."""
    return spec.startswith(PREFIX)


def _pack(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def _unpack(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)


def decode_embedding(value: Any) -> np.ndarray:
    """An ``embedding`` field as float32: a list of floats, or base64 float32 (OpenAI's form).

    Raises:
        ModelError: neither form, a NaN or infinite number in it, or all zeros.
    """
    if isinstance(value, str):
        try:
            vector = _unpack(value)
        except (ValueError, TypeError) as exc:
            raise ModelError(f"embedding is not base64 float32 ({exc})") from None
    elif isinstance(value, list) and value and all(isinstance(x, (int, float)) for x in value):
        vector = np.asarray(value, dtype=np.float32)
    else:
        raise ModelError("embedding is neither a list of numbers nor base64")
    if not np.isfinite(vector).all():  # NaN scores would be written and averaged silently
        raise ModelError("embedding holds a number that is not finite")
    if not vector.any():  # no direction: every cosine would be 0 and every score uniform
        raise ModelError("embedding is all zeros")
    return vector


class EmbeddingCache:
    """Vectors per (model, text), kept in a JSON-lines file; safe across threads.

    A torn last line (a killed run) is skipped on load; the text is asked again.
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._vectors: dict[tuple[str, str], np.ndarray] = {}
        if self.path is not None and self.path.is_file():
            with self.path.open("r", encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    try:
                        item = json.loads(line)
                        key = (str(item["model"]), str(item["text"]))
                        self._vectors.setdefault(key, _unpack(item["b64"]))
                    except (ValueError, KeyError, TypeError):
                        log.warning("%s line %d: unreadable cache entry skipped", self.path, n)

    def __len__(self) -> int:
        return len(self._vectors)

    def get(self, model: str, text: str) -> np.ndarray | None:
        """The cached vector, or None."""
        with self._lock:
            return self._vectors.get((model, text))

    def dimension(self, model: str) -> int | None:
        """The size of a vector cached for ``model`` (None when it has none)."""
        with self._lock:
            return next((v.size for (m, _), v in self._vectors.items() if m == model), None)

    def attach(self, path: str | Path) -> None:
        """Keep the vectors held so far (and all later ones) in ``path`` from now on.

        A fresh run meets its matcher before its folder exists; the class names
        embedded then are written once the run holds its folder.
        """
        with self._lock:
            self.path = Path(path)
            held = [(m, t, _pack(v)) for (m, t), v in self._vectors.items()]
            self._append([json.dumps({"model": m, "text": t, "b64": b}) + "\n" for m, t, b in held])

    def _append(self, lines: list[str]) -> None:
        if lines and self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.writelines(lines)
                f.flush()
                os.fsync(f.fileno())

    def put(self, model: str, items: Sequence[tuple[str, np.ndarray]]) -> None:
        """Store vectors (first one kept for a text) and append them to the file, fsynced."""
        lines = []
        with self._lock:
            for text, vector in items:
                key = (model, text)
                if key in self._vectors:
                    continue
                packed = _pack(vector)
                self._vectors[key] = _unpack(packed)  # the cache form is what is scored
                lines.append(json.dumps({"model": model, "text": text, "b64": packed}) + "\n")
            self._append(lines)


class OpenAIEmbeddings:
    """An encoder (``texts -> array``) backed by ``/v1/embeddings`` and a cache.

    Args:
        location: the part of the spec after ``openai-embeddings:``.
        cache: where vectors are kept (a run folder's ``embeddings.jsonl``).
        encoding_format: what to ask the server for: ``float`` (every server) or ``base64``.

    Raises:
        ModelError: a bad spec, no model id and not exactly one served, or a server
            that cannot be reached (one line naming the endpoint).
    """

    def __init__(
        self, location: str, cache: EmbeddingCache, encoding_format: str = "float"
    ) -> None:
        from cuelab.core.models.remote.client import EndpointPool
        from cuelab.core.models.remote.spec import api_key, parse_remote_location

        if not location.split("#", 1)[0].strip():
            raise ModelError(
                "openai-embeddings: spec has no endpoint; write "
                "openai-embeddings:http://HOST:8000/v1[#MODEL]"
            )
        if encoding_format not in ("float", "base64"):
            raise ModelError(f"encoding_format {encoding_format!r} is not float or base64")
        spec = parse_remote_location(location)
        self.endpoints = spec.endpoints
        self.encoding_format = encoding_format
        self.cache = cache
        self._pool = EndpointPool(spec.endpoints, api_key())
        self.model = spec.model or self._only_model()
        self.dimension: int | None = None
        self._dimension_from = "earlier answers"

    def _only_model(self) -> str:
        try:
            ids = self._pool.models(0)
        except ModelError as exc:  # a server without GET /v1/models
            raise ModelError(f"{exc}; name the model with openai-embeddings:URL#MODEL") from None
        if len(ids) != 1:
            listed = ", ".join(ids) or "none"
            raise ModelError(
                f"{self.endpoints[0]} serves {len(ids)} models ({listed}); name one with "
                "openai-embeddings:URL#MODEL"
            )
        return ids[0]

    def provenance(self) -> dict[str, Any]:
        """What run.json records: the model id, the embedding size, the endpoints."""
        return {
            "matcher_model": self.model,
            "embedding_dim": self.dimension,
            "endpoints": list(self.endpoints),
            "encoding_format": self.encoding_format,
            "cache": CACHE_FILE,
            "scores": "scene: softmax of cosines (eq. 1-2); event: max over answers of "
            "sigmoid(cosine) (eq. 3)",
        }

    def _fetch(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The server's vectors for ``texts``; a bad answer is a one-line error naming the
        endpoints (which of them answered is the pool's choice)."""
        where = f"{', '.join(self.endpoints)}: /v1/embeddings answered"
        body = {"input": list(texts), "model": self.model, "encoding_format": self.encoding_format}
        data = self._pool.embeddings(body)
        items = data.get("data")
        if not isinstance(items, list) or len(items) != len(texts):
            raise ModelError(
                f"{where} {len(items) if isinstance(items, list) else 'no'} embeddings "
                f"for {len(texts)} texts"
            )
        out: list[np.ndarray | None] = [None] * len(texts)
        for pos, item in enumerate(items):
            index = item.get("index", pos) if isinstance(item, dict) else None
            if not isinstance(index, int) or not 0 <= index < len(texts) or out[index] is not None:
                raise ModelError(f"{where} a bad or repeated index")
            try:
                out[index] = decode_embedding(item.get("embedding"))
            except ModelError as exc:
                raise ModelError(f"{where} an unusable embedding ({exc})") from None
        sizes = {v.size for v in out if v is not None}
        if len(sizes) != 1:
            raise ModelError(f"{where} vectors of sizes {sorted(sizes)} in one answer")
        size = sizes.pop()
        if self.dimension is not None and size != self.dimension:
            raise ModelError(
                f"{where} vectors of size {size}, but {self._dimension_from} hold vectors of "
                f"size {self.dimension} for {self.model}"
            )
        self.dimension = size
        return [v for v in out if v is not None]

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts`` (rows), from the cache or the server."""
        if self.dimension is None:  # a resumed run: the server must answer the cached size
            self.dimension = self.cache.dimension(self.model)
            self._dimension_from = str(self.cache.path or "the cache")
        missing = list(dict.fromkeys(t for t in texts if self.cache.get(self.model, t) is None))
        for start in range(0, len(missing), BATCH):
            chunk = missing[start : start + BATCH]
            self.cache.put(self.model, list(zip(chunk, self._fetch(chunk))))
        vectors = [self.cache.get(self.model, t) for t in texts]
        assert all(v is not None for v in vectors)
        if len({v.size for v in vectors if v is not None}) > 1:
            raise ModelError(
                f"{self.cache.path or 'the cache'} holds vectors of different sizes for "
                f"{self.model}; move it aside and run again"
            )
        if self.dimension is None and vectors:
            self.dimension = int(vectors[0].size)  # type: ignore[union-attr]
        return np.stack(vectors)  # type: ignore[arg-type]

    def close(self) -> None:
        """Close the connections."""
        self._pool.close()
