"""Manifest rows with ``start``/``end``: a region is a unit of its own, and eval scores only it."""

from __future__ import annotations

from pathlib import Path

import pytest

from cuelab.core.audio.io import load_audio
from cuelab.core.cues.concepts import concepts_for_features
from cuelab.core.cues.extract import FeatureConfig, extract_signal
from cuelab.core.cues.feature_cache import extract_file
from cuelab.core.cues.norms import load_norms
from cuelab.core.datasets import read_manifest
from cuelab.core.errors import ManifestError
from cuelab.core.runs import run_eval
from tests.conftest import REPO
from tests.core.runs.test_emotion_runs import config
from tests.helpers import read_csv

DEMO = REPO / "assets" / "demo"
CLIP = "spk01_f_angry_01.flac"  # 1.52 s


def _manifest(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CLIP).symlink_to(DEMO / CLIP)
    m = folder / "regions.csv"
    m.write_text("path,label,gender,start,end\n" + body, encoding="utf-8")
    return m


def test_region_rows_are_units_of_their_own(tmp_path: Path) -> None:
    m = _manifest(tmp_path, f"{CLIP},angry,f,,\n{CLIP},angry,f,0,0.75\n{CLIP},sad,f,0.75,1.5\n")
    rows = read_manifest(m).rows
    assert [r.utt_id for r in rows] == [
        "spk01_f_angry_01", "spk01_f_angry_01@0.0-0.75", "spk01_f_angry_01@0.75-1.5",
    ]  # fmt: skip
    assert [(r.start, r.end) for r in rows] == [(None, None), (0.0, 0.75), (0.75, 1.5)]
    assert rows[1].unit == (CLIP, 0.0, 0.75)


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ("0.5,", r"row 1, column 'end': a region needs both start and end"),
        ("0.9,0.5", r"row 1, column 'end': 0.5 is not after start"),
        ("x,1", r"row 1, column 'start': 'x' is not a time in seconds"),
        ("0,-1", r"row 1, column 'end': '-1' is not a time in seconds"),
    ],
)
def test_bad_regions_name_the_row_and_column(tmp_path: Path, cells: str, message: str) -> None:
    m = _manifest(tmp_path, f"{CLIP},angry,f,{cells}\n")
    with pytest.raises(ManifestError, match=message):
        read_manifest(m)


def test_the_same_region_twice_is_a_duplicate(tmp_path: Path) -> None:
    m = _manifest(tmp_path, f"{CLIP},angry,f,0,1\n{CLIP},sad,f,0,1\n")
    with pytest.raises(ManifestError, match="row 2, column 'path': duplicate of row 1"):
        read_manifest(m)


def test_eval_scores_the_span(tmp_path: Path) -> None:
    m = _manifest(tmp_path, f"{CLIP},angry,f,,\n{CLIP},angry,f,0,0.75\n{CLIP},sad,f,0.75,1.5\n")
    out = tmp_path / "run"
    run_eval(config(m, out, conditions="audio-only,correct", seeds=[0], bootstrap=20))
    preds = {(r["utt_id"], r["condition"]): r for r in read_csv(out / "predictions.csv")}
    assert len(preds) == 6
    # The tokens of a region come from its own span, computed here by hand.
    audio, sr = load_audio(DEMO / CLIP, 16000)
    second = extract_signal(audio[round(0.75 * sr) : round(1.5 * sr)], sr, FeatureConfig())
    want = concepts_for_features(second, load_norms(None), "f").tokens.text()
    whole = concepts_for_features(extract_file(DEMO / CLIP), load_norms(None), "f").tokens.text()
    got = {u: r["tokens"] for (u, c), r in preds.items() if c == "correct"}
    assert got["spk01_f_angry_01@0.75-1.5"] == want
    assert got["spk01_f_angry_01"] == whole
    assert got["spk01_f_angry_01@0.0-0.75"] != got["spk01_f_angry_01@0.75-1.5"]
    # The model heard different audio: its audio-only probabilities differ.
    p = {u: r["p_angry"] for (u, c), r in preds.items() if c == "audio-only"}
    assert len(set(p.values())) == 3


def test_a_region_past_the_end_is_an_error_row(tmp_path: Path) -> None:
    m = _manifest(tmp_path, f"{CLIP},angry,f,,\n{CLIP},sad,f,1.0,9.0\n")
    out = tmp_path / "run"
    run_eval(config(m, out, conditions="audio-only", seeds=[0], bootstrap=20))
    errors = read_csv(out / "errors.csv")
    assert [e["utt_id"] for e in errors] == ["spk01_f_angry_01@1.0-9.0"]
    assert errors[0]["stage"] == "features" and "ends after the clip" in errors[0]["error"]
