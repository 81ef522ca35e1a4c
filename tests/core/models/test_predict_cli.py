"""``cuelab predict`` end to end on tiny checkpoints, and the CLAP baseline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cuelab.cli import main
from cuelab.core.models.base import Clip
from cuelab.core.models.registry import load_model
from cuelab.core.tasks.prompts import TaskPrompt
from tests.core.models.conftest import voiced_tone


@pytest.fixture(scope="module")
def wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "tone.wav"
    sf.write(path, voiced_tone(1.0), 16000)
    return path


def test_predict_json_with_given_tokens(capsys, wav: Path, qwen2_audio_dir: Path) -> None:
    code = main(
        ["predict", str(wav), "--model", f"qwen2-audio:{qwen2_audio_dir}", "--device", "cpu",
         "--tokens", "ENERGY=HIGH PITCH=LOW", "--labels", "aibo", "--json"]
    )  # fmt: skip
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record["tokens"] == "ENERGY=HIGH PITCH=LOW"
    assert set(record["probs"]) == {"angry", "emphatic", "neutral", "positive", "rest"}
    assert record["label"] == max(record["probs"], key=record["probs"].get)
    assert "raw_output" not in record
    assert record["scoring"] == "continuation"
    # the exact text scored, audio placeholder unexpanded, the token line last
    assert record["prompt"].startswith("<|im_start|>system\nYou are a helpful assistant.")
    assert "Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\n" in record["prompt"]
    assert record["prompt"].endswith("ENERGY=HIGH PITCH=LOW<|im_end|>\n<|im_start|>assistant\n")


def test_predict_generate_records_raw_output(capsys, wav: Path, af3_dir: Path) -> None:
    code = main(
        ["predict", str(wav), "--model", f"audio-flamingo-3:{af3_dir}", "--tokens", "none",
         "--generate", "--max-new-tokens", "5", "--json"]
    )  # fmt: skip
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert isinstance(record["raw_output"], str)
    assert record["tokens"] is None
    assert record["finish_reason"] in ("stop", "length") and 1 <= record["generated_tokens"] <= 5
    assert record["finish_reason"] == "stop" or record["generated_tokens"] == 5
    assert record["decoding"]["do_sample"] is False and record["decoding"]["max_new_tokens"] == 5
    assert "<sound>" in record["prompt"] and record["prompt"].endswith("assistant\n")
    # Random weights answer nonsense: it is recorded as unparsed, never guessed.
    assert record["unparsed"] == (record["label"] is None)


def test_predict_tokens_auto(capsys, wav: Path, qwen2_audio_dir: Path) -> None:
    code = main(["predict", str(wav), "--model", f"qwen2-audio:{qwen2_audio_dir}", "--json"])
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert "ENERGY=" in record["tokens"] and "VOICE_QUALITY=" in record["tokens"]


def test_predict_missing_model_is_one_line(capsys, wav: Path, tmp_path: Path) -> None:
    code = main(["predict", str(wav), "--model", f"qwen2-audio:{tmp_path / 'none'}"])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("cuelab: error: model folder") and "\n" not in err


def test_clap_zero_shot(clap_dir: Path, clip: Clip, task: TaskPrompt) -> None:
    adapter = load_model(f"clap:{clap_dir}")
    predictions = adapter.score_labels(clip, task, task.labels, [None, "ENERGY=HIGH"])
    assert len(predictions) == 2
    assert predictions[0].probs == predictions[1].probs  # CLAP reads no tokens
    assert sum(predictions[0].probs.values()) == pytest.approx(1.0)
    long = Clip(np.tile(clip.audio, 12), 16000)  # longer than CLAP's 10 s window
    first = adapter.score_labels(long, task, task.labels, [None])[0].probs
    assert adapter.score_labels(long, task, task.labels, [None])[0].probs == first


def test_library_noise_goes_to_the_log_not_the_terminal(
    wav: Path, qwen2_audio_dir: Path, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    env = {**os.environ, "CUELAB_LOG_DIR": str(tmp_path / "logs")}
    for key in ("TRANSFORMERS_VERBOSITY", "TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS"):
        env.pop(key, None)
    args = ["predict", str(wav), "--model", f"qwen2-audio:{qwen2_audio_dir}", "--tokens", "none",
            "--quant", "nf4", "--device", "cpu"]  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "cuelab", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # only CueLab's own progress lines: no weight-loading bars, no library warnings
    assert all(line.startswith("[model] ") for line in proc.stderr.splitlines()), proc.stderr
    assert proc.stdout.splitlines()[0].startswith(str(wav))
