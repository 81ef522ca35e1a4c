"""A real HTTP server that speaks the part of vLLM's OpenAI protocol CueLab uses.

vLLM cannot run on these machines (no GPU), so the remote family is tested
against this stand-in: a threaded HTTP server on 127.0.0.1 backed by a tiny
random-weight checkpoint run with transformers. It behaves the way vLLM's
OpenAI server does where CueLab depends on it:

* ``GET /v1/models``, ``GET /version``, ``POST /tokenize`` (chat form, with
  ``add_generation_prompt`` / ``continue_final_message``), ``POST /detokenize``;
* ``POST /v1/chat/completions``: the chat template is applied here, from the
  checkpoint's processor, with ``input_audio`` parts (base64 WAV) turned into
  the template's audio parts, as vLLM does; ``logprobs`` / ``top_logprobs``,
  ``logprob_token_ids``, ``return_tokens_as_token_ids``, ``prompt_logprobs``,
  ``continue_final_message``, ``max_tokens``, ``temperature``, ``top_p``,
  ``seed`` and ``stop``; log-probabilities are the raw log-softmax of the
  logits (before temperature), as vLLM returns them;
* unknown request fields are ignored, as vLLM ignores them.

For fault tests it can answer with a status (``fail_next``, ``fail_every``),
drop the connection, add latency, require an API key, and act as an older
server (no ``logprob_token_ids``, tokens named by text only) or a hosted API
(no log-probabilities, no ``/tokenize``). It counts requests and the most that were in flight at once.

Hostile servers (:attr:`AudioChatServer.rewrite`) answer a route with anything
instead of the real answer (an error body with 200, a page, garbage, a
corrupted log-probability, a redirect, a 200 KB generation); ``trickle_s``
sends each answer one byte at a time; ``unauthorised_message`` echoes the key
it refused in a 401, as some hosted APIs do.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class ServerOptions:
    """What the server supports and how it misbehaves (see the module docstring)."""

    model_id: str = "tiny/qwen2-audio"
    api_key: str | None = None
    latency_s: float = 0.0
    logprobs: bool = True
    logprob_token_ids: bool = True
    tokens_as_ids: bool = True
    prompt_logprobs: bool = True
    tokenize: bool = True
    version: str = "0.0.0-cuelab-test"
    max_logprobs: int = 20
    max_logprob_token_ids: int | None = None  # newer vLLM caps the list; None: no cap
    trickle_s: float = 0.0  # > 0: every answer goes out one byte at a time, this far apart
    unauthorised_message: str | None = None  # a 401's message; "{key}" is the key sent


@dataclass
class Reply:
    """A raw answer a hostile server sends instead of the real one."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


#: ``rewrite(path, request body, real answer or None) -> Reply | dict | None``: what to send
#: instead (a dict is sent as JSON with 200; None keeps the real answer). ``real`` is None
#: when the hook is asked before the model runs, which it is first.
Rewrite = Callable[[str, dict[str, Any], "dict[str, Any] | None"], "Reply | dict[str, Any] | None"]


@dataclass
class ServerStats:
    """What the server saw."""

    chat_requests: int = 0
    failed: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    bearer_tokens: set[str] = field(default_factory=set)
    max_tokens: list[int | None] = field(default_factory=list)  # each chat request's


class AudioChatServer:
    """The server; ``start()`` returns its ``/v1`` base URL."""

    def __init__(self, folder: str | Path, options: ServerOptions | None = None) -> None:
        import torch
        from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

        self.options = options or ServerOptions()
        self.processor = AutoProcessor.from_pretrained(str(folder), local_files_only=True)
        self.tokenizer = self.processor.tokenizer
        self.model = Qwen2AudioForConditionalGeneration.from_pretrained(
            str(folder), local_files_only=True, dtype=torch.float32
        ).eval()
        self.end_of_turn = int(self.tokenizer.convert_tokens_to_ids("<|im_end|>"))
        self.stats = ServerStats()
        self._model_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._faults: deque[int | str] = deque()
        self._every: tuple[int, list[int | str], int] | None = None
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.rewrite: Rewrite | None = None
        self.stopping = threading.Event()

    # ----- life cycle ------------------------------------------------------------------

    def start(self) -> str:
        """Serve on a free port of 127.0.0.1; return ``http://127.0.0.1:PORT/v1``."""
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def stop(self) -> None:
        """Stop serving and close the socket (requests held by latency end now)."""
        self.stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def fail_next(self, count: int, status: int | str = 503) -> None:
        """The next ``count`` chat requests fail: an HTTP status, or ``"drop"`` (no answer)."""
        with self._stats_lock:
            self._faults.extend([status] * count)

    def fail_every(self, n: int, statuses: list[int | str]) -> None:
        """From now on every ``n``-th chat request fails, with ``statuses`` in turn."""
        with self._stats_lock:
            self._every = (n, list(statuses), self.stats.chat_requests)

    def _next_fault(self) -> int | str | None:
        """Called with the request already counted."""
        with self._stats_lock:
            if self._faults:
                return self._faults.popleft()
            if self._every is not None:
                n, statuses, since = self._every
                k = self.stats.chat_requests - since
                if k % n == 0:
                    return statuses[(k // n - 1) % len(statuses)]
            return None

    # ----- the protocol ----------------------------------------------------------------

    def render(self, body: dict[str, Any]) -> tuple[str, list[np.ndarray]]:
        """The chat template applied to the request's messages, and the audio it carries."""
        audios: list[np.ndarray] = []
        conversation = []
        for message in body["messages"]:
            content = message.get("content")
            if isinstance(content, list):
                parts = []
                for part in content:
                    if part.get("type") == "input_audio":
                        audios.append(_decode_wav(part["input_audio"]["data"]))
                        parts.append({"type": "audio"})
                    elif part.get("type") == "text":
                        parts.append({"type": "text", "text": part["text"]})
                    else:
                        raise ValueError(f"unsupported content part {part.get('type')!r}")
                content = parts
            conversation.append({"role": message["role"], "content": content})
        add_generation = bool(body.get("add_generation_prompt", True))
        continue_final = bool(body.get("continue_final_message", False))
        if add_generation and continue_final:
            raise ValueError("add_generation_prompt and continue_final_message cannot both be set")
        prompt = self.processor.apply_chat_template(
            conversation,
            tokenize=False,
            add_generation_prompt=add_generation,
            continue_final_message=continue_final,
        )
        return prompt, audios

    def inputs(self, prompt: str, audios: list[np.ndarray]) -> dict[str, Any]:
        if audios:
            inputs = self.processor(
                text=[prompt], audio=audios, sampling_rate=16000, return_tensors="pt"
            )
        else:
            inputs = self.processor(text=[prompt], return_tensors="pt")
        return {k: v for k, v in inputs.items() if k != "num_audio_tokens"}

    def tokenize(self, body: dict[str, Any]) -> dict[str, Any]:
        if "messages" in body:
            prompt, _ = self.render(body)
        else:
            prompt = str(body["prompt"])
        ids = self.tokenizer(prompt, add_special_tokens=bool(body.get("add_special_tokens")))
        tokens = list(ids["input_ids"])
        return {"count": len(tokens), "max_model_len": 32768, "tokens": tokens}

    def detokenize(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"prompt": self.tokenizer.decode(list(body["tokens"]))}

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        import torch

        opts = self.options
        prompt, audios = self.render(body)
        inputs = self.inputs(prompt, audios)
        ids = inputs["input_ids"][0]
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
        temperature = float(body.get("temperature", 1.0) if body.get("temperature") is not None
                            else 1.0)  # fmt: skip
        want_logprobs = bool(body.get("logprobs")) and opts.logprobs
        named = body.get("logprob_token_ids") if opts.logprob_token_ids else None
        cap = opts.max_logprob_token_ids
        if named is not None and cap is not None and len(named) > cap:
            raise ValueError(f"logprob_token_ids has {len(named)} ids; at most {cap} allowed")
        top_k = int(body.get("top_logprobs") or 0)
        if want_logprobs and top_k > opts.max_logprobs:
            raise ValueError(f"top_logprobs {top_k} exceeds --max-logprobs {opts.max_logprobs}")
        as_ids = bool(body.get("return_tokens_as_token_ids")) and opts.tokens_as_ids
        with self._model_lock, torch.inference_mode():
            out = self.model(**inputs)
            logp = torch.log_softmax(out.logits[0].float(), dim=-1)
            if max_tokens == 1 and temperature == 0.0:
                generated = [int(torch.argmax(logp[-1]))]
                steps = [logp[-1]]
            else:
                generated, steps = self._generate(inputs, body, max_tokens, temperature)
        finish = "stop" if generated and generated[-1] == self.end_of_turn else "length"
        # like vLLM: the end of turn is not in the text, but it has its log-probability entry
        text = self.tokenizer.decode(
            generated[:-1] if finish == "stop" else generated, skip_special_tokens=True
        )
        for stop in body.get("stop") or []:
            at = text.find(stop)
            if at >= 0:
                text, finish = text[:at], "stop"
        logprobs = None
        if want_logprobs:
            content = []
            for token, step in zip(generated, steps):
                entry = self._entry(token, float(step[token]), as_ids)
                if named:
                    entry["top_logprobs"] = [self._entry(int(t), float(step[int(t)]), as_ids)
                                             for t in named]  # fmt: skip
                elif top_k:
                    values, order = torch.topk(step, top_k)
                    entry["top_logprobs"] = [self._entry(int(t), float(v), as_ids)
                                             for v, t in zip(values, order)]  # fmt: skip
                else:
                    entry["top_logprobs"] = []
                content.append(entry)
            logprobs = {"content": content}
        prompt_logprobs = None
        k = body.get("prompt_logprobs")
        if k is not None and opts.prompt_logprobs:
            prompt_logprobs = [None]
            for t in range(1, len(ids)):
                actual = int(ids[t])
                row = logp[t - 1]
                rank = int((row > row[actual]).sum()) + 1
                cell = {str(actual): {"logprob": float(row[actual]), "rank": rank,
                                      "decoded_token": self.tokenizer.decode([actual])}}  # fmt: skip
                if int(k) > 0:
                    values, order = torch.topk(row, int(k))
                    for r, (v, tok) in enumerate(zip(values, order), start=1):
                        cell.setdefault(str(int(tok)), {"logprob": float(v), "rank": r,
                                        "decoded_token": self.tokenizer.decode([int(tok)])})  # fmt: skip
                prompt_logprobs.append(cell)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": opts.model_id,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": logprobs,
                "finish_reason": finish,
                "stop_reason": None,
            }],
            "usage": {"prompt_tokens": len(ids), "completion_tokens": len(generated),
                      "total_tokens": len(ids) + len(generated)},  # the end of turn counts
            "prompt_logprobs": prompt_logprobs,
        }  # fmt: skip

    def _generate(
        self, inputs: dict[str, Any], body: dict[str, Any], max_tokens: int, temperature: float
    ) -> tuple[list[int], list[Any]]:
        import torch

        sample = temperature > 0.0
        kwargs: dict[str, Any] = {
            **inputs,
            "max_new_tokens": max_tokens,
            "do_sample": sample,
            "eos_token_id": [self.end_of_turn],
            "pad_token_id": self.tokenizer.pad_token_id,
            "output_logits": True,
            "return_dict_in_generate": True,
        }
        if sample:
            kwargs.update(temperature=temperature, top_p=float(body.get("top_p") or 1.0), top_k=0)
        with torch.random.fork_rng(devices=[]):
            if body.get("seed") is not None:
                torch.manual_seed(int(body["seed"]))
            out = self.model.generate(**kwargs)
        new = [int(t) for t in out.sequences[0, inputs["input_ids"].shape[1] :]]
        steps = [torch.log_softmax(logits[0].float(), dim=-1) for logits in out.logits]
        return new, steps[: len(new)]

    def _entry(self, token: int, logprob: float, as_ids: bool) -> dict[str, Any]:
        text = f"token_id:{token}" if as_ids else self.tokenizer.decode([token])
        return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}


class _Handler(BaseHTTPRequestHandler):
    owner: AudioChatServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read the server's counters, not its log."""

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        self._reply(Reply(status, json.dumps(payload).encode("utf-8")))

    def _reply(self, reply: Reply) -> None:
        head = [f"HTTP/1.1 {reply.status} {self.responses.get(reply.status, ('',))[0]}",
                f"Content-Type: {reply.content_type}", f"Content-Length: {len(reply.body)}",
                *(f"{k}: {v}" for k, v in reply.headers.items())]  # fmt: skip
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + reply.body
        pause = self.owner.options.trickle_s
        if not pause:
            self.wfile.write(data)
            return
        for i in range(len(data)):  # a slow-loris answer: one byte at a time
            if self.owner.stopping.wait(pause):
                return
            self.wfile.write(data[i : i + 1])
            self.wfile.flush()

    def _rewritten(self, body: dict[str, Any], real: dict[str, Any] | None) -> bool:
        """Send the hostile answer for this route, if the hook gives one."""
        hook = self.owner.rewrite
        reply = hook(self.path.rstrip("/"), body, real) if hook is not None else None
        if reply is None:
            return False
        self._reply(reply if isinstance(reply, Reply) else Reply(200, json.dumps(reply).encode()))
        return True

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"object": "error", "message": message, "type": "BadRequestError",
                            "param": None, "code": status})  # fmt: skip

    def _authorised(self) -> bool:
        server = self.owner
        token = self.headers.get("Authorization", "")
        if token.startswith("Bearer "):
            with server._stats_lock:
                server.stats.bearer_tokens.add(token[len("Bearer ") :])
        if server.options.api_key and token != f"Bearer {server.options.api_key}":
            message = server.options.unauthorised_message or "Unauthorized"
            self._error(401, message.replace("{key}", token[len("Bearer ") :]))
            return False
        return True

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_GET(self) -> None:
        if not self._authorised() or self._rewritten({}, None):
            return
        opts = self.owner.options
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [{
                "id": opts.model_id, "object": "model", "created": 0, "owned_by": "cuelab-tests",
                "root": opts.model_id, "max_model_len": 32768}]})  # fmt: skip
        elif self.path.rstrip("/") == "/version":
            self._send(200, {"version": opts.version})
        else:
            self._error(404, f"no route {self.path}")

    def do_POST(self) -> None:
        server = self.owner
        body = self._body()
        if not self._authorised() or self._rewritten(body, None):
            return
        path = self.path.rstrip("/")
        try:
            if path == "/tokenize" and server.options.tokenize:
                self._answer(body, server.tokenize(body))
            elif path == "/detokenize" and server.options.tokenize:
                self._answer(body, server.detokenize(body))
            elif path == "/v1/chat/completions":
                self._chat(body)
            else:
                self._error(404, f"no route {self.path}")
        except (KeyError, ValueError, TypeError) as exc:
            self._error(400, str(exc))
        except Exception as exc:
            self._error(500, f"{type(exc).__name__}: {exc}")

    def _answer(self, body: dict[str, Any], real: dict[str, Any]) -> None:
        if not self._rewritten(body, real):
            self._send(200, real)

    def _chat(self, body: dict[str, Any]) -> None:
        server = self.owner
        if body.get("model") != server.options.model_id:
            self._error(404, f"The model `{body.get('model')}` does not exist.")
            return
        with server._stats_lock:
            server.stats.chat_requests += 1
            server.stats.in_flight += 1
            server.stats.max_in_flight = max(server.stats.max_in_flight, server.stats.in_flight)
            server.stats.max_tokens.append(body.get("max_tokens"))
        try:
            fault = server._next_fault()
            if server.options.latency_s and server.stopping.wait(server.options.latency_s):
                return
            if fault == "drop":
                with server._stats_lock:
                    server.stats.failed += 1
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if fault is not None:
                with server._stats_lock:
                    server.stats.failed += 1
                self._error(int(fault), "injected failure")
                return
            self._answer(body, server.chat(body))
        finally:
            with server._stats_lock:
                server.stats.in_flight -= 1


def _decode_wav(data: str) -> np.ndarray:
    import soundfile as sf

    audio, sr = sf.read(io.BytesIO(base64.b64decode(data)), dtype="float32", always_2d=False)
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if sr != 16000:
        import soxr

        audio = soxr.resample(audio, sr, 16000, quality="HQ").astype(np.float32)
    return np.asarray(audio, dtype=np.float32)
