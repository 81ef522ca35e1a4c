"""``cuelab sweep``: one clip and a manifest, with the reference model on the demo clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cuelab.cli import main
from tests.conftest import REPO
from tests.core.runs.test_emotion_runs import make_manifest

DEMO = REPO / "assets" / "demo"
LABELS = ["angry", "happy", "neutral", "sad"]


def test_sweep_one_clip_over_pitch(tmp_path: Path) -> None:
    clip = DEMO / "spk04_m_neutral_02.flac"
    args = ["sweep", str(clip), "--model", "reference", "--edit", "pitch", "--from", "-6st",
            "--to", "+6st", "--steps", "13", "--labels", ",".join(LABELS), "-o", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    df = pd.read_csv(tmp_path / "sweep.csv", keep_default_na=False)
    assert list(df["amount"]) == list(range(-6, 7))
    assert df["edit"].iloc[0] == "pitch=-6st" and df["edit"].iloc[-1] == "pitch=+6st"
    probs = df[[f"p_{lab}" for lab in LABELS]].to_numpy(float)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    # the PITCH concept follows the edited audio's F0
    pitch = df["score_PITCH"].to_numpy(float)
    assert stats.spearmanr(df["amount"], pitch).statistic > 0.9
    assert pitch[-1] - pitch[0] > 0.5
    assert (tmp_path / "sweep.png").stat().st_size > 5000


def test_sweep_manifest_mean_curve_with_ci(tmp_path: Path) -> None:
    manifest = make_manifest(tmp_path / "data")
    out = tmp_path / "out"
    args = ["sweep", "--manifest", str(manifest), "--limit", "5", "--model", "reference",
            "--edit", "gain", "--from", "-12dB", "--to", "+6dB", "--steps", "4", "-o", str(out),
            "--labels", ",".join(LABELS), "--no-plot"]  # fmt: skip
    assert main(args) == 0
    points = pd.read_csv(out / "sweep.csv", keep_default_na=False)
    assert len(points) == 5 * 4
    mean = pd.read_csv(out / "sweep_mean.csv")
    assert list(mean["amount"]) == [-12, -6, 0, 6] and set(mean["n"]) == {5}
    for _, row in mean.iterrows():
        at = points[points["amount"] == row["amount"]]
        for col in ["p_angry", "score_ENERGY"]:
            v = at[col].to_numpy(float)
            half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
            assert row[f"{col}_mean"] == pytest.approx(v.mean(), abs=1e-5)
            low, high = v.mean() - half, v.mean() + half
            if col.startswith("p_"):  # a probability's interval is clipped to [0, 1]
                low, high = max(low, 0.0), min(high, 1.0)
            assert row[f"{col}_ci_low"] == pytest.approx(low, abs=1e-5)
            assert row[f"{col}_ci_high"] == pytest.approx(high, abs=1e-5)
    # gain raises the ENERGY concept on every clip
    energy = mean["score_ENERGY_mean"].to_numpy(float)
    assert (np.diff(energy) > 0).all()


@pytest.mark.parametrize(
    ("more", "needle"),
    [
        (["--from", "-6dB", "--to", "+6st"], "sweep --from: edit 'pitch=-6dB': pitch takes 'st'"),
        (["--from", "-6st", "--to", "+6st", "--steps", "1"], "--steps must be between 2"),
        (["--from", "+2st", "--to", "+2st"], "the same amount"),
    ],
)
def test_sweep_bad_grid_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], more: list[str], needle: str
) -> None:
    clip = DEMO / "spk04_m_neutral_02.flac"
    code = main(["sweep", str(clip), "--model", "reference", "--edit", "pitch",
                 "-o", str(tmp_path), *more])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and needle in err and err.count("\n") == 1
    assert not (tmp_path / "sweep.csv").exists()


def test_mean_curve_interval_of_a_probability_stays_in_0_1() -> None:
    """Two clips at P=1.0 and one at P=0.0: the t-interval is clipped to what P can be."""
    from cuelab.core.cues.concepts import BINNED_CONCEPTS
    from cuelab.core.runs.sweep import SweepPoint, mean_curves

    scores = {c: 0.0 for c in BINNED_CONCEPTS}
    points = [
        SweepPoint(
            f"u{i}", 1.0, "tempo=1", {"a": p, "b": 1 - p}, "a", {**scores, "PITCH": 9 * p}, ""
        )
        for i, p in enumerate([1.0, 1.0, 0.0])
    ]
    header, rows = mean_curves(points, ["a", "b"])
    row = dict(zip(header, rows[0], strict=True))
    for lab in ("a", "b"):
        assert 0.0 <= float(row[f"p_{lab}_ci_low"]) <= float(row[f"p_{lab}_mean"])
        assert float(row[f"p_{lab}_mean"]) <= float(row[f"p_{lab}_ci_high"]) <= 1.0
    assert float(row["p_a_ci_low"]) == 0.0 and float(row["p_b_ci_high"]) == 1.0
    # a concept score is not a probability: its interval is the plain t-interval
    assert float(row["score_PITCH_ci_high"]) > 9.0 and float(row["score_PITCH_ci_low"]) < 0.0


def test_batch_sweep_skips_a_bad_clip_and_keeps_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import soundfile as sf

    x, sr = sf.read(DEMO / "spk04_m_neutral_02.flac")
    sf.write(tmp_path / "short.wav", x[:800], sr)  # 50 ms: too short to analyse
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "path,label,speaker,gender,split,transcript\n"
        f"{DEMO / 'spk04_m_neutral_02.flac'},neutral,spk04_m,m,test,\n"
        f"{tmp_path / 'short.wav'},sad,spk04_m,m,test,\n"
        f"{DEMO / 'spk01_f_sad_01.flac'},sad,spk01_f,f,test,\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    args = ["sweep", "--manifest", str(manifest), "--model", "reference", "--edit", "gain",
            "--from", "-6dB", "--to", "+6dB", "--steps", "3", "-o", str(out), "--no-plot"]  # fmt: skip
    assert main(args) == 0
    err = capsys.readouterr().err
    assert err.startswith("cuelab: warning: ") and "short: skipped" in err and "too short" in err
    assert set(pd.read_csv(out / "sweep_mean.csv")["n"]) == {2}
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    assert main([*args[:-2], str(tmp_path / "afile"), "--no-plot"]) == 1
    assert "exists and is not a folder" in capsys.readouterr().err


def test_an_engine_that_cannot_do_the_edit_fails_before_any_clip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = make_manifest(tmp_path / "data")
    out = tmp_path / "out"
    code = main(["sweep", "--manifest", str(manifest), "--limit", "2", "--model", "reference",
                 "--edit", "jitter", "--from", "0%", "--to", "4%", "--steps", "2",
                 "--engine", "praat", "-o", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("cuelab: error: the praat engine cannot do jitter")
    assert not out.exists()
