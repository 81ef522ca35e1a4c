"""Misbehaving servers on 127.0.0.1: what they send is refused in one line, never stored as an answer.

Each test starts the real-protocol server of tests/servers and makes it hostile:
an answer trickled one byte at a time, an error body or a page with status 200,
a ``/tokenize`` that answers garbage, corrupted log-probabilities, a redirect to
another port, a key echoed back in another case or cut short, an answer far
longer than ``max_tokens``.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from cuelab.core.errors import ModelError
from cuelab.core.models.base import Clip, LoadOptions
from cuelab.core.models.registry import load_model
from cuelab.core.models.remote import answers, client
from cuelab.core.models.remote.client import RemoteRequestError, ServerAnswerError
from cuelab.core.models.remote.protocol import answer_limit
from cuelab.core.tasks.prompts import TaskPrompt
from tests.core.models.remote.conftest import Serve
from tests.servers.openai_audio import Reply

CHAT = "/v1/chat/completions"
MISSING: Any = object()


def _one_line(err: pytest.ExceptionInfo[BaseException], *needles: str) -> str:
    text = str(err.value)
    assert "\n" not in text and "Traceback" not in text
    for needle in needles:
        assert needle in text, (needle, text)
    return text


# ----- whole-request deadline -------------------------------------------------------------


def test_a_trickling_server_is_cut_at_the_deadline(
    serve: Serve, clip: Clip, task: TaskPrompt
) -> None:
    server, url = serve()
    remote = load_model(f"openai:{url}", LoadOptions(request_timeout=1.0))
    server.options.trickle_s = 0.04  # each answer (~1 KB) would take 40 s and more
    started = time.monotonic()
    with pytest.raises(ModelError) as err:
        remote.score_labels(clip, task, task.labels, [None])
    elapsed = time.monotonic() - started
    remote.unload()
    _one_line(err, url, "timed out", "each try is given 1 s")
    # two tries of at most 1 s each and one backoff, not one read timeout per byte
    assert elapsed < 6, elapsed


def test_a_listener_that_never_accepts_is_given_up_on_after_two_deadlines() -> None:
    """Its accept queue is full: the connection never opens or is never read."""
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(8)]
        for sock in fillers:
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
        pool = client.EndpointPool([f"http://127.0.0.1:{port}/v1"], None, timeout=1.0)
        started = time.monotonic()
        with pytest.raises(ModelError) as err:
            pool.models(0)
        elapsed = time.monotonic() - started
        pool.close()
        for sock in fillers:
            sock.close()
    _one_line(err, f"127.0.0.1:{port}", "no answer after 2 tries", "timed out")
    assert elapsed < 6, elapsed  # 2 tries of 1 s, not 6 tries of the 10 s connect timeout


def test_abort_cuts_requests_in_flight_at_once(serve: Serve, clip: Clip, task: TaskPrompt) -> None:
    import threading

    server, url = serve()
    remote = load_model(f"openai:{url}", LoadOptions(concurrency=3))
    server.options.latency_s = 120.0  # every request now hangs
    failures: list[BaseException] = []

    def score() -> None:
        try:
            remote.score_labels(clip, task, task.labels, [None, "A", "B"])
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=score)
    thread.start()
    deadline = time.monotonic() + 30
    while server.stats.in_flight < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.stats.in_flight == 3
    started = time.monotonic()
    remote.unload()  # what a signal does
    thread.join(10)
    assert not thread.is_alive() and time.monotonic() - started < 5
    assert len(failures) == 1 and isinstance(failures[0], ModelError)
    server.options.latency_s = 0.0


# ----- a server's error is not an answer --------------------------------------------------

PAGE = b"<!DOCTYPE html><html><body><h1>Welcome to nginx!</h1></body></html>"
NOT_ANSWERS = {
    "error-200": {"error": {"message": "CUDA out of memory", "type": "InternalServerError"}},
    "html-200": Reply(200, PAGE, "text/html"),
    "text-200": Reply(200, b"OK", "text/plain"),
    "json-string": Reply(200, b'"ok"'),
    "no-choices": {"id": "x", "object": "chat.completion", "choices": []},
    "truncated": Reply(200, b'{"choices": [{"message": {"content": "ang'),
}


@pytest.mark.parametrize("scoring", ["first-token", "generate"])
@pytest.mark.parametrize("bad", list(NOT_ANSWERS), ids=list(NOT_ANSWERS))
def test_a_chat_answer_that_is_not_an_answer_is_one_error(
    serve: Serve, clip: Clip, task: TaskPrompt, bad: str, scoring: str
) -> None:
    server, url = serve()
    remote = load_model(f"openai:{url}", LoadOptions(scoring=scoring))
    sent: list[str] = []

    def not_an_answer(path: str, body: dict[str, Any], real: Any) -> Any:
        if path != CHAT:
            return None
        sent.append(path)
        return NOT_ANSWERS[bad]

    server.rewrite = not_an_answer
    with pytest.raises(ServerAnswerError) as err:
        remote.score_labels(clip, task, task.labels, [None])
    remote.unload()
    text = _one_line(err, url, "chat completion")
    if bad == "error-200":
        assert "HTTP 200 with an error: CUDA out of memory" in text
    if bad == "html-200":
        assert "not JSON (text/html" in text
    assert len(sent) == 1  # a broken answer is not asked for again


@pytest.mark.parametrize(
    "route, answer",
    [
        ("/tokenize", Reply(200, PAGE, "text/html")),
        ("/tokenize", Reply(200, b"\x00\x01garbage", "application/octet-stream")),
        ("/tokenize", {"count": 3}),
        ("/tokenize", {"tokens": ["a", "b"]}),
        ("/tokenize", {"error": "tokenizer crashed"}),
        ("/detokenize", Reply(200, b"<html>", "text/html")),
        ("/v1/models", Reply(200, PAGE, "text/html")),
        ("/v1/models", {"data": "tiny"}),
    ],
    ids=[
        "tok-html",
        "tok-bytes",
        "tok-no-tokens",
        "tok-strings",
        "tok-error",
        "detok-html",
        "models-html",
        "models-shape",
    ],
)
def test_a_garbage_probe_answer_fails_the_load_naming_the_route(
    serve: Serve, route: str, answer: Any
) -> None:
    """A 200 that is not the route's answer is a broken server, not a missing feature."""
    server, url = serve()
    server.rewrite = lambda path, body, real: answer if path == route else None
    with pytest.raises(ServerAnswerError) as err:
        load_model(f"openai:{url}")
    _one_line(err, url, route)


def test_a_missing_tokenize_route_is_still_a_missing_feature(serve: Serve) -> None:
    _, url = serve(tokenize=False)  # a 404: hosted APIs have no /tokenize
    remote = load_model(f"openai:{url}")
    assert remote.describe()["capabilities"]["tokenize"] is False
    remote.unload()


def _corrupt_first_token(value: Any) -> Any:
    def rewrite(path: str, body: dict[str, Any], real: dict[str, Any] | None) -> Any:
        if path != CHAT or real is None or not body.get("logprobs"):
            return None
        entry = real["choices"][0]["logprobs"]["content"][0]["top_logprobs"][0]
        if value is MISSING:
            del entry["logprob"]
        else:
            entry["logprob"] = value
        return real

    return rewrite


def _corrupt_continuation(value: Any) -> Any:
    def rewrite(path: str, body: dict[str, Any], real: dict[str, Any] | None) -> Any:
        if path != CHAT or real is None or not real.get("prompt_logprobs"):
            return None
        row = real["prompt_logprobs"][-2]  # a token of the label
        entry = next(iter(row.values()))
        if value is MISSING:
            del entry["logprob"]
        else:
            entry["logprob"] = value
        return real

    return rewrite


BAD_LOGPROBS = {"string": "-0.5", "nan": math.nan, "plus-inf": math.inf, "positive": 0.7,
                "missing": MISSING, "null": None, "bool": True}  # fmt: skip


@pytest.mark.parametrize("scoring", ["first-token", "continuation"])
@pytest.mark.parametrize("bad", list(BAD_LOGPROBS), ids=list(BAD_LOGPROBS))
def test_a_bad_log_probability_is_one_error_not_a_label(
    serve: Serve, clip: Clip, task: TaskPrompt, bad: str, scoring: str
) -> None:
    server, url = serve()
    remote = load_model(f"openai:{url}", LoadOptions(scoring=scoring))
    corrupt = _corrupt_first_token if scoring == "first-token" else _corrupt_continuation
    server.rewrite = corrupt(BAD_LOGPROBS[bad])
    with pytest.raises(ServerAnswerError) as err:
        remote.score_labels(clip, task, task.labels, [None])
    remote.unload()
    _one_line(err, url, "chat completion", "log-probability")


def test_all_impossible_labels_are_unparsed_never_a_label(
    serve: Serve, clip: Clip, task: TaskPrompt
) -> None:
    server, url = serve()
    remote = load_model(f"openai:{url}", LoadOptions(scoring="first-token"))

    def every_label_impossible(path: str, body: dict[str, Any], real: Any) -> Any:
        if path != CHAT or real is None:
            return None
        first = real["choices"][0]["logprobs"]["content"][0]
        for entry in [first, *first["top_logprobs"]]:
            entry["logprob"] = -math.inf
        return real

    server.rewrite = every_label_impossible
    [pred] = remote.score_labels(clip, task, task.labels, [None])
    remote.unload()
    assert pred.unparsed and pred.label is None and pred.probs == {}


# ----- bounded answers ------------------------------------------------------------------------


def test_an_answer_far_past_max_tokens_is_cut(serve: Serve, clip: Clip, task: TaskPrompt) -> None:
    server, url = serve()

    def chatty(path: str, body: dict[str, Any], real: Any) -> Any:
        if path != CHAT or real is None:
            return None
        real["choices"][0]["message"]["content"] = "angry " + "la" * 100_000  # 200 KB
        real["usage"]["completion_tokens"] = 100_001
        return real

    remote = load_model(f"openai:{url}", LoadOptions(scoring="generate"))
    server.rewrite = chatty
    [pred] = remote.score_labels(clip, task, task.labels, [None])
    out = remote.generate_full(clip, task, None, max_new_tokens=10)
    remote.unload()
    assert server.stats.max_tokens[-2:] == [32, 10]  # max_tokens was passed
    assert pred.scoring == "generate" and pred.finish_reason == "length"
    assert pred.raw_output is not None and len(pred.raw_output) == answer_limit(32)
    assert len(out.text) == answer_limit(10) and out.finish_reason == "length" and out.tokens == 10


def test_a_body_past_the_response_limit_is_refused(
    serve: Serve, clip: Clip, task: TaskPrompt, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, url = serve(logprobs=False)
    remote = load_model(f"openai:{url}")
    monkeypatch.setattr(client, "MAX_RESPONSE_BYTES", 1 << 20)
    huge = b'{"choices": [{"message": {"content": "' + b"x" * (2 << 20) + b'"}}]}'
    server.rewrite = lambda path, body, real: Reply(200, huge) if path == CHAT else None
    with pytest.raises(ServerAnswerError) as err:
        remote.generate_full(clip, task, None)
    remote.unload()
    _one_line(err, url, "bytes")


# ----- credentials and redirects ----------------------------------------------------------------

KEY = "sk-CueLab-Secret-5b1d9e77"


@pytest.mark.parametrize(
    "echo",
    ["Incorrect API key provided: {key}", "bad key {KEY}", "key {key12}...", "key ...{tail}"],
    ids=["same", "upper", "cut-short", "tail"],
)
def test_a_key_echoed_by_the_server_is_blanked(
    serve: Serve, monkeypatch: pytest.MonkeyPatch, echo: str
) -> None:
    wrong = "sk-WrongKey-0123456789abcdef"
    message = echo.format(key="{key}", KEY=wrong.upper(), key12=wrong[:12], tail=wrong[-10:])
    _, url = serve(api_key=KEY, unauthorised_message=message)
    monkeypatch.setenv("CUELAB_API_KEY", wrong)
    with pytest.raises(RemoteRequestError) as err:
        load_model(f"openai:{url}")
    text = _one_line(err, url, "HTTP 401")
    for fragment in (wrong, wrong.upper(), wrong[:12], wrong[-10:], wrong[3:9]):
        assert fragment.lower() not in text.lower(), text


def test_redact_catches_case_and_fragments() -> None:
    key = "sk-proj-Ab12Cd34Ef56Gh78"
    said = f"key {key.upper()} / {key[:10]}... / ...{key[-8:]} at http://h:1/v1 (chat)"
    cleaned = answers.redact(said, key)
    assert "AB12CD34" not in cleaned.upper() and key[-8:] not in cleaned
    assert "http://h:1/v1 (chat)" in cleaned  # the rest of the message stays


def test_a_redirect_to_another_port_is_refused(serve: Serve, dead_url: str) -> None:
    server, url = serve()
    moved = dead_url.replace("/v1", "/v1/models")
    server.rewrite = lambda path, body, real: (
        Reply(307, b"", headers={"Location": moved}) if path == "/v1/models" else None
    )
    with pytest.raises(ServerAnswerError) as err:
        load_model(f"openai:{url}")
    port = dead_url.rsplit(":", 1)[1].split("/")[0]
    _one_line(err, url, "redirects", port, "another host or port")


def test_a_redirect_on_the_same_server_is_followed(serve: Serve) -> None:
    server, url = serve()
    hops: list[str] = []

    def moved_once(path: str, body: dict[str, Any], real: Any) -> Any:
        if path != "/v1/models" or hops:
            return None
        hops.append(path)
        return Reply(307, b"", headers={"Location": url.replace("/v1", "/v1/models")})

    server.rewrite = moved_once
    remote = load_model(f"openai:{url}")
    assert hops and remote.describe()["model"] == "tiny/qwen2-audio"
    remote.unload()
