"""The ``openai`` model family: an audio model behind OpenAI-compatible servers.

``openai:http://gpu1:8000/v1,http://gpu2:8000/v1#Qwen/Qwen2-Audio-7B-Instruct``
loads nothing locally: it checks every endpoint, picks the served model, asks
the server what it can do (``/tokenize``, log-probabilities,
``logprob_token_ids``, ``prompt_logprobs``) and then scores and generates
through chat completions (see :mod:`.protocol`). Requests run on a pool of
``concurrency`` threads: a clip's variants go out together, so the server's
prefix cache reuses the audio prefix, and the batch engines keep several
clips in flight (:func:`cuelab.core.runs.ordering.in_order`).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from cuelab.core.errors import ModelError
from cuelab.core.models.base import (
    Generation,
    LoadOptions,
    ModelAdapter,
    Prediction,
    Sampling,
    check_label_score,
)
from cuelab.core.models.capabilities import (
    Capability,
    GenerateRequest,
    PromptTemplate,
    ScoreRequest,
)
from cuelab.core.models.remote import protocol as proto
from cuelab.core.models.remote.client import EndpointPool, RemoteRequestError
from cuelab.core.models.remote.spec import (
    SCORING_CHOICES,
    SERVER_FAMILY,
    api_key,
    parse_remote_location,
    system_prompt,
)
from cuelab.core.models.scoring import parse_answer

log = logging.getLogger(__name__)

#: Generated answers mapped to a label (``generate`` scoring) are at most this long.
GENERATE_SCORING_TOKENS = 32
#: Seconds one try of a request may take in all, when set (else ``request_timeout``).
TIMEOUT_VARIABLE = "CUELAB_REQUEST_TIMEOUT"


def _timeout(default: float) -> float:
    """The per-try deadline: ``$CUELAB_REQUEST_TIMEOUT`` or ``default`` (seconds, above 0)."""
    text = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    value = default
    if text:
        try:
            value = float(text)
        except ValueError:
            raise ModelError(
                f"${TIMEOUT_VARIABLE} must be a number of seconds, got {text!r}"
            ) from None
    if not (value > 0 and math.isfinite(value)):
        raise ModelError(f"the request timeout must be a number of seconds above 0, got {value!r}")
    return value


class OpenAIAdapter(ModelAdapter):
    """A model served behind one or more OpenAI-compatible endpoints."""

    family: ClassVar[str] = "openai"
    provides: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.SCORE, Capability.GENERATE, Capability.SERVED}
    )
    recorded_only: ClassVar[tuple[str, ...]] = ("endpoints", "concurrency")

    def __init__(
        self,
        pool: EndpointPool,
        model: str,
        *,
        server_version: str | None,
        capabilities: dict[str, bool],
        scoring: str,
        prompt_family: str,
        concurrency: int,
        audio_rate: int = 16000,
        label_score: str = "sum",
    ) -> None:
        self.pool = pool
        self.model = model
        self.server_version = server_version
        self.capabilities = capabilities
        self.scoring = scoring
        self.prompt_family = prompt_family
        self.system = system_prompt(prompt_family)
        self.concurrency = concurrency
        self.audio_rate = audio_rate
        self.label_score = check_label_score(label_score)
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="openai")
        self._tokens: dict[tuple[str, ...], proto.LabelTokens | None] = {}
        self._tokens_lock = threading.Lock()
        self.use_named_tokens = bool(capabilities.get("logprob_token_ids"))

    # ----- loading -------------------------------------------------------------------

    @classmethod
    def load(cls, location: str, options: LoadOptions) -> OpenAIAdapter:
        """Check every endpoint, pick the served model and probe what the server can do.

        Raises:
            ModelError: an endpoint does not answer (named), the model is not served
                (the ids that are), or the options are invalid.
        """
        spec = parse_remote_location(location)
        scoring = (options.scoring or "auto").strip().lower()
        if scoring not in SCORING_CHOICES:
            raise ModelError(f"scoring {scoring!r} is not one of {', '.join(SCORING_CHOICES)}")
        family = (options.prompt_family or SERVER_FAMILY).strip().lower()
        system_prompt(family)  # an unknown family fails before any request
        if options.concurrency < 1:
            raise ModelError(f"concurrency must be at least 1, got {options.concurrency}")
        timeout = _timeout(options.request_timeout)
        pool = EndpointPool(spec.endpoints, api_key(), timeout=timeout)
        try:
            model = _served_model(pool, spec.model, options)
            version, caps = _same_server(pool, model, system_prompt(family), options)
        except BaseException:
            pool.close()
            raise
        return cls(
            pool,
            model,
            server_version=_version(version),
            capabilities=caps,
            scoring=scoring,
            prompt_family=family,
            concurrency=options.concurrency,
            label_score=options.label_score,
        )

    def describe(self) -> dict[str, object]:
        """Provenance: endpoints (no credentials), served model, server version, scoring."""
        return {
            "family": self.family,
            "endpoints": list(self.pool.endpoints),
            "model": self.model,
            "server_version": self.server_version,
            "scoring": self.scoring,
            "capabilities": dict(self.capabilities),
            "prompt_family": self.prompt_family,
            "label_score": self.label_score,
            "system_prompt": self.system,
            "request": {
                "audio": f"wav float32 {self.audio_rate} Hz, base64 input_audio",
                "temperature": 0.0,
                "top_logprobs": proto.TOP_LOGPROBS,
                "generate_scoring_max_tokens": GENERATE_SCORING_TOKENS,
            },
            "concurrency": self.concurrency,
        }

    def progress_note(self) -> str:
        """Request rate, retries and failures so far, for progress lines."""
        return self.pool.stats.note()

    def unload(self) -> None:
        """Cut the requests in flight, stop the request threads and close the connections.

        Called when a run ends, and when Ctrl-C or SIGTERM stops it: aborting the pool
        wakes every thread blocked on the server at once, so the run is marked and the
        process exits within seconds, not after the requests' deadlines.
        """
        self.pool.abort()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.pool.close()

    # ----- scoring ---------------------------------------------------------------------

    def label_tokens(self, labels: Sequence[str]) -> proto.LabelTokens | None:
        """The labels' token ids on the server (cached per label set)."""
        key = tuple(labels)
        with self._tokens_lock:
            if key not in self._tokens:
                if not self.capabilities.get("tokenize"):
                    self._tokens[key] = None
                else:
                    self._tokens[key] = proto.label_tokens(self.pool, self.model, self.system, key)
            return self._tokens[key]

    def method(self, labels: Sequence[str]) -> str:
        """The scoring method used for ``labels``: first-token, continuation or generate.

        Raises:
            ModelError: the requested method needs something the server lacks.
        """
        tokens = self.label_tokens(labels)
        caps = self.capabilities
        can_first = bool(tokens and tokens.first_tokens_distinct() and caps.get("logprobs"))
        can_first = can_first and bool(caps.get("token_ids") or caps.get("detokenize"))
        can_cont = bool(tokens and caps.get("prompt_logprobs"))
        if self.scoring == "auto":  # the in-process default first, so both agree
            return "continuation" if can_cont else "first-token" if can_first else "generate"
        if self.scoring == "first-token" and not can_first:
            why = (
                "labels share a first token"
                if tokens and not tokens.first_tokens_distinct()
                else "the server lacks /tokenize or log-probabilities"
            )
            raise ModelError(f"{self.model}: first-token scoring is not possible ({why})")
        if self.scoring == "continuation" and not can_cont:
            raise ModelError(
                f"{self.model}: continuation scoring needs /tokenize and prompt_logprobs"
            )
        return self.scoring

    def score(self, request: ScoreRequest) -> list[Prediction]:
        """One prediction per variant; every request of the clip is sent at once."""
        clip, labels = request.clip, request.labels
        if not labels or not request.instructions:
            raise ModelError("scoring needs at least one label and one token variant")
        method = self.method(labels)
        audio = proto.wav_base64(clip.audio, clip.sr, self.audio_rate)
        conversations = [
            proto.audio_messages(self.system, audio, text) for text in request.instructions
        ]
        if method == "first-token":
            jobs = [self._executor.submit(self._first_token, m, labels) for m in conversations]
            return [job.result() for job in jobs]
        if method == "continuation":
            grid = [
                [self._executor.submit(self._continuation, m, label, labels) for label in labels]
                for m in conversations
            ]
            return [self._from_sums(labels, [job.result() for job in row]) for row in grid]
        jobs = [self._executor.submit(self._generated_label, m, labels) for m in conversations]
        return [job.result() for job in jobs]

    def _first_token(self, messages: list[dict[str, Any]], labels: Sequence[str]) -> Prediction:
        tokens = self.label_tokens(labels)
        assert tokens is not None  # method() checked it
        extra: dict[str, Any] = {}
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": True,
        }
        if self.capabilities.get("token_ids"):
            extra["return_tokens_as_token_ids"] = True
        if self.use_named_tokens:
            extra["logprob_token_ids"] = sorted({tokens.ids[lab][0] for lab in labels})
            tag = "first-token"
        else:
            payload["top_logprobs"] = proto.TOP_LOGPROBS
            tag = f"first-token-top{proto.TOP_LOGPROBS}"
        if extra:
            payload["extra_body"] = extra
        try:
            logprobs, bounded = self.pool.chat(
                payload, read=lambda answer: proto.first_token_logprobs(answer, labels, tokens)
            )
        except RemoteRequestError as exc:
            if "logprob_token_ids" not in extra or exc.status != 400:
                raise
            # e.g. more label tokens than the server's limit: read the top 20 instead
            log.warning("%s: logprob_token_ids refused (%s); using top_logprobs", self.model, exc)
            self.use_named_tokens = False  # the probe's finding stays as recorded
            return self._first_token(messages, labels)
        if bounded:
            tag = "first-token-bounded"
            if len(bounded) == len(labels):
                # no label among the shown tokens: nothing can be said, never guessed
                return Prediction(None, {}, unparsed=True, scoring=tag)
        if proto.impossible(logprobs):
            return Prediction(None, {}, unparsed=True, scoring=tag)
        probs = proto.softmax(logprobs)
        return Prediction(proto.best_label(labels, logprobs, bounded), probs, scoring=tag)

    def _continuation(
        self, messages: list[dict[str, Any]], label: str, labels: Sequence[str]
    ) -> float:
        tokens = self.label_tokens(labels)
        assert tokens is not None
        expected = list(tokens.ids[label])
        answer = label
        if tokens.end_of_turn is not None:
            expected.append(tokens.end_of_turn[0])
            answer += tokens.end_of_turn[1]
        payload = {
            "model": self.model,
            "messages": [*messages, {"role": "assistant", "content": answer}],
            "max_tokens": 1,
            "temperature": 0.0,
            "extra_body": {
                "continue_final_message": True,
                "add_generation_prompt": False,
                "prompt_logprobs": 0,
            },
        }
        return self.pool.chat(
            payload, read=lambda answer: proto.continuation_logprob(answer, expected)
        )

    def _from_sums(self, labels: Sequence[str], sums: Sequence[float]) -> Prediction:
        logprobs = dict(zip(labels, sums))
        tag = "continuation"
        if self.label_score == "mean":
            tokens = self.label_tokens(labels)
            assert tokens is not None
            extra = 1 if tokens.end_of_turn is not None else 0
            logprobs = {lab: lp / (len(tokens.ids[lab]) + extra) for lab, lp in logprobs.items()}
            tag = "continuation-mean"
        if proto.impossible(logprobs):
            return Prediction(None, {}, unparsed=True, scoring=tag)
        probs = proto.softmax(logprobs)
        return Prediction(proto.best_label(labels, logprobs), probs, scoring=tag)

    def _generated_label(self, messages: list[dict[str, Any]], labels: Sequence[str]) -> Prediction:
        result = self._chat_text(messages, GENERATE_SCORING_TOKENS, None, None)
        label = parse_answer(result.text, labels)
        return Prediction(label, {}, raw_output=result.text, unparsed=label is None,
                          scoring="generate", finish_reason=result.finish_reason)  # fmt: skip

    def request_messages(
        self, task: PromptTemplate, labels: Sequence[str], token_text: str | None
    ) -> list[dict[str, Any]]:
        """The chat messages a variant is sent with, the audio part named but not included.

        A served model's prompt is built by the server's chat template, so the exact text
        is not known here; the request is (``predict --json`` shows it as ``prompt``).
        """
        placeholder = f"<audio: wav float32 {self.audio_rate} Hz, base64, omitted>"
        return proto.audio_messages(self.system, placeholder, task.render(labels, token_text))

    # ----- generation ------------------------------------------------------------------

    def complete(self, request: GenerateRequest) -> Generation:
        """The answer with the server's finish reason and token count."""
        clip = request.clip
        audio = proto.wav_base64(clip.audio, clip.sr, self.audio_rate)
        messages = proto.audio_messages(self.system, audio, request.instruction)
        job = self._executor.submit(
            self._chat_text, messages, request.max_new_tokens, request.sampling, request.stop
        )
        return job.result()

    def _chat_text(
        self,
        messages: list[dict[str, Any]],
        max_tokens: int,
        sampling: Sampling | None,
        stop: Sequence[str] | None,
    ) -> Generation:
        payload: dict[str, Any] = {"model": self.model, "messages": messages,
                                   "max_tokens": max_tokens}  # fmt: skip
        if sampling is None:
            payload["temperature"] = 0.0
        else:
            payload.update(temperature=sampling.temperature, top_p=sampling.top_p,
                           seed=sampling.seed)  # fmt: skip
        if stop:
            payload["stop"] = list(stop)
        return self.pool.chat(payload, read=lambda answer: proto.generation(answer, max_tokens))


def _version(answer: dict[str, Any] | None) -> str | None:
    """The server's release from ``/version`` (None without one; a short text is recorded)."""
    version = (answer or {}).get("version")
    if version is None:
        return None
    if not isinstance(version, (str, int, float)) or len(str(version)) > 200:
        raise ModelError(f"the server's /version is not a release name: {str(version)[:40]!r}...")
    return str(version)


def _served_model(pool: EndpointPool, wanted: str | None, options: LoadOptions) -> str:
    """The model id to use: ``wanted`` (served by every endpoint) or the only one listed."""
    listed: list[list[str]] = []
    for i, url in enumerate(pool.endpoints):
        options.progress(f"asking {url} for its models")
        ids = pool.models(i)
        if wanted is not None and wanted not in ids:
            raise ModelError(
                f"{url} does not serve {wanted!r} (it serves: {', '.join(ids) or 'nothing'})"
            )
        listed.append(ids)
    if wanted is not None:
        return wanted
    first = listed[0]
    if len(first) != 1:
        raise ModelError(
            f"{pool.endpoints[0]} serves {len(first)} models ({', '.join(first) or 'none'}); "
            "name one with openai:URL#MODEL"
        )
    for url, ids in zip(pool.endpoints, listed):
        if ids != first:
            raise ModelError(f"{url} serves {', '.join(ids)}, not {first[0]}; name one with #MODEL")
    return first[0]


def _same_server(
    pool: EndpointPool, model: str, system: str | None, options: LoadOptions
) -> tuple[dict[str, Any] | None, dict[str, bool]]:
    """Version and capabilities, the same on every endpoint (else answers would differ)."""
    seen: list[tuple[dict[str, Any] | None, dict[str, bool]]] = []
    for i, url in enumerate(pool.endpoints):
        options.progress(f"asking {url} what it supports")
        seen.append((pool.root_get("/version", endpoint=i), _capabilities(pool, model, system, i)))
        if seen[-1] != seen[0]:
            what = "version" if seen[-1][0] != seen[0][0] else "features"
            raise ModelError(
                f"{url} and {pool.endpoints[0]} differ in {what}; serve the same vLLM "
                "release on every endpoint of one model spec"
            )
    return seen[0]


def _capabilities(
    pool: EndpointPool, model: str, system: str | None, endpoint: int
) -> dict[str, bool]:
    """What the server supports, probed with tiny text-only requests.

    A feature the server refuses (a 4xx) or ignores (the answer lacks it) is off;
    a server that does not answer at all fails the load.
    """
    messages = proto.text_messages(system)
    base: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": 1,
                            "temperature": 0.0}  # fmt: skip
    probe = _refused_is_none(lambda: pool.root_post(
        "/tokenize", {"model": model, "messages": messages, "add_generation_prompt": True,
                      "add_special_tokens": False}, endpoint, read=proto.token_list))  # fmt: skip
    some_id = int(probe["tokens"][-1]) if probe and probe.get("tokens") else None
    caps = {"tokenize": some_id is not None}
    caps["detokenize"] = some_id is not None and bool(_refused_is_none(
        lambda: pool.root_post("/detokenize", {"model": model, "tokens": [some_id]}, endpoint,
                               read=proto.detokenized)))  # fmt: skip
    named = _refused_is_none(lambda: pool.chat({**base, "logprobs": True, "top_logprobs": 1,
                             "extra_body": {"return_tokens_as_token_ids": True}},
                             endpoint=endpoint, read=proto.checked_probe))  # fmt: skip
    plain = named or _refused_is_none(
        lambda: pool.chat(
            {**base, "logprobs": True, "top_logprobs": 1},
            endpoint=endpoint,
            read=proto.checked_probe,
        )
    )
    caps["logprobs"] = bool(_content(plain))
    first = _content(named)[:1]
    caps["token_ids"] = bool(first) and str(first[0].get("token", "")).startswith("token_id:")
    caps["logprob_token_ids"] = False
    if caps["token_ids"] and some_id is not None:
        answer = _refused_is_none(lambda: pool.chat({**base, "logprobs": True, "extra_body": {
            "logprob_token_ids": [some_id], "return_tokens_as_token_ids": True}}, endpoint=endpoint,
            read=proto.checked_probe))  # fmt: skip
        tops = [t for e in _content(answer)[:1] for t in e.get("top_logprobs") or []]
        caps["logprob_token_ids"] = f"token_id:{some_id}" in [e.get("token") for e in tops]
    prompt = _refused_is_none(
        lambda: pool.chat({**base, "extra_body": {"prompt_logprobs": 0}}, endpoint=endpoint)
    )
    caps["prompt_logprobs"] = isinstance((prompt or {}).get("prompt_logprobs"), list)
    return caps


def _refused_is_none(request: Callable[[], dict[str, Any] | None]) -> dict[str, Any] | None:
    """The answer of ``request``, or None when the server refuses it (a 4xx)."""
    try:
        return request()
    except RemoteRequestError as exc:
        log.info("feature probe refused: %s", exc)
        return None


def _content(response: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The per-token log-probability entries of a chat response (empty when none)."""
    if not response:
        return []
    return proto.logprob_entries(response)
