"""Batch runner: provenance, resume after cancel / torn line / kill -9, shards, config."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cuelab.cli import build_parser, main
from cuelab.cli.eval import config_from_args
from cuelab.core.errors import Cancelled
from cuelab.core.jobs import JobControl, ProgressInfo
from cuelab.core.runs import (
    RunConfig,
    RunConfigError,
    config_from_mapping,
    load_config,
    merge_runs,
    parse_shard,
    read_record,
    run_eval,
)
from tests.conftest import REPO

DEMO = REPO / "assets" / "demo"
SPEAKERS = ("spk01_f", "spk03_f", "spk04_m", "spk06_m")
LABELS = ("angry", "happy", "neutral", "sad")
PROTOCOL = "audio-only,correct,shuffle,conflict,corrupt:0.2,corrupt:0.6,corrupt:1"


def make_manifest(folder: Path, copies: int = 1, label_map: dict[str, str] | None = None) -> Path:
    """16 demo clips (4 speakers x 4 emotions, symbolic links) in a manifest with a ``note``.

    ``copies`` > 1 links the same clips again under new names, for long runs whose
    features are all cache hits.
    """
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["path,label,speaker,gender,note"]
    for k in range(copies):
        for spk in SPEAKERS:
            for lab in LABELS:
                src = DEMO / f"{spk}_{lab}_01.flac"
                path = src.name if k == 0 else f"c{k}_{src.name}"
                (folder / path).symlink_to(src)
                shown = (label_map or {}).get(lab, lab)
                lines.append(f"{path},{shown},{spk},{spk[-1]},n{k}")
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "manifest.csv"


def config(manifest: Path, out: Path, **kw: object) -> RunConfig:
    data: dict[str, object] = {
        "manifest": str(manifest), "models": ["reference"], "conditions": PROTOCOL,
        "seeds": [0, 1], "out": str(out), "bootstrap": 200, "workers": 1,
    }  # fmt: skip
    data.update(kw)
    return config_from_mapping(data, base_dir=None)


def rows(folder: Path) -> list[list[str]]:
    with open(folder / "predictions.csv", encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_manifest(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def full_run(manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "full"
    run_eval(config(manifest, out))
    return out


def test_full_run_provenance_and_rows(full_run: Path) -> None:
    record = read_record(full_run)
    assert record["status"] == "complete" and record["finished"]
    ident = record["identity"]
    for key in ("manifest_sha256", "norms_sha256", "prompt_digest", "feature_config"):
        assert isinstance(ident[key], str) and len(ident[key]) >= 16
    session = record["sessions"][0]
    assert {"started", "finished", "host", "python", "versions"} <= set(session)
    assert set(session["versions"]) >= {"cuelab", "torch", "transformers", "opensmile", "numpy"}
    assert record["models"]["reference"]["weights_sha256"]
    table = rows(full_run)
    header = table[0]
    assert header[:7] == ["utt_id", "speaker", "label", "model", "condition", "seed", "prediction"]
    assert [f"p_{lab}" for lab in LABELS] == header[7:11]
    assert header[11:] == ["scoring", "raw_output", "finish_reason", "tokens", "gender", "note"]
    assert {r[header.index("scoring")] for r in table[1:]} == {"classifier"}
    # 16 clips x (3 seed-free conditions + 4 random conditions x 2 seeds)
    assert len(table) - 1 == 16 * (3 + 4 * 2)
    by_cond = {(r[4], r[5]) for r in table[1:]}
    assert ("shuffle", "1") in by_cond and ("correct", "") in by_cond
    audio_only = [r for r in table[1:] if r[4] == "audio-only"]
    assert all(r[header.index("tokens")] == "" for r in audio_only)
    correct = [r for r in table[1:] if r[4] == "correct"]
    assert all(r[header.index("tokens")].startswith("ENERGY=") for r in correct)


def test_oracle_scores_one_with_a_degenerate_interval(manifest: Path, tmp_path: Path) -> None:
    run_eval(config(manifest, tmp_path / "o", models=["oracle:-"], conditions="audio-only,shuffle"))
    assert not (tmp_path / "o" / "summary.csv").exists()  # the report is a separate step
    assert main(["report", str(tmp_path / "o"), "--no-plots"]) == 0
    with open(tmp_path / "o" / "summary.csv", newline="") as fh:
        summary = list(csv.DictReader(fh))
    assert summary and all(
        (r["uar"], r["uar_ci_low"], r["uar_ci_high"], r["wa"]) == ("1", "1", "1", "1")
        for r in summary
    )


def cancel_after(k: int) -> JobControl:
    box: list[JobControl] = []

    def on_progress(info: ProgressInfo) -> None:
        if info.message != "features" and info.done >= k:
            box[0].cancel()

    box.append(JobControl(on_progress=on_progress))
    return box[0]


def test_resume_after_cancel_gives_the_same_rows(
    manifest: Path, full_run: Path, tmp_path: Path
) -> None:
    cfg = config(manifest, tmp_path / "c")
    with pytest.raises(Cancelled):
        run_eval(cfg, control=cancel_after(5))
    assert read_record(tmp_path / "c")["status"] == "cancelled"
    assert len(rows(tmp_path / "c")) - 1 == 5 * 11
    outcome = run_eval(cfg, resume=True)
    assert outcome.rows_kept == 55 and outcome.rows_written == 121
    assert sorted(rows(tmp_path / "c")) == sorted(rows(full_run))
    record = read_record(tmp_path / "c")
    assert [s["status"] for s in record["sessions"]] == ["cancelled", "complete"]


def test_a_run_folder_from_another_checkout_resumes(
    manifest: Path, full_run: Path, tmp_path: Path
) -> None:
    """The bundled reference model is its weights' hash; where a checkout keeps it is not."""
    cfg = config(manifest, tmp_path / "moved")
    with pytest.raises(Cancelled):
        run_eval(cfg, control=cancel_after(5))
    run_json = tmp_path / "moved" / "run.json"
    original = json.loads(run_json.read_text(encoding="utf-8"))

    def recorded(**model: str) -> None:
        record = json.loads(json.dumps(original))
        record["models"]["reference"].update(model)
        run_json.write_text(json.dumps(record), encoding="utf-8")

    recorded(weights_sha256="0" * 64)  # other weights: refused
    with pytest.raises(RunConfigError, match="differs in 'weights_sha256'"):
        run_eval(cfg, resume=True)
    recorded(location="/elsewhere/assets/models/demo-reference")  # another checkout: resumes
    run_eval(cfg, resume=True)
    assert sorted(rows(tmp_path / "moved")) == sorted(rows(full_run))


def test_resume_after_a_torn_last_line(manifest: Path, full_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "t"
    out.mkdir()
    data = (full_run / "predictions.csv").read_bytes()
    cut = data.index(b"\n", len(data) // 3) + 25  # 25 bytes into a record
    (out / "predictions.csv").write_bytes(data[:cut])
    record = read_record(full_run)
    record["status"] = "running"
    (out / "run.json").write_text(json.dumps(record))
    run_eval(config(manifest, out), resume=True)
    assert sorted(rows(out)) == sorted(rows(full_run))
    assert (out / "predictions.csv").read_bytes().count(b"\n") == data.count(b"\n")


def test_fresh_run_refuses_an_existing_folder(manifest: Path, full_run: Path) -> None:
    from cuelab.cli.remedies import cli_text
    from cuelab.core import errors

    with pytest.raises(RunConfigError, match="already holds a run") as info:
        run_eval(config(manifest, full_run))
    # the core names the fix as a remedy; the command line words it as its flag
    assert info.value.remedy == errors.RESUME and "--" not in str(info.value)
    assert "add --resume" in cli_text(info.value)


def test_resume_with_another_configuration_is_refused(
    manifest: Path, full_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(RunConfigError, match="'seeds'"):
        run_eval(config(manifest, full_run, seeds=[0, 1, 2]), resume=True)
    code = main([
        "eval", "--manifest", str(manifest), "--model", "reference", "--conditions", PROTOCOL,
        "--seeds", "0,1", "--bootstrap", "500", "--out", str(full_run), "--resume",
    ])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "'bootstrap'" in err[0] and "resume" in err[0]


def test_shards_merge_to_the_unsharded_run(manifest: Path, full_run: Path, tmp_path: Path) -> None:
    parts = []
    for i in (1, 2):
        cfg = config(manifest, tmp_path / f"s{i}", shard=f"{i}/2")
        outcome = run_eval(cfg)
        assert 0 < outcome.clips < 16
        parts.append(tmp_path / f"s{i}")
    assert not {r[0] for r in rows(parts[0])[1:]} & {r[0] for r in rows(parts[1])[1:]}
    assert main(["merge", *map(str, parts), "-o", str(tmp_path / "m"), "--no-plots"]) == 0
    assert main(["report", str(full_run), "--no-plots"]) == 0
    merged = rows(tmp_path / "m")
    assert merged[0] == rows(full_run)[0]
    assert sorted(merged[1:]) == sorted(rows(full_run)[1:])
    for name in ("summary.csv", "tests.csv", "confusion.csv", "spearman.csv"):
        assert (tmp_path / "m" / name).read_text() == (full_run / name).read_text(), name
    assert read_record(tmp_path / "m")["identity"] == read_record(full_run)["identity"]
    with pytest.raises(RunConfigError, match="given twice"):
        merge_runs([parts[0], parts[0]], tmp_path / "m2")
    other = tmp_path / "other"
    run_eval(config(manifest, other, shard="2/2", seeds=[0]))
    with pytest.raises(RunConfigError, match="'seeds'"):
        merge_runs([parts[0], other], tmp_path / "m3")
    # Shards scored with different weights are not one run; another location is.
    record = read_record(parts[1])
    record["models"]["reference"]["location"] = "/elsewhere/demo-reference"
    (parts[1] / "run.json").write_text(json.dumps(record), encoding="utf-8")
    merge_runs(parts, tmp_path / "m4")
    record["models"]["reference"]["weights_sha256"] = "0" * 64
    (parts[1] / "run.json").write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(RunConfigError, match="model reference differs in 'weights_sha256'"):
        merge_runs(parts, tmp_path / "m5")


def test_shard_parsing() -> None:
    assert str(parse_shard("2/5")) == "2/5"
    for bad in ("0/2", "3/2", "x", "1-2"):
        with pytest.raises(RunConfigError):
            parse_shard(bad)
    shards = [parse_shard(f"{i}/3") for i in (1, 2, 3)]
    ids = [f"utt{i}" for i in range(300)]
    owners = [sum(s.holds(u) for s in shards) for u in ids]
    assert owners == [1] * 300


def test_toml_configuration_equals_flags(manifest: Path, tmp_path: Path) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text(
        f'manifest = "{manifest}"\nmodels = ["reference", "oracle:-"]\n'
        'conditions = ["audio-only", "correct", "shuffle"]\ncorrupt_grid = [0.2, 0.6]\n'
        'seeds = [0, 1, 2]\nbootstrap = 300\nout = "runs/x"\nlimit = 8\nsplit = ""\n',
        encoding="utf-8",
    )
    flags = [
        "eval", "--manifest", str(manifest), "--model", "reference", "--model", "oracle:-",
        "--conditions", "audio-only,correct,shuffle,corrupt:0.2,corrupt:0.6",
        "--seeds", "0,1,2", "--bootstrap", "300", "--out", str(tmp_path / "runs" / "x"),
        "--limit", "8", "--split", "",
    ]  # fmt: skip
    from_flags = config_from_args(build_parser().parse_args(flags))
    assert load_config(toml) == from_flags
    overridden = config_from_args(build_parser().parse_args(["eval", str(toml), "--shard", "1/2"]))
    assert str(overridden.shard) == "1/2" and overridden.models == from_flags.models
    toml.write_text(f'manifest = "{manifest}"\nmodel = ["reference"]\n', encoding="utf-8")
    with pytest.raises(RunConfigError, match="did you mean 'models'"):
        load_config(toml)


def test_kill_9_then_resume(tmp_path: Path) -> None:
    manifest = make_manifest(tmp_path / "data", copies=40)  # 640 clips, cached features
    args = [
        "eval", "--manifest", str(manifest), "--model", "reference",
        "--conditions", "audio-only,correct", "--workers", "1", "--no-plots",
    ]  # fmt: skip
    killed = tmp_path / "killed"
    preds = killed / "predictions.csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cuelab", *args, "--out", str(killed)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if preds.exists() and preds.stat().st_size > 40_000:
                break
            time.sleep(0.002)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert read_record(killed)["status"] == "running"
    assert len(rows(killed)) - 1 < 640 * 2
    assert main([*args, "--out", str(killed), "--resume"]) == 0
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    assert sorted(rows(killed)) == sorted(rows(tmp_path / "whole"))
    assert read_record(killed)["status"] == "complete"
