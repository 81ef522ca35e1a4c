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
            assert row[f"{col}_ci_low"] == pytest.approx(v.mean() - half, abs=1e-5)
            assert row[f"{col}_ci_high"] == pytest.approx(v.mean() + half, abs=1e-5)
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
