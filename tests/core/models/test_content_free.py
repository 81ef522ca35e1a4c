"""Contextual calibration with an audio LM: its content-free input is silence + N/A tokens."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cuelab.cli import main
from cuelab.core.models.base import Clip, LoadOptions
from cuelab.core.models.registry import load_model
from cuelab.core.runs import config_from_mapping, run_eval
from cuelab.core.tasks.prompts import load_task
from tests.core.runs.test_emotion_runs import make_manifest
from tests.helpers import read_csv


def test_an_audio_lm_scores_silence_with_na_tokens_and_the_report_divides_by_it(
    qwen2_audio_dir: Path, tmp_path: Path
) -> None:
    spec = f"qwen2-audio:{qwen2_audio_dir}"
    out = tmp_path / "run"
    manifest = make_manifest(tmp_path / "data")
    data = {
        "manifest": str(manifest), "models": [spec], "out": str(out),
        "conditions": ["audio-only", "correct", "conflict"], "bootstrap": 20, "workers": 1,
    }  # fmt: skip
    run_eval(config_from_mapping(data, None))
    assert main(["report", str(out), "--no-plots", "--calibrate", "contextual"]) == 0
    labels = json.loads((out / "run.json").read_text())["labels"]
    cf = {r["condition"]: r for r in read_csv(out / "content_free.csv")}
    rows = read_csv(out / "predictions.csv")
    first = next(r for r in rows if r["condition"] == "correct")["tokens"]
    want_text = " ".join(w.split("=")[0] + "=N/A" for w in first.split())
    assert cf["correct"]["tokens"] == cf["conflict"]["tokens"] == want_text
    assert cf["audio-only"]["tokens"] == "" and not cf["correct"]["note"]
    # the median clip length, and the model's own distribution for that silence
    paths = [manifest.parent / r["path"] for r in read_csv(manifest)]
    seconds = float(np.median([sf.info(str(p)).duration for p in paths]))
    assert float(cf["correct"]["seconds"]) == pytest.approx(seconds, rel=1e-3)
    model = load_model(spec, LoadOptions(device="cpu"))
    silence = Clip(np.zeros(round(float(cf["correct"]["seconds"]) * 16000), np.float32), 16000)
    task = load_task("ser", labels)
    for cond, text in (("correct", want_text), ("audio-only", None)):
        (pred,) = model.score_labels(silence, task, labels, [text])
        for lab in labels:
            assert float(cf[cond][f"p_{lab}"]) == pytest.approx(pred.probs[lab], abs=1e-5)
    cal = {(r["condition"], r["calibration"]): r for r in read_csv(out / "calibration.csv")}
    for cond in ("audio-only", "correct", "conflict"):
        mine = sorted((r for r in rows if r["condition"] == cond), key=lambda r: r["utt_id"])
        p = np.array([[float(r[f"p_{lab}"]) for lab in labels] for r in mine])
        dist = np.array([float(cf[cond][f"p_{lab}"]) for lab in labels])
        q = p / dist
        q = q / q.sum(axis=1, keepdims=True)
        y = np.array([r["label"] for r in mine])
        top = np.array(labels)[q.argmax(axis=1)]
        uar = np.mean([np.mean(top[y == c] == c) for c in np.unique(y)])
        assert float(cal[(cond, "contextual")]["uar"]) == pytest.approx(uar, abs=1e-6)
        onehot = (y[:, None] == np.array(labels)[None, :]).astype(float)
        brier = np.mean(((q - onehot) ** 2).sum(axis=1))
        assert float(cal[(cond, "contextual")]["brier"]) == pytest.approx(brier, abs=1e-5)
