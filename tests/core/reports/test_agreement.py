"""Annotator sidecar (Qt-free) and its place in a run's report."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from cuelab.core.datasets.annotations import load_annotations, save_annotation, sidecar_path
from cuelab.core.reports.agreement import ANNOTATIONS_CSV, ANNOTATIONS_SUMMARY_CSV, agreement
from cuelab.core.reports.build import build_report
from cuelab.core.runs import RunConfig, run_eval
from tests.conftest import REPO
from tests.helpers import read_csv as read

DEMO = REPO / "assets" / "demo"
CLIPS = ("spk01_f_angry_01", "spk01_f_sad_01", "spk04_m_happy_01", "spk04_m_neutral_01")


def test_sidecar_cells_are_neutralised_and_restored(tmp_path: Path) -> None:
    manifest = tmp_path / "set.csv"
    manifest.write_text("path,label\na.wav,sad\n", encoding="utf-8")
    note = '=HYPERLINK("http://evil","click")'
    save_annotation(manifest, "a.wav", "@SUM(A1)", note)
    raw = read(sidecar_path(manifest, "default"))[0]
    assert raw["note"] == "'" + note and raw["label"] == "'@SUM(A1)"
    got = load_annotations(manifest)["a.wav"]
    assert (got.annotator_label, got.note) == ("@SUM(A1)", note)


def test_sidecar_round_trip_and_atomic_rewrite(tmp_path: Path) -> None:
    manifest = tmp_path / "set.csv"
    manifest.write_text("path,label\na.wav,sad\nb.wav,angry\n", encoding="utf-8")
    assert sidecar_path(manifest, "default") == tmp_path / "set.annotations.default.csv"
    assert load_annotations(manifest) == {}
    save_annotation(manifest, "a.wav", "neutral", 'sounds "flat", maybe tired')
    save_annotation(manifest, "b.wav", "", "check, the start is clipped\nsecond line")
    got = load_annotations(manifest)
    assert got["a.wav"].annotator_label == "neutral"
    assert got["a.wav"].note == 'sounds "flat", maybe tired'
    assert got["b.wav"].note == "check, the start is clipped\nsecond line"
    assert got["a.wav"].updated.endswith("+00:00")
    # Clearing both fields removes the row; no temporary files are left behind.
    save_annotation(manifest, "a.wav", "", "")
    assert set(load_annotations(manifest)) == {"b.wav"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set.annotations.default.csv", "set.csv"]
    with sidecar_path(manifest, "default").open(newline="", encoding="utf-8") as fh:
        assert next(csv.reader(fh)) == ["path", "label", "note", "start", "end", "updated"]


def test_agreement_counts_unparsed_as_disagreement_and_gives_kappa() -> None:
    pairs = [("sad", "sad"), ("Angry", "angry"), ("sad", "angry"), ("happy", "")]
    agree, po, kappa = agreement(pairs)
    assert (agree, po) == (2, 0.5)
    # By hand: annotator marginals sad 2/4, angry 1/4, happy 1/4; other sad 1/4, angry 2/4.
    pe = 0.5 * 0.25 + 0.25 * 0.5
    assert kappa == pytest.approx((0.5 - pe) / (1 - pe))
    assert agreement([])[0] == 0 and math.isnan(agreement([])[1])
    assert math.isnan(agreement([("sad", "sad")])[2])  # one category: kappa undefined


@pytest.fixture
def run_dir(tmp_path: Path) -> tuple[Path, Path]:
    """A finished reference-model run over four demo clips (audio-only, correct, shuffle)."""
    data = tmp_path / "data"
    data.mkdir()
    lines = ["path,label,speaker,gender"]
    for name in CLIPS:
        (data / f"{name}.flac").symlink_to(DEMO / f"{name}.flac")
        spk, lab = name[:7], name.split("_")[2]
        lines.append(f"{name}.flac,{lab},{spk},{spk[-1]}")
    manifest = data / "set.csv"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    cfg = RunConfig(
        manifest=str(manifest),
        models=("reference",),
        conditions=("audio-only", "correct", "shuffle"),
        out=str(out),
        bootstrap=50,
        workers=1,
    )
    run_eval(cfg)
    return manifest, out


def test_report_carries_annotations_and_agreement(run_dir: tuple[Path, Path]) -> None:
    manifest, out = run_dir
    files = build_report(out, plots=False)
    assert files.annotations == []
    assert not (out / ANNOTATIONS_CSV).exists()

    save_annotation(manifest, "spk01_f_angry_01.flac", "angry", "clear")
    save_annotation(manifest, "spk01_f_sad_01.flac", "Neutral", "=SUM(A1) flat")
    save_annotation(manifest, "spk04_m_happy_01.flac", "", "note only")
    files = build_report(out, plots=False)
    assert files.annotations == [out / ANNOTATIONS_CSV, out / ANNOTATIONS_SUMMARY_CSV]

    preds = {(r["utt_id"], r["condition"]): r["prediction"] for r in read(out / "predictions.csv")}
    rows = read(out / ANNOTATIONS_CSV)
    assert [r["utt_id"] for r in rows] == list(CLIPS[:3])
    assert list(rows[0]) == [
        "utt_id", "path", "annotator", "label", "annotator_label", "note", "updated",
        "pred_reference_correct", "pred_reference_audio-only",
    ]  # fmt: skip
    assert rows[1]["path"] == "spk01_f_sad_01.flac" and rows[1]["label"] == "sad"
    assert rows[1]["note"] == "'=SUM(A1) flat"  # spreadsheet-safe, like every report CSV
    for r in rows:
        assert r["pred_reference_correct"] == preds[(r["utt_id"], "correct")]
        assert r["pred_reference_audio-only"] == preds[(r["utt_id"], "audio-only")]

    summary = {(r["compared_with"], r["condition"]): r for r in read(out / ANNOTATIONS_SUMMARY_CSV)}
    truth = summary[("label", "")]
    assert (truth["n"], truth["agree"], float(truth["agreement"])) == ("2", "1", 0.5)
    for cond in ("correct", "audio-only"):
        row = summary[("model", cond)]
        labelled = [("angry", CLIPS[0]), ("neutral", CLIPS[1])]
        want = sum(lab == preds[(u, cond)] for lab, u in labelled)
        assert row["model"] == "reference" and row["n"] == "2"
        assert int(row["agree"]) == want and float(row["agreement"]) == want / 2
    assert ("model", "shuffle") not in summary

    # Annotations removed: the report no longer shows them.
    sidecar_path(manifest, "default").unlink()
    assert build_report(out, plots=False).annotations == []
    assert not (out / ANNOTATIONS_CSV).exists() and not (out / ANNOTATIONS_SUMMARY_CSV).exists()
