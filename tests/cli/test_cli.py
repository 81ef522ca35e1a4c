from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cuelab import __version__
from cuelab.cli import main
from cuelab.core.cues.norms import NormsProfile
from tests.conftest import REPO
from tests.core.synth import SR, voiced

DEMO = REPO / "assets" / "demo"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_tokens_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    quiet, loud = tmp_path / "quiet.wav", tmp_path / "loud.wav"
    sf.write(quiet, voiced(amp=0.03), SR)
    sf.write(loud, voiced(amp=0.7), SR)
    assert main(["tokens", "--json", "--gender", "f", str(quiet), str(loud)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    recs = [json.loads(x) for x in lines]
    assert [r["path"] for r in recs] == [str(quiet), str(loud)]
    for r in recs:
        assert set(r) >= {"path", "scores", "tokens", "text"}
        assert len(r["tokens"]) == 6 and r["edges"]["PITCH"] == "f"
        assert r["text"].startswith("ENERGY=")
    assert recs[1]["scores"]["ENERGY"] > recs[0]["scores"]["ENERGY"]


def test_tokens_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    clip = sorted(DEMO.glob("*.flac"))[0]
    assert main(["tokens", str(clip)]) == 0
    out = capsys.readouterr().out
    assert "VOICE_QUALITY" in out and "text: ENERGY=" in out


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "not found"),
        (lambda p: p.write_bytes(b"garbage" * 100), "decode"),
        (lambda p: sf.write(p, np.zeros(400, np.float32), SR), "too short"),
    ],
)
def test_tokens_bad_input_is_one_line(tmp_path: Path, make, message: str) -> None:
    bad = tmp_path / "bad.wav"
    make(bad)
    proc = subprocess.run(
        [sys.executable, "-m", "cuelab", "tokens", str(bad)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cuelab: error:") and "bad.wav" in err[0]
    assert message in err[0].lower()
    assert "Traceback" not in proc.stderr


def test_debug_shows_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cuelab", "--debug", "tokens", str(tmp_path / "nope.wav")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_norms_command_builds_a_profile(tmp_path: Path) -> None:
    rows = ["path,label,speaker,gender"]
    for i in range(10):
        g = "f" if i % 2 else "m"
        f0 = 220 + 10 * i if g == "f" else 110 + 5 * i
        sf.write(tmp_path / f"c{i}.flac", voiced(f0=f0, amp=0.1 + 0.05 * i, seconds=1.0), SR)
        rows.append(f"c{i}.flac,neutral,s{i},{g}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "norms.json"
    assert main(["norms", str(tmp_path / "m.csv"), "-o", str(out), "--workers", "1"]) == 0
    prof = NormsProfile.load(out)
    assert prof.n_clips == 10 and prof.n_clips_by_gender == {"m": 5, "f": 5}
    assert set(prof.edges["PITCH"]) == {"global"}  # 5 per gender is below the minimum
    assert prof.feature_config["feature_set"] == "eGeMAPSv02"


def test_norms_bad_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m.csv").write_text("path,gender\nmissing.wav,m\n")
    assert main(["norms", str(tmp_path / "m.csv"), "-o", str(tmp_path / "x.json")]) == 1
    err = capsys.readouterr().err
    assert "row 1, column 'path'" in err


def test_norms_output_folder_is_refused_before_extraction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The manifest names a missing file: reaching extraction would fail differently.
    (tmp_path / "m.csv").write_text("path,gender\nmissing.wav,m\n")
    assert main(["norms", str(tmp_path / "m.csv"), "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("cuelab: error:") and "is a folder" in err and "\n" not in err
    assert not list(tmp_path.parent.glob(".norms-*"))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tokens", "ENERGY=HUGE"], "--tokens: 'HUGE' is not a ENERGY token"),
        (["--generate", "--max-new-tokens", "0"], "--max-new-tokens must be at least 1"),
    ],
)
def test_predict_bad_options_fail_before_the_model_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    clip = tmp_path / "c.wav"
    sf.write(clip, voiced(f0=150, amp=0.2, seconds=0.5), SR)
    missing_model = f"reference:{tmp_path / 'no-model'}"
    assert main(["predict", str(clip), "--model", missing_model, *extra]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and "not a reference model folder" not in err


def test_train_reference_bad_c_and_file_output_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "m.csv").write_text("path,label\nmissing.wav,a\n")
    assert (
        main(["train-reference", str(tmp_path / "m.csv"), "-o", str(tmp_path / "r"), "--c", "0"])
        == 1
    )
    assert "--c must be a positive number" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["train-reference", str(tmp_path / "m.csv"), "-o", str(blocker)]) == 1
    assert "is not a folder" in capsys.readouterr().err
