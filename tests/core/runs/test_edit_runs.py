"""Edit runs: the 2×2 cells in predictions.csv, channels.csv recomputed, resume, kill -9, shards."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon

from cuelab.cli import build_parser, main
from cuelab.cli.eval import config_from_args
from cuelab.core.errors import Cancelled
from cuelab.core.jobs import JobControl, ProgressInfo
from cuelab.core.runs import RunConfigError, load_config, read_record, run_eval
from tests.conftest import REPO
from tests.core.runs.test_emotion_runs import config, make_manifest, rows

LABELS = ("angry", "happy", "neutral", "sad")
EDITS = "pitch=+2st;tempo=1.2"


def edit_config(manifest: Path, out: Path, **kw: object):
    base: dict[str, object] = {"conditions": "audio-only,correct,shuffle", "seeds": [0],
                               "edits": EDITS}  # fmt: skip
    base.update(kw)
    return config(manifest, out, **base)


def cancel_in_scoring(k: int) -> JobControl:
    box: list[JobControl] = []

    def on_progress(info: ProgressInfo) -> None:
        if info.message not in ("features", "edits") and info.done >= k:
            box[0].cancel()

    box.append(JobControl(on_progress=on_progress))
    return box[0]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_manifest(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def edit_run(manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "edits"
    run_eval(edit_config(manifest, out))
    assert main(["report", str(out)]) == 0
    return out


def test_rows_carry_edit_and_token_source(edit_run: Path) -> None:
    df = pd.read_csv(edit_run / "predictions.csv", keep_default_na=False)
    assert {"edit", "audio_source", "token_source"} <= set(df.columns)
    assert set(df["edit"]) == {"none", "resynth", "pitch=+2st", "tempo=1.2"}
    assert set(df["token_source"]) == {"original", "edited"}
    assert set(df.loc[df["edit"] == "none", "token_source"]) == {"original"}
    # per clip: 3 originals, resynth x 2 token sources x 3, each edit x 3 cells x 3
    assert len(df) == 16 * (3 + 6 + 18)
    keys = ["utt_id", "model", "condition", "seed", "edit", "audio_source", "token_source"]
    assert not df.duplicated(keys).any()
    # the edited tokens are the edited audio's own: a +2 st shift moves PITCH on some clip
    correct = df[df["condition"] == "correct"].set_index(["utt_id", "edit", "audio_source",
                                                          "token_source"])["tokens"]  # fmt: skip
    moved = [u for u in set(df["utt_id"]) if correct[(u, "pitch=+2st", "edited", "edited")]
             != correct[(u, "none", "original", "original")]]  # fmt: skip
    assert moved
    # the token channel alone hears the resynth audio: same tokens as "both", other audio
    both = df[(df["edit"] == "pitch=+2st") & (df["token_source"] == "edited")]
    pivot = both.pivot_table(index=["utt_id", "condition"], columns="audio_source",
                             values="tokens", aggfunc="first")  # fmt: skip
    assert (pivot["resynth"] == pivot["edited"]).all()
    edits = pd.read_csv(edit_run / "edits.csv", keep_default_na=False)
    assert len(edits) == 16 * 3 and set(edits["edit"]) == {"resynth", "pitch=+2st", "tempo=1.2"}
    pitch = edits[edits["edit"] == "pitch=+2st"]["f0_shift_st"].astype(float)
    assert np.median(pitch) == pytest.approx(2.0, abs=0.3)


def test_channels_equal_a_recomputation_from_predictions(edit_run: Path) -> None:
    df = pd.read_csv(edit_run / "predictions.csv", keep_default_na=False, dtype={"seed": str})
    channels = pd.read_csv(edit_run / "channels.csv", keep_default_na=False, dtype={"seed": str})
    assert set(channels["cell"]) == {"original", "audio", "tokens", "both"}
    probs = [f"p_{lab}" for lab in LABELS]
    checked = 0
    for _, row in channels.iterrows():
        sel = df[(df["model"] == row["model"]) & (df["condition"] == row["condition"])
                 & (df["seed"] == row["seed"])]  # fmt: skip
        edit = "none" if row["cell"] == "original" else row["edit"]
        cell = sel[(sel["edit"] == edit) & (sel["audio_source"] == row["audio_source"])
                   & (sel["token_source"] == row["token_source"])].set_index("utt_id")  # fmt: skip
        control = sel[(sel["edit"] == "resynth") & (sel["audio_source"] == "edited")
                      & (sel["token_source"] == row["token_source"])].set_index("utt_id")  # fmt: skip
        shared = cell.index.intersection(control.index)
        assert len(shared) == row["n_compared"] == 16
        swap = (cell.loc[shared, "prediction"] != control.loc[shared, "prediction"]).mean()
        js = np.mean([
            jensenshannon(cell.loc[u, probs].to_numpy(float), control.loc[u, probs].to_numpy(float),
                          base=2)
            for u in shared
        ])  # fmt: skip
        assert float(row["swap_rate"]) == pytest.approx(swap, abs=1e-6)
        assert float(row["js_mean"]) == pytest.approx(js, abs=1e-5)
        recalls = [(cell.loc[cell["label"] == lab, "prediction"] == lab).mean() for lab in LABELS]
        assert float(row["uar"]) == pytest.approx(np.mean(recalls), abs=1e-6)
        checked += 1
    assert checked == len(channels) > 20
    # the audio channel of a pitch edit changes some answers of the reference model
    audio = channels[(channels["edit"] == "pitch=+2st") & (channels["cell"] == "audio")]
    assert audio["swap_rate"].astype(float).max() > 0
    assert (edit_run / "channels.png").stat().st_size > 1000


def test_summary_is_the_original_audio(manifest: Path, edit_run: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    run_eval(config(manifest, plain, conditions="audio-only,correct,shuffle", seeds=[0]))
    assert main(["report", str(plain), "--no-plots"]) == 0
    # reliance and calibration too read the original audio's rows only, not the edited ones
    for name in ("summary.csv", "tests.csv", "confusion.csv", "reliance.csv", "calibration.csv"):
        assert (plain / name).read_text() == (edit_run / name).read_text(), name


def test_a_limited_edit_run_keeps_the_whole_manifests_labels(
    manifest: Path, tmp_path: Path
) -> None:
    """--limit keeps clips, never labels: the same label set as the run without edits."""
    plain, edited = tmp_path / "plain", tmp_path / "edited"
    run_eval(config(manifest, plain, conditions="audio-only", seeds=[0], limit=2))
    run_eval(edit_config(manifest, edited, conditions="audio-only", limit=2, edits="gain=-6dB"))
    want = read_record(plain)["labels"]
    assert len(want) > 1
    assert read_record(edited)["labels"] == want


def test_resume_after_cancel_and_cached_edits(
    manifest: Path, edit_run: Path, tmp_path: Path
) -> None:
    cfg = edit_config(manifest, tmp_path / "c")
    cache = Path(os.environ["CUELAB_CACHE_DIR"]) / "edits"
    before = sorted(p.name for p in cache.rglob("*.wav"))
    assert len(before) >= 16 * 3
    with pytest.raises(Cancelled):
        run_eval(cfg, control=cancel_in_scoring(5))
    assert read_record(tmp_path / "c")["status"] == "cancelled"
    run_eval(cfg, resume=True)
    assert sorted(rows(tmp_path / "c")) == sorted(rows(edit_run))
    assert sorted(p.name for p in cache.rglob("*.wav")) == before  # nothing edited again
    assert (tmp_path / "c" / "edits.csv").read_text() == (edit_run / "edits.csv").read_text()


def test_a_row_with_an_edit_the_run_lacks_is_refused(edit_run: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(edit_run, copy)
    lines = (copy / "predictions.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    bad = lines[-1].replace(",tempo=1.2,", ",tempo=1.3,")
    assert bad != lines[-1]
    (copy / "predictions.csv").write_text("".join([*lines[:-1], bad]), encoding="utf-8")
    from cuelab.core.errors import CueLabError
    from cuelab.core.reports.build import build_report

    with pytest.raises(CueLabError, match=r"names an edit this run does not have \('tempo=1.3'\)"):
        build_report(copy, plots=False)


def test_shards_merge(manifest: Path, edit_run: Path, tmp_path: Path) -> None:
    parts = []
    for i in (1, 2):
        run_eval(edit_config(manifest, tmp_path / f"s{i}", shard=f"{i}/2"))
        parts.append(tmp_path / f"s{i}")
    assert main(["merge", *map(str, parts), "-o", str(tmp_path / "m")]) == 0
    assert sorted(rows(tmp_path / "m")[1:]) == sorted(rows(edit_run)[1:])
    assert (tmp_path / "m" / "channels.csv").read_text() == (edit_run / "channels.csv").read_text()


def test_toml_edits_equal_flags_and_bad_edits_refused(manifest: Path, tmp_path: Path) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text(
        f'manifest = "{manifest}"\nmodels = ["reference"]\nconditions = ["correct"]\n'
        'edits = ["pitch=+2st", "pitch=-2st", "tempo=1.2"]\nout = "x"\n',
        encoding="utf-8",
    )
    flags = ["eval", "--manifest", str(manifest), "--model", "reference", "--conditions",
             "correct", "--edits", "pitch=+2st;pitch=-2st;tempo=1.2", "--out",
             str(tmp_path / "x")]  # fmt: skip
    from_flags = config_from_args(build_parser().parse_args(flags))
    assert load_config(toml) == from_flags
    assert from_flags.edits == ("resynth", "pitch=+2st", "pitch=-2st", "tempo=1.2")
    with pytest.raises(RunConfigError, match="unknown edit 'pich'"):
        edit_config(manifest, tmp_path / "y", edits="pich=+2st")
    with pytest.raises(RunConfigError, match="praat engine cannot do jitter"):
        edit_config(manifest, tmp_path / "y", edits="jitter=2%", edit_engine="praat")


def test_kill_9_then_resume(tmp_path: Path) -> None:
    manifest = make_manifest(tmp_path / "data", copies=8)  # 128 clips, 16 distinct contents
    args = ["eval", "--manifest", str(manifest), "--model", "reference", "--conditions",
            "audio-only,correct", "--edits", "pitch=+2st", "--workers", "1", "--no-plots",
            "--bootstrap", "20"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0  # also fills the caches
    killed = tmp_path / "killed"
    preds = killed / "predictions.csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cuelab", *args, "--out", str(killed)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if preds.exists() and preds.stat().st_size > 30_000:
                break
            time.sleep(0.002)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with open(preds, encoding="utf-8", newline="") as fh:
        assert len(list(csv.reader(fh))) - 1 < 128 * (2 + 4 + 6)
    assert main([*args, "--out", str(killed), "--resume"]) == 0
    assert sorted(rows(killed)) == sorted(rows(tmp_path / "whole"))
    assert read_record(killed)["status"] == "complete"


def test_edits_given_but_empty_are_refused(manifest: Path, tmp_path: Path) -> None:
    """`--edits ""` or `--edits ";"` is a mistake, not a run without edits."""
    for empty in ("", " ; "):
        with pytest.raises(RunConfigError, match="'edits' holds no edit"):
            edit_config(manifest, tmp_path / "y", edits=empty)
    assert edit_config(manifest, tmp_path / "y", edits=[]).edits == ()  # TOML `edits = []`: none


def test_resuming_an_edit_run_without_edits_names_the_edits(
    manifest: Path, edit_run: Path, tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(edit_run, copy)
    plain = config(manifest, copy, conditions="audio-only,correct,shuffle", seeds=[0])
    with pytest.raises(RunConfigError, match=r"differs in 'edits' \(\[\"resynth\""):
        run_eval(plain, resume=True)


def test_an_edit_run_checks_every_annotators_sidecar_before_any_clip(tmp_path: Path) -> None:
    """Like a plain emotion run, an edit run reads every annotator's sidecar first (its
    report reads them all at the end): a bad one stops it before any clip is scored."""
    from cuelab.core.datasets.annotations import sidecar_path
    from cuelab.core.errors import ManifestError

    data = make_manifest(tmp_path / "data")
    bad = sidecar_path(data, "second")
    bad.write_text('path,label,start,end\nspk01_f_angry_01.flac,angry,2.0,1.0\n"', encoding="utf-8")
    for cfg in (edit_config(data, tmp_path / "edits"), config(data, tmp_path / "plain")):
        with pytest.raises(ManifestError, match=r"annotations\.second"):
            run_eval(cfg)
        assert not (Path(cfg.out) / "predictions.csv").exists()
