"""Live and batch score one label set and agree on a clip (issue 26, must-fix 4)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cuelab.core.runs import RunConfig, run_eval


def _three_labels(small_manifest: Path) -> Path:
    """The small manifest without its happy clip: angry / neutral / sad."""
    with small_manifest.open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label"] != "happy"]
    out = small_manifest.with_name("three.csv")
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out


def test_live_prediction_equals_the_batch_row(make_window, qtbot, small_manifest, tmp_path):
    manifest = _three_labels(small_manifest)
    win = make_window()
    s = win.session
    with qtbot.waitSignal(s.model_changed, timeout=60_000):
        s.load_model("reference")  # a four-class model: angry, happy, neutral, sad
    assert "happy" in s.labels and s.label_source == "the model's labels"
    assert "the model's labels" in win.predictions_panel.labels_label.text()
    s.open_manifest(manifest)
    qtbot.waitUntil(
        lambda: s.prediction is not None and s.prediction.clip_key == str(s.clip_path),
        timeout=60_000,
    )
    live = s.prediction
    assert live.labels == ("angry", "neutral", "sad")  # the dataset's labels, not the model's
    assert s.label_source == "the dataset's labels (three.csv)"
    assert "the dataset's labels (three.csv)" in win.predictions_panel.labels_label.text()
    assert "angry, neutral, sad" in win.batch_panel.labels_label.text()
    assert win.batch_panel.config().labels == ("angry", "neutral", "sad")

    out = tmp_path / "run"
    run_eval(RunConfig(manifest=str(manifest), models=("reference",),
                       conditions=("audio-only",), out=str(out), bootstrap=10, workers=1))  # fmt: skip
    with (out / "predictions.csv").open(newline="", encoding="utf-8") as fh:
        rows = {r["utt_id"]: r for r in csv.DictReader(fh)}
    batch = rows[s.row.utt_id]
    assert "p_happy" not in batch
    for label in live.labels:
        assert float(batch[f"p_{label}"]) == pytest.approx(live.audio_only[label], abs=1e-5)
