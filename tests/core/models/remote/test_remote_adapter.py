"""The ``openai`` family against a real HTTP server speaking vLLM's protocol (tests/servers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cuelab.core.errors import ModelError
from cuelab.core.models.base import Clip, LoadOptions, Prediction
from cuelab.core.models.registry import load_model
from cuelab.core.models.remote.spec import api_key, parse_remote_location, system_prompt
from cuelab.core.tasks.prompts import TaskPrompt
from tests.core.models.conftest import voiced_tone
from tests.core.models.remote.conftest import Serve

TOKENS = [None, "ENERGY=HIGH PITCH=LOW", "ENERGY=LOW PITCH=HIGH"]


def test_spec_lists_endpoints_and_model() -> None:
    spec = parse_remote_location(" http://gpu1:8000/v1/, http://gpu2:8000/v1 #Qwen/Qwen2-Audio-7B ")
    assert spec.endpoints == ("http://gpu1:8000/v1", "http://gpu2:8000/v1")
    assert spec.model == "Qwen/Qwen2-Audio-7B"
    assert parse_remote_location("http://a:1/v1,http://a:1/v1").endpoints == ("http://a:1/v1",)
    assert parse_remote_location("http://a:1/v1").model is None
    for bad, why in [
        ("", "no endpoint"),
        ("gpu1:8000/v1", "not an http"),
        ("ftp://a/v1", "not an http"),
        ("http://me:pw@a:1/v1", "credentials"),
    ]:
        with pytest.raises(ModelError, match=why):
            parse_remote_location(bad)  # fmt: skip


def test_api_key_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUELAB_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert api_key() is None
    monkeypatch.setenv("OPENAI_API_KEY", "from-openai")
    assert api_key() == "from-openai"
    monkeypatch.setenv("CUELAB_API_KEY", "from-cuelab")
    assert api_key() == "from-cuelab"
    for bad in ("sk-sec ret", "sk-sec\nret", "sk-sécret"):  # no header can carry these
        monkeypatch.setenv("CUELAB_API_KEY", bad)
        with pytest.raises(ModelError, match=r"\$CUELAB_API_KEY holds") as err:
            api_key()
        assert "sec" not in str(err.value)
    assert system_prompt(None) is None and system_prompt("qwen2.5-omni").startswith("You are Qwen")
    with pytest.raises(ModelError, match="unknown prompt family"):
        system_prompt("gpt")


def _in_process(folder: Path) -> object:
    return load_model(f"qwen2-audio:{folder}", LoadOptions(device="cpu"))


def test_continuation_equals_in_process_scores(
    serve: Serve, qwen2_audio_dir: Path, clip: Clip, task: TaskPrompt
) -> None:
    _, url = serve()
    remote = load_model(f"openai:{url}", LoadOptions(scoring="continuation"))
    local = _in_process(qwen2_audio_dir)
    got = remote.score_labels(clip, task, task.labels, TOKENS)
    want = local.score_labels(clip, task, task.labels, TOKENS)  # type: ignore[attr-defined]
    for g, w in zip(got, want):
        assert g.scoring == "continuation" and g.label == w.label
        for lab in task.labels:
            assert g.probs[lab] == pytest.approx(w.probs[lab], abs=1e-5)
    assert local.scoring_method == "continuation"  # type: ignore[attr-defined]
    remote.unload()


def _first_token_reference(local: object, clip: Clip, task: TaskPrompt, text: str | None) -> dict:
    """Softmax over the labels' first tokens from the in-process model's own prompt."""
    import torch

    tok = local.tokenizer  # type: ignore[attr-defined]
    prompt = local.chat_prompt(task.render(task.labels, text))  # type: ignore[attr-defined]
    inputs = local.model_inputs(prompt, clip)  # type: ignore[attr-defined]
    with torch.inference_mode():
        logits = local.model(**inputs).logits[0, -1]  # type: ignore[attr-defined]
    logp = torch.log_softmax(logits.float(), dim=-1)
    firsts = {lab: tok(lab, add_special_tokens=False)["input_ids"][0] for lab in task.labels}
    values = np.array([float(logp[firsts[lab]]) for lab in task.labels])
    p = np.exp(values - values.max())
    return dict(zip(task.labels, p / p.sum()))


def test_first_token_scores_equal_the_in_process_first_token_distribution(
    serve: Serve, qwen2_audio_dir: Path, clip: Clip, task: TaskPrompt
) -> None:
    _, url = serve()
    assert load_model(f"openai:{url}").method(task.labels) == "continuation"  # type: ignore[attr-defined]
    remote = load_model(f"openai:{url}", LoadOptions(scoring="first-token"))
    assert remote.method(task.labels) == "first-token"  # type: ignore[attr-defined]
    assert remote.describe()["capabilities"]["logprob_token_ids"] is True
    local = _in_process(qwen2_audio_dir)
    for pred, text in zip(remote.score_labels(clip, task, task.labels, TOKENS), TOKENS):
        want = _first_token_reference(local, clip, task, text)
        assert pred.scoring == "first-token"
        for lab in task.labels:
            assert pred.probs[lab] == pytest.approx(want[lab], abs=1e-5)
    remote.unload()


def _top_words(remote: object, clip: Clip, task: TaskPrompt, labels: tuple[str, ...]) -> list[str]:
    """Whole-word tokens the model ranks in its top 20 after the prompt (to use as labels)."""
    from cuelab.core.models.remote import protocol as proto

    audio = proto.wav_base64(clip.audio, clip.sr)
    messages = proto.audio_messages(None, audio, task.render(labels, None))
    answer = remote.pool.chat({"model": remote.model, "messages": messages, "max_tokens": 1,  # type: ignore[attr-defined]
                               "temperature": 0.0, "logprobs": True, "top_logprobs": 20})  # fmt: skip
    tops = answer["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    return [e["token"] for e in tops if e["token"].isalpha() and len(e["token"]) > 1]


@pytest.mark.parametrize("tokens_as_ids", [True, False], ids=["ids", "text"])
def test_top_logprobs_without_named_tokens_bound_missing_labels_honestly(
    serve: Serve, clip: Clip, task: TaskPrompt, tokens_as_ids: bool
) -> None:
    _, exact_url = serve()
    _, old_url = serve(logprob_token_ids=False, tokens_as_ids=tokens_as_ids)
    exact = load_model(f"openai:{exact_url}", LoadOptions(scoring="first-token"))
    old_server = load_model(f"openai:{old_url}", LoadOptions(scoring="first-token"))
    caps = old_server.describe()["capabilities"]
    assert caps["logprob_token_ids"] is False and caps["token_ids"] is tokens_as_ids
    # labels the model ranks in its top 20, and one ("sad") that it does not
    words = tuple(_top_words(exact, clip, task, task.labels)[:3])
    tags = set()
    for labels in (words, (*words, "sad")):
        for e, o in zip(
            exact.score_labels(clip, task, labels, TOKENS),
            old_server.score_labels(clip, task, labels, TOKENS),
        ):
            tags.add(o.scoring)
            _check_against_exact(e, o, labels)
    assert tags == {"first-token-bounded", "first-token-top20"}
    # a label set the model never ranks in the top 20 is unparsed, not guessed
    for o in old_server.score_labels(clip, task, task.labels, [None]):
        assert o.unparsed and o.label is None and o.scoring == "first-token-bounded"


def _check_against_exact(e: Prediction, o: Prediction, labels: tuple[str, ...]) -> None:
    """A top-20 prediction ``o`` against the exact one ``e`` of the same variant."""
    assert e.scoring == "first-token"
    if o.scoring == "first-token-top20":  # every label shown: the exact numbers
        assert o.probs == pytest.approx(e.probs, abs=1e-6)
    elif o.unparsed:  # no label among the top 20: counted, never guessed
        assert o.label is None and o.probs == {}
    else:  # bounded: the argmax is exact; against it, a shown label's odds are exact
        # and a missing label's odds are an upper bound (it got the lowest shown logprob)
        assert o.scoring == "first-token-bounded" and o.label == e.label
        best = str(e.label)
        odds = [(o.probs[lab] / o.probs[best], e.probs[lab] / e.probs[best]) for lab in labels]
        assert all(got >= want * (1 - 1e-6) for got, want in odds)
        assert sum(got == pytest.approx(want, rel=1e-6) for got, want in odds) >= 2


def test_a_server_without_logprobs_falls_back_to_generate_and_parse(
    serve: Serve, clip: Clip, task: TaskPrompt
) -> None:
    _, url = serve(logprobs=False, tokenize=False, prompt_logprobs=False)
    remote = load_model(f"openai:{url}")
    caps = remote.describe()["capabilities"]
    assert not any(caps.values())
    assert remote.method(task.labels) == "generate"  # type: ignore[attr-defined]
    with pytest.raises(ModelError, match="first-token scoring is not possible"):
        load_model(f"openai:{url}", LoadOptions(scoring="first-token")).method(task.labels)  # type: ignore[attr-defined]
    for pred in remote.score_labels(clip, task, task.labels, [None]):
        assert pred.scoring == "generate" and pred.raw_output is not None
        assert pred.unparsed == (pred.label is None)


def test_generation_reports_finish_reason_and_tokens(
    serve: Serve, qwen2_audio_dir: Path, clip: Clip, task: TaskPrompt
) -> None:
    _, url = serve()
    remote = load_model(f"openai:{url}")
    local = _in_process(qwen2_audio_dir)
    got = remote.generate_full(clip, task, None, max_new_tokens=6)
    want = local.generate_full(clip, task, None, max_new_tokens=6)  # type: ignore[attr-defined]
    assert got.text == want.text  # the same greedy answer as in-process
    assert (got.finish_reason, got.tokens) == ("length", 6) == (want.finish_reason, want.tokens)


def test_requests_overlap_and_spread_over_endpoints(serve: Serve, task: TaskPrompt) -> None:
    a, url_a = serve(latency_s=0.3)
    b, url_b = serve(latency_s=0.3)
    remote = load_model(
        f"openai:{url_a},{url_b}", LoadOptions(concurrency=8, scoring="first-token")
    )
    base_a, base_b = a.stats.chat_requests, b.stats.chat_requests
    clip = Clip(audio=voiced_tone(0.5), sr=16000, utt_id="x")
    texts = [None, *(f"ENERGY={e}" for e in ("LOW", "MID", "HIGH", "VERY_HIGH", "VERY_LOW"))]
    assert a.stats.max_in_flight == b.stats.max_in_flight == 1  # the load's probes: one by one
    remote.score_labels(clip, task, task.labels, texts)
    # the clip's six variants were in flight together, three on each server
    assert a.stats.max_in_flight >= 2 and b.stats.max_in_flight >= 2
    assert a.stats.chat_requests - base_a == b.stats.chat_requests - base_b == 3
    remote.unload()


def test_failures_are_retried_on_the_next_endpoint(
    serve: Serve, clip: Clip, task: TaskPrompt
) -> None:
    server, url = serve()
    remote = load_model(f"openai:{url}", LoadOptions(concurrency=1))
    clean = remote.score_labels(clip, task, task.labels, TOKENS)
    server.fail_next(2, 503)
    server.fail_next(1, "drop")
    server.fail_next(1, 429)
    again = remote.score_labels(clip, task, task.labels, TOKENS)
    assert [p.probs for p in again] == [p.probs for p in clean]
    assert server.stats.failed == 4 and remote.pool.stats.retries == 4  # type: ignore[attr-defined]
    assert "4 retries" in remote.progress_note()  # type: ignore[attr-defined]


def test_a_dead_endpoint_is_one_clear_error(dead_url: str) -> None:
    with pytest.raises(ModelError) as err:
        load_model(f"openai:{dead_url}", LoadOptions(request_timeout=5))
    message = str(err.value)
    assert dead_url in message and "\n" not in message and "connection failed" in message


def test_a_server_that_stays_down_mid_run_names_itself(
    serve: Serve, clip: Clip, task: TaskPrompt
) -> None:
    server, url = serve()
    remote = load_model(f"openai:{url}", LoadOptions(concurrency=1))
    server.fail_next(100, 503)
    with pytest.raises(ModelError, match=r"no answer after 6 tries; last: HTTP 503") as err:
        remote.score_labels(clip, task, task.labels, [None])
    assert url in str(err.value)


def test_model_choice_and_refusals(serve: Serve, dead_url: str) -> None:
    _, url = serve(model_id="org/audio-model")
    assert load_model(f"openai:{url}").describe()["model"] == "org/audio-model"
    assert load_model(f"openai:{url}#org/audio-model").describe()["model"] == "org/audio-model"
    with pytest.raises(ModelError, match="does not serve 'other'"):
        load_model(f"openai:{url}#other")
    with pytest.raises(ModelError, match="unknown prompt family"):
        load_model(f"openai:{url}", LoadOptions(prompt_family="gpt"))


def test_the_key_is_sent_and_never_described(
    serve: Serve, monkeypatch: pytest.MonkeyPatch, clip: Clip, task: TaskPrompt
) -> None:
    server, url = serve(api_key="sk-test-secret-4711")
    with pytest.raises(ModelError, match="HTTP 401"):
        load_model(f"openai:{url}")
    monkeypatch.setenv("CUELAB_API_KEY", "sk-test-secret-4711")
    remote = load_model(f"openai:{url}")
    remote.score_labels(clip, task, task.labels, [None])
    assert "sk-test-secret-4711" in server.stats.bearer_tokens
    assert "sk-test-secret-4711" not in repr(remote.describe())
    assert not any("sk-test" in repr(v) for v in vars(remote.pool).values())  # type: ignore[attr-defined]


def test_length_normalised_continuation_equals_in_process(
    serve: Serve, qwen2_audio_dir: Path, clip: Clip, task: TaskPrompt
) -> None:
    _, url = serve()
    options = {"scoring": "continuation", "label_score": "mean"}
    remote = load_model(f"openai:{url}", LoadOptions(**options))  # type: ignore[arg-type]
    local = load_model(
        f"qwen2-audio:{qwen2_audio_dir}", LoadOptions(device="cpu", label_score="mean")
    )
    for g, w in zip(remote.score_labels(clip, task, task.labels, TOKENS),
                    local.score_labels(clip, task, task.labels, TOKENS)):  # fmt: skip
        assert g.scoring == w.scoring == "continuation-mean"
        assert g.probs == pytest.approx(w.probs, abs=1e-5)


def test_a_shown_label_wins_a_tie_with_a_bounded_one() -> None:
    from cuelab.core.models.remote.protocol import best_label

    # "sad" is the 20th entry shown; the others got its log-probability as their bound
    logprobs = {"angry": -9.0, "happy": -9.0, "neutral": -9.0, "sad": -9.0}
    assert (
        best_label(["angry", "happy", "neutral", "sad"], logprobs, {"angry", "happy", "neutral"})
        == "sad"
    )
    assert best_label(["a", "b"], {"a": -1.0, "b": -2.0}) == "a"


def test_endpoints_that_serve_differently_are_refused(serve: Serve) -> None:
    _, new = serve()
    _, old = serve(logprob_token_ids=False)
    with pytest.raises(ModelError, match="differ in features"):
        load_model(f"openai:{new},{old}")
    _, other = serve(version="0.9.9")
    with pytest.raises(ModelError, match="differ in version"):
        load_model(f"openai:{new},{other}")


def test_a_capped_logprob_token_ids_falls_back_to_the_top_20(
    serve: Serve, clip: Clip, task: TaskPrompt
) -> None:
    _, url = serve(max_logprob_token_ids=2)
    remote = load_model(f"openai:{url}", LoadOptions(scoring="first-token"))
    assert remote.describe()["capabilities"]["logprob_token_ids"] is True  # one id passed the probe
    preds = remote.score_labels(clip, task, task.labels, [None])  # four ids are refused
    assert preds[0].scoring in ("first-token-top20", "first-token-bounded")
    assert remote.use_named_tokens is False  # type: ignore[attr-defined]
    assert remote.describe()["capabilities"]["logprob_token_ids"] is True  # as recorded
