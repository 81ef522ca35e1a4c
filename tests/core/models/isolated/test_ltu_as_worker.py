"""The LTU-AS handler in a real worker process, over a stub of the release's APIs (``ltu_stub``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from cuelab.core.errors import ModelError
from cuelab.core.models.base import Clip, LoadOptions, Sampling
from cuelab.core.models.isolated.adapter import adapter_class
from cuelab.core.models.isolated.client import WORKER_DIR, WorkerCommand
from cuelab.core.models.isolated.recipes import get_recipe
from cuelab.core.tasks.sseu.prompts import load_sseu_task
from tests.core.models.isolated.ltu_stub import (
    ANSWER,
    SPOKEN,
    write_checkout,
    write_location,
)

sys.path.insert(0, str(WORKER_DIR))
import wk_ltuas  # the worker module: standard library at import time

LTU_AS = adapter_class("ltu-as")  # made from the recipe


@pytest.fixture()
def stub(tmp_path: Path) -> tuple[WorkerCommand, Path, Path]:
    checkout, site = write_checkout(tmp_path / "stub")
    log = tmp_path / "calls.jsonl"
    command = WorkerCommand(
        sys.executable,
        "ltu-as",
        get_recipe("ltu-as").handler,  # the worker is told its handler by the recipe
        extra_path=[str(checkout), str(site)],
        env={"LTU_STUB_LOG": str(log), "LTU_STUB_ANSWER": ANSWER, "LTU_STUB_SPOKEN": SPOKEN},
    )
    return command, write_location(tmp_path / "LTU-AS"), log


def calls(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def clip(seconds: float = 2.0, sr: int = 44100) -> Clip:
    t = np.arange(int(seconds * sr)) / sr
    return Clip((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr, utt_id="c1")


def test_ltu_as_answers_through_the_worker_as_the_release_prompts(
    stub: tuple[WorkerCommand, Path, Path],
) -> None:
    command, location, log = stub
    model = LTU_AS(command, str(location), LoadOptions(allow_pickle=True, device="cpu"))
    try:
        assert model.sample_rate == 16000
        task = load_sseu_task("joint", answers="open")
        gen = model.generate_full(clip(), task, None, 64)
        drawn = model.generate_full(clip(), task, None, 64, Sampling(0.7, 0.9, seed=3))
        cut = model.generate_full(clip(), task, None, 4)
        described = model.describe()
    finally:
        model.unload()
    assert gen.text == drawn.text == ANSWER and gen.finish_reason == "stop"
    assert gen.tokens == len(("### Response: " + ANSWER).split()) + 1  # and the eos
    assert cut.finish_reason == "length" and cut.tokens == 4
    # the alpaca_short prompt: our instruction, then the spoken text Whisper-AT heard, cleaned
    assert "### Instruction:\n" + task.render() in gen.prompt
    assert "### Input:\nPlease call Stella. \n\n### Response:\n" in gen.prompt
    assert "watching" not in gen.prompt
    log_calls = calls(log)
    loaded = next(c for c in log_calls if c["call"] == "load_state_dict")
    assert loaded["strict"] is False and loaded["keys"] == ["lora.weight"]
    assert loaded["lora"]["r"] == 8 and loaded["lora"]["target_modules"] == ["q_proj", "v_proj"]
    generated = [c for c in log_calls if c["call"] == "generate"]
    # (batch, layers without the first, 500 frames / 20, encoder width)
    assert generated[0]["audio_shape"] == [1, 4, 25, 8]
    assert generated[0]["config"]["do_sample"] is False
    assert generated[1]["config"]["do_sample"] is True
    assert generated[1]["config"]["temperature"] == 0.7 and generated[1]["config"]["top_p"] == 0.9
    assert "repetition_penalty" not in generated[0]["config"]  # no shipped penalty
    assert described["checkpoint"]["release_decoding"]["top_k"] == 500


def test_the_audio_features_follow_the_release(stub: tuple[WorkerCommand, Path, Path]) -> None:
    """Energy per 20 ms frame, averaged over 20 frames, layers scaled 1..5 with the first dropped."""
    command, location, log = stub
    model = LTU_AS(command, str(location), LoadOptions(allow_pickle=True, device="cpu"))
    try:
        audio = clip(1.0, 16000)
        model.generate_full(audio, load_sseu_task("asr"), None, 8)
    finally:
        model.unload()
    energy = np.pad(audio.audio.astype(np.float64), (0, 160000 - 16000)).reshape(500, 320)
    energy = (energy**2).mean(axis=1).reshape(25, 20).mean(axis=1)
    want = np.mean([energy.mean() * k for k in (2, 3, 4, 5)])
    got = next(c for c in calls(log) if c["call"] == "generate")["audio_mean"]
    assert got == pytest.approx(want, rel=1e-3)


def test_pickles_need_allow_pickle_and_missing_files_are_named(
    stub: tuple[WorkerCommand, Path, Path],
) -> None:
    command, location, _ = stub
    from cuelab.cli.remedies import cli_text
    from cuelab.core import errors

    with pytest.raises(ModelError, match=r"Whisper \.pt files are pickles") as info:
        LTU_AS(command, str(location), LoadOptions(device="cpu"))
    # the refusal comes from the worker process; its remedy crosses the protocol typed
    assert info.value.remedy == errors.ALLOW_PICKLE and "--" not in str(info.value)
    assert "--allow-pickle" in cli_text(info.value)
    (location / "large-v2.pt").unlink()
    with pytest.raises(ModelError, match=r"missing large-v2\.pt"):
        LTU_AS(command, str(location), LoadOptions(allow_pickle=True, device="cpu"))


def test_helpers() -> None:
    assert wk_ltuas.clean_spoken_text(" Hi there. Thank you for watching!") == "Hi there. "
    x = np.arange(2 * 45 * 3, dtype=np.float32).reshape(2, 45, 3)
    out = wk_ltuas.block_mean(x)
    assert out.shape == (2, 3, 3)
    assert out[0, 0, 0] == pytest.approx(x[0, :20, 0].mean())
    assert out[0, 2, 0] == pytest.approx(x[0, 40:, 0].sum() / 20)  # zero-padded, as skimage
    with pytest.raises(FileNotFoundError, match="src/ltu_as"):
        wk_ltuas.ltu_source(["/nowhere"])
