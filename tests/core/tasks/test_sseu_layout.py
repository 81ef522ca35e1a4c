"""Set layouts: per-background (the SSEU paper's) and per-speech; the SNR span; build --help."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cuelab.cli import main
from cuelab.core.audio.mixing import measure_snr_db
from cuelab.core.tasks.sseu.build import DEMO_BACKGROUNDS, SseuBuildError, build_sseu
from cuelab.core.tasks.sseu.per_background import build_per_background, plan_per_background
from tests.helpers import read_csv as read

DEMO = Path(__file__).resolve().parents[3] / "assets" / "demo"
SR = 16000


def speech_manifest(folder: Path, names: list[str]) -> Path:
    lines = (DEMO / "manifest.csv").read_text(encoding="utf-8").splitlines()
    keep = [line for line in lines[1:] if line.split(",", 1)[0] in names]
    path = folder / "speech.csv"
    path.write_text(
        "\n".join([lines[0], *(f"{DEMO}/{line}" for line in keep)]) + "\n", encoding="utf-8"
    )
    return path


NAMES = ["spk01_f_angry_01.flac", "spk04_m_sad_02.flac", "spk03_f_happy_03.flac"]


@pytest.fixture(scope="module")
def per_bg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pb")
    speech = speech_manifest(folder, NAMES)
    build_per_background(folder / "set", speech, None, (0.0, math.inf, -math.inf), seed=3, sr=SR)
    return folder / "set"


def test_one_mixture_per_background_at_its_length(per_bg: Path) -> None:
    rows = read(per_bg / "manifest.csv")
    bgs = read(DEMO_BACKGROUNDS)
    assert len(rows) == len(bgs) * 3
    for snr in ("0", "inf", "-inf"):
        at = [r for r in rows if r["snr_db"] == snr]
        assert sorted(Path(r["background"]).name for r in at) == sorted(b["path"] for b in bgs)
    for r in rows:
        bg = DEMO_BACKGROUNDS.parent / Path(r["background"]).name
        mix = sf.info(str(per_bg / r["path"]))
        assert mix.frames == sf.info(str(bg)).frames  # the background's length, to the sample
        assert r["layout"] == "per-background" and r["snr_over"] == "speech"
        start, end = (float(x) for x in r["speech_span_s"].split("-"))
        assert 0 <= start < end <= float(r["duration_s"]) and r["speech_cut_s"] == "0.000"
        assert float(r["onset_s"]) == pytest.approx(start, abs=1e-3)
    zero = [r for r in rows if r["snr_db"] == "0"]
    for r in zero:
        assert float(r["snr_speech_db"]) == pytest.approx(0.0, abs=0.01)
        assert float(r["achieved_snr_db"]) == float(r["snr_speech_db"])
        # over the clip, the background's energy outside the speech counts too
        bg, _ = sf.read(str(DEMO_BACKGROUNDS.parent / Path(r["background"]).name))
        start, end = (round(float(x) * SR) for x in r["speech_span_s"].split("-"))
        ratio_db = 10 * math.log10(np.sum(bg**2) / np.sum(bg[start:end] ** 2))
        assert float(r["snr_clip_db"]) == pytest.approx(-ratio_db, abs=0.02)
        assert ratio_db > 2.0
        assert r["events"] and r["scene"] and r["transcript"]
    # every speech clip is used, and onsets differ between backgrounds (seeded)
    assert {Path(r["speech_id"]).name for r in zero} >= {Path(n).stem for n in NAMES}
    assert len({r["onset_s"] for r in zero}) > 1
    config = json.loads((per_bg / "build.json").read_text(encoding="utf-8"))
    assert config["layout"] == "per-background"


def test_the_stems_and_the_measured_snrs_agree(tmp_path: Path) -> None:
    speech = speech_manifest(tmp_path, NAMES[:1])
    build_per_background(tmp_path / "s", speech, None, (5.0,), seed=0, sr=SR, stems=True,
                         snr_over="clip")  # fmt: skip
    r = read(tmp_path / "s" / "manifest.csv")[0]
    stems = sorted((tmp_path / "s" / "stems").rglob("*.flac"))
    assert len(stems) == 2 * 4
    name = Path(r["path"]).stem
    folder = stems[0].parent
    s_stem, b_stem = (
        sf.read(str(folder / f"{name}_{k}.flac"))[0] for k in ("speech", "background")
    )
    assert float(r["snr_clip_db"]) == pytest.approx(5.0, abs=0.01)
    assert measure_snr_db(s_stem, b_stem) == pytest.approx(5.0, abs=0.02)
    assert float(r["snr_speech_db"]) > 5.0 + 3.0 and r["snr_over"] == "clip"


def test_a_speech_clip_longer_than_its_background_is_cut_and_the_cut_recorded(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(0)
    sf.write(str(tmp_path / "short.flac"), 0.1 * rng.standard_normal(SR // 2), SR)
    (tmp_path / "bg.csv").write_text(
        "path,scene,events\nshort.flac,street,traffic\n", encoding="utf-8"
    )
    speech = speech_manifest(tmp_path, NAMES[:1])
    build_per_background(tmp_path / "s", speech, tmp_path / "bg.csv", (0.0,), seed=0, sr=SR)
    r = read(tmp_path / "s" / "manifest.csv")[0]
    assert sf.info(str(tmp_path / "s" / r["path"])).frames == SR // 2
    full = sf.info(str(DEMO / NAMES[0])).duration
    assert float(r["speech_cut_s"]) == pytest.approx(full - 0.5, abs=1e-3)
    assert r["speech_span_s"] == "0.000-0.500" and r["transcript"]


def test_plan_uses_every_speech_clip_and_is_seeded() -> None:
    bgs = [f"bg{i}.flac" for i in range(9)]
    plan = plan_per_background(bgs, ["a", "b", "c"], seed=1)
    assert sorted(s for s, _ in plan.values()) == ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    assert plan == plan_per_background(list(reversed(bgs)), ["c", "a", "b"], seed=1)
    assert plan != plan_per_background(bgs, ["a", "b", "c"], seed=2)


def test_per_speech_keeps_its_layout_and_can_measure_over_the_clip(tmp_path: Path) -> None:
    speech = speech_manifest(tmp_path, NAMES[:2])
    build_sseu(tmp_path / "a", speech, None, (0.0,), seed=0, sr=SR)
    config = json.loads((tmp_path / "a" / "build.json").read_text(encoding="utf-8"))
    assert "layout" not in config and "snr_over" not in config  # older sets still complete
    a = read(tmp_path / "a" / "manifest.csv")
    assert len(a) == 2 and {r["layout"] for r in a} == {"per-speech"}
    assert all(float(r["snr_speech_db"]) == pytest.approx(0, abs=0.01) for r in a)
    build_sseu(tmp_path / "b", speech, None, (0.0,), seed=0, sr=SR, snr_over="clip")
    b = read(tmp_path / "b" / "manifest.csv")
    assert all(float(r["snr_clip_db"]) == pytest.approx(0, abs=0.01) for r in b)
    assert all(float(r["snr_speech_db"]) > 0.5 for r in b)
    with pytest.raises(SseuBuildError, match="different configuration"):
        build_per_background(tmp_path / "a", speech, None, (0.0,), seed=0, sr=SR)
    with pytest.raises(SseuBuildError, match="not speech or clip"):
        build_sseu(tmp_path / "c", speech, None, (0.0,), snr_over="middle")


def test_cli_layout_preset_and_help(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["sseu", "build", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "16 kHz" not in text and "44.1 kHz" in text and "--layout" in text
    assert "--snr-over" in text
    speech = speech_manifest(tmp_path, NAMES[:1])
    code = main(["sseu", "build", "--preset", "sseu-bench", "--snrs", "0", "--sr", str(SR),
                 "--speech", str(speech), "--out", str(tmp_path / "set"), "--json"])  # fmt: skip
    assert code == 0
    rows = read(tmp_path / "set" / "manifest.csv")
    assert len(rows) == 4 and {r["layout"] for r in rows} == {"per-background"}
    code = main(["sseu", "build", "--layout", "per-speech", "--snr-over", "clip", "--snrs", "0",
                 "--sr", str(SR), "--speech", str(speech), "--out", str(tmp_path / "ps")])  # fmt: skip
    assert code == 0
    assert read(tmp_path / "ps" / "manifest.csv")[0]["snr_over"] == "clip"


def test_build_refuses_a_preset_without_a_set_and_an_onset_range_it_would_ignore(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    speech = speech_manifest(tmp_path, NAMES[:1])
    base = ["sseu", "build", "--snrs", "0", "--sr", str(SR), "--speech", str(speech)]
    assert main([*base, "--preset", "concept-tokens", "--out", str(tmp_path / "a")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "preset concept-tokens" in err[0] and "sseu-bench" in err[0]
    assert not (tmp_path / "a").exists()
    code = main([*base, "--layout", "per-background", "--onset-range", "0.2,0.4",
                 "--out", str(tmp_path / "b")])  # fmt: skip
    assert code != 0 and "--onset-range" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
    code = main([*base, "--layout", "per-speech", "--onset-range", "0.2,0.4",
                 "--out", str(tmp_path / "c")])  # fmt: skip
    assert code == 0
    onset = float(read(tmp_path / "c" / "manifest.csv")[0]["onset_s"])
    assert 0.2 <= onset <= 0.4
