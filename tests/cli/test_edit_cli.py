"""``cuelab edit`` and ``cuelab predict --edit`` on the shipped espeak-ng demo clips."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cuelab.cli import main
from tests.conftest import REPO

DEMO = REPO / "assets" / "demo"
CLIP = DEMO / "spk04_m_neutral_01.flac"


def test_edit_json_has_the_issue_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "up.wav"
    assert main(["edit", str(CLIP), "-o", str(out), "pitch=+4st", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert list(rec)[:7] == [
        "edit", "engine", "requested", "measured", "tokens_before", "tokens_after", "flags",
    ]  # fmt: skip
    assert rec["edit"] == "pitch=+4st" and rec["engine"] == "world"
    assert rec["requested"] == {"pitch": 4.0}
    m = rec["measured"]
    assert {"f0_shift_st", "duration_ratio", "rms_change_db", "f1_change_pct"} <= set(m)
    assert m["f0_shift_st"] == pytest.approx(4.0, abs=0.3)
    # the PITCH concept score rose with the audio's pitch
    assert rec["scores_after"]["PITCH"] > rec["scores_before"]["PITCH"] + 0.1
    assert set(rec["tokens_before"]) == set(rec["tokens_after"]) and len(rec["tokens_after"]) == 6
    # every concept that moved outside the edit's targets is named in a flag
    for concept in rec["concepts_moved"]:
        if concept != "PITCH":
            assert any(f.startswith(f"{concept} moved") for f in rec["flags"])
    data, sr = sf.read(out)
    info = sf.info(CLIP)
    assert sr == info.samplerate and len(data) == info.frames


def test_edit_flags_an_unmeasurable_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # whispered-like noise has no voiced frame: a pitch edit's effect cannot be
    # measured, so it is flagged rather than silently used
    noise = tmp_path / "noise.wav"
    rng = np.random.default_rng(0)
    sf.write(noise, (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)
    assert main(["edit", str(noise), "-o", str(tmp_path / "o.wav"), "pitch=+2st", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["measured"]["f0_shift_st"] is None
    assert "pitch=+2st: f0_shift_st could not be measured" in rec["flags"]


def test_edit_bad_text_and_engine_are_one_line(tmp_path: Path) -> None:
    for edit, engine, needle in [
        ("pich=+2st", "world", "unknown edit 'pich'"),
        ("jitter=2%", "praat", "praat engine cannot do jitter"),
    ]:
        proc = subprocess.run(
            [sys.executable, "-m", "cuelab", "edit", str(CLIP), "-o",
             str(tmp_path / "x.wav"), edit, "--engine", engine],
            capture_output=True, text=True, cwd=REPO, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 1
        assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
        assert proc.stderr.startswith("cuelab: error: ") and needle in proc.stderr
        assert not (tmp_path / "x.wav").exists()


def test_praat_engine_missing_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "parselmouth", None)  # as if not installed
    assert main(["edit", str(CLIP), "-o", str(tmp_path / "p.wav"), "pitch=+2st",
                 "--engine", "praat"]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert err.startswith("cuelab: error: the praat engine needs praat-parselmouth")
    assert "GPL-3" in err and "cuelab[praat]" in err


def test_predict_on_edited_audio(capsys: pytest.CaptureFixture[str]) -> None:
    runs = {}
    for extra in ([], ["--edit", "pitch=+4st"], ["--edit", "pitch=+4st", "--token-source",
                                                   "original"]):  # fmt: skip
        assert main(["predict", str(CLIP), "--model", "reference", "--json", *extra]) == 0
        runs[" ".join(extra)] = json.loads(capsys.readouterr().out)
    plain, edited, orig_tokens = runs.values()
    assert edited["edit"] == "pitch=+4st" and edited["token_source"] == "edited"
    assert plain["tokens"] != edited["tokens"]  # PITCH moved with the audio
    assert orig_tokens["tokens"] == plain["tokens"]  # the original's tokens, edited audio
    assert orig_tokens["probs"] != plain["probs"]  # the model heard the edit
    assert main(["predict", str(CLIP), "--model", "reference", "--engine", "praat"]) == 1
    assert "--engine and --token-source need --edit" in capsys.readouterr().err


def test_predict_records_the_canonical_edit_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", str(CLIP), "--model", "reference", "--json", "--edit",
                 " PITCH=+4 , Tempo=1.2"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["edit"] == "pitch=+4st,tempo=1.2"


def test_an_edit_too_short_to_measure_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """tempo=4 on a 0.12 s clip: the 30 ms output cannot be measured, named as the edited audio."""
    x, sr = sf.read(CLIP)
    short = tmp_path / "short.wav"
    sf.write(short, x[4000 : 4000 + int(0.12 * sr)], sr)
    assert main(["edit", str(short), "-o", str(tmp_path / "o.wav"), "tempo=4", "--json"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err]
    assert err.startswith("cuelab: error: the edited audio (tempo=4): too short")
    assert main(["edit", str(CLIP), "-o", str(tmp_path / "o.wav"), "pitch=+2st;tempo=1.2"]) == 1
    assert "combine edits into one with ','" in capsys.readouterr().err


def test_a_flac_output_clipped_by_the_edit_is_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """FLAC is integer PCM: the file holds less than the measured +20 dB, so it is flagged."""
    flags = {}
    for suffix in (".flac", ".wav"):
        out = tmp_path / f"loud{suffix}"
        assert main(["edit", str(CLIP), "-o", str(out), "gain=+20dB", "--json"]) == 0
        flags[suffix] = json.loads(capsys.readouterr().out)["flags"]
    assert [f for f in flags[".flac"] if "clipped" in f] != []
    assert [f for f in flags[".wav"] if "clipped" in f] == []  # float WAV keeps the peaks
    assert np.abs(sf.read(tmp_path / "loud.wav")[0]).max() > 1.0


def test_the_text_report_shows_an_unmeasured_shift_as_n_a(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    noise = tmp_path / "noise.wav"
    rng = np.random.default_rng(0)
    sf.write(noise, (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)
    assert main(["edit", str(noise), "-o", str(tmp_path / "o.wav"), "pitch=+2st"]) == 0
    out = capsys.readouterr().out
    assert "F0 n/a st" in out and "nan" not in out
