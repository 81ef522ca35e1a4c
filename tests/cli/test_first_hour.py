"""The first hour (issue 24): the traps a newcomer met, each one a test that failed before."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cuelab.cli import main
from cuelab.core.runs import load_config, read_record
from tests.cli.conftest import eval_args
from tests.conftest import REPO
from tests.core.models.conftest import clap_dir, omni_dir, qwen2_audio_dir  # noqa: F401


def _headless_env(**more: str) -> dict[str, str]:
    """The environment of a server login: no X, no Wayland, no Qt platform chosen."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}  # fmt: skip
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(more)
    return env


def _cuelab(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cuelab", *args], capture_output=True, text=True, env=env,
        timeout=timeout, cwd=REPO,
    )  # fmt: skip


# --- trap 1: no display -------------------------------------------------------------------


@pytest.mark.parametrize("argv", [[], ["gui", "--screenshot", "{tmp}/x.png"]])
def test_no_display_is_one_line_and_exit_1(argv: list[str], tmp_path: Path) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    proc = _cuelab(*args, env=_headless_env())
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, proc.stderr
    assert len(err) == 1 and err[0].startswith("cuelab: error: no display")
    assert "xvfb-run" in err[0] and "scripts/run.sh demo" in err[0]
    assert not (tmp_path / "x.png").exists()


# --- trap 4: a failed load does not poison its run folder ---------------------------------


def test_a_run_without_rows_is_replaced_with_a_line(
    manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    broken = eval_args(manifest, out)
    broken[broken.index("reference")] = f"qwen2-audio:{tmp_path / 'no-such-model'}"
    assert main(broken) == 1
    assert read_record(out)["status"] == "failed"
    capsys.readouterr()
    assert main(eval_args(manifest, out)) == 0  # the corrected command, no --resume
    err = capsys.readouterr().err
    assert "note: replaced the run in" in err and "no row" in err
    record = read_record(out)
    assert record["status"] == "complete" and list(record["models"]) == ["reference"]
    assert record["replaced"]["status"] == "failed"
    # a run with rows keeps today's protection, with or without --resume
    assert main(eval_args(manifest, out, "--seeds", "3")) == 1
    assert "already holds a run" in capsys.readouterr().err
    assert main(eval_args(manifest, out, "--bootstrap", "30", "--resume")) == 1
    assert "configuration differs in 'bootstrap'" in capsys.readouterr().err


def test_resume_of_an_empty_run_with_another_configuration_replaces_it(
    manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    broken = eval_args(manifest, out)
    broken[broken.index("reference")] = f"qwen2.5-omni:{tmp_path / 'missing'}"
    assert main(broken) == 1
    capsys.readouterr()
    assert main(eval_args(manifest, out, "--resume")) == 0
    assert "replaced the run" in capsys.readouterr().err


# --- trap 5: resume and print the configuration from the run folder ------------------------


def test_resume_needs_only_the_run_folder(
    finished: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["eval", "--out", str(finished), "--resume", "--no-plots"]) == 0
    err = capsys.readouterr().err
    assert "0 rows written" in err and "kept from before" in err
    assert len(read_record(finished)["sessions"]) == 2


def test_print_config_writes_the_runs_toml(
    finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["eval", "--out", str(finished), "--print-config"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# cuelab run configuration")
    path = tmp_path / "again.toml"
    path.write_text(text, encoding="utf-8")
    again = load_config(path)
    recorded = read_record(finished)["config"]
    assert again.to_json() == recorded
    # and the file runs: a fresh folder gets the same predictions
    assert main(["eval", str(path), "--out", str(tmp_path / "again"), "--no-plots"]) == 0
    same = (tmp_path / "again" / "predictions.csv").read_text()
    assert same == (finished / "predictions.csv").read_text()


# --- trap 10: help that disagrees with the code ----------------------------------------------


def test_eval_help_lists_every_condition_kind(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cuelab.cli.listing import CONDITION_FORMS
    from cuelab.core.cues import interventions as iv

    monkeypatch.setenv("COLUMNS", "2000")  # argparse would wrap "corrupt-change:P" at its hyphen
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    kinds = {*iv._SIMPLE, *iv.CORRUPT_KINDS, "ablate", "invert"}
    assert {form.split(":")[0] for form in CONDITION_FORMS} == kinds
    for form in CONDITION_FORMS:
        assert form in text, form
        iv.parse_condition(form.replace(":P", ":0.3").replace(":CONCEPT", ":PITCH"))


# --- trap 12: --limit keeps the manifest's label set ---------------------------------------


def test_limit_keeps_the_whole_label_set(manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "few"
    assert main(eval_args(manifest, out, "--limit", "2")) == 0  # angry and happy only
    record = read_record(out)
    assert record["labels"] == ["angry", "happy", "neutral", "sad"]
    header = (out / "predictions.csv").read_text().splitlines()[0].split(",")
    assert [c for c in header if c.startswith("p_")] == ["p_angry", "p_happy", "p_neutral", "p_sad"]


# --- discoverability: cuelab list and cuelab doctor -----------------------------------------


@pytest.mark.parametrize("what", ["families", "conditions", "tasks", "matchers"])
def test_list_prints_one_line_each(what: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", what]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert main(["list", what, "--json"]) == 0
    items = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert len(items) == len(lines) >= 2
    assert all(item["description"] and item["name"] in line for item, line in zip(items, lines))
    names = [i["name"] for i in items]
    if what == "families":
        from cuelab.cli.listing import FAMILY_NOTES
        from cuelab.core.models.isolated.recipes import RECIPES
        from cuelab.core.models.registry import families

        assert names == families() and set(FAMILY_NOTES) | set(RECIPES) == set(families())
        assert all(r.summary for r in RECIPES.values())  # each isolated family's line
    if what == "tasks":
        from cuelab.core.tasks.prompts import TASKS

        assert set(TASKS) | {"asr", "asc", "at", "joint", "cot"} == set(names)


def test_list_presets_reads_the_presets_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assets = tmp_path / "assets"
    shutil.copytree(REPO / "assets" / "prompts", assets / "prompts")
    monkeypatch.setenv("CUELAB_ASSETS", str(assets))
    assert main(["list", "presets", "--json"]) == 0
    assert capsys.readouterr().out == ""
    (assets / "presets").mkdir()
    (assets / "presets" / "paper-ser.toml").write_text(
        "# The SER paper's protocol\nconditions = ['audio-only']\n", encoding="utf-8"
    )
    (assets / "presets" / "quick.toml").write_text("seeds = [0]\n", encoding="utf-8")
    assert main(["list", "presets"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:2] == ["paper-ser", "The"] and lines[1].startswith("quick")


def _doctor(env: dict[str, str], wrapper: tuple[str, ...] = ()) -> dict[str, dict[str, str]]:
    proc = subprocess.run(
        [*wrapper, sys.executable, "-m", "cuelab", "doctor", "--json"],
        capture_output=True, text=True, env=env, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    checks = [json.loads(x) for x in proc.stdout.strip().splitlines()]
    return {c["check"]: c for c in checks}


def test_doctor_without_a_display(tmp_path: Path) -> None:
    checks = _doctor(_headless_env(CUELAB_ENVS=str(tmp_path / "envs")))
    assert set(checks) == {"python", "torch", "bitsandbytes", "display", "xvfb", "espeak-ng",
                           "hf-cache", "environments", "disk"}  # fmt: skip
    assert checks["python"]["state"] == "ok"
    assert checks["display"]["state"] == "warn" and "xvfb-run" in checks["display"]["todo"]
    assert checks["torch"]["found"].startswith("torch ")
    assert all(c["state"] in ("ok", "warn", "fail") for c in checks.values())
    assert all(c["todo"] for c in checks.values() if c["state"] != "ok")


def test_doctor_under_xvfb_sees_the_display(tmp_path: Path) -> None:
    checks = _doctor(_headless_env(CUELAB_ENVS=str(tmp_path / "envs")), ("xvfb-run", "-a"))
    assert checks["display"]["state"] == "ok", checks["display"]
    assert checks["xvfb"]["state"] == "ok"


def test_doctor_plain_text(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("ok    python")
    assert any(line.startswith(("ok    display", "warn  display")) for line in out)


# --- trap 2: the wrong family for a folder ---------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "asked", "found"),
    [
        ("qwen2_audio_dir", "qwen2.5-omni", "qwen2-audio"),
        ("clap_dir", "qwen2-audio", "clap"),
        ("omni_dir", "audio-flamingo-3", "qwen2.5-omni"),
    ],
)
def test_wrong_family_names_the_right_spec(
    fixture: str, asked: str, found: str, request: pytest.FixtureRequest, capsys, tmp_path: Path
) -> None:
    folder = request.getfixturevalue(fixture)
    capsys.readouterr()  # building the tiny checkpoint prints progress
    code = main(["predict", str(REPO / "assets" / "demo" / "spk01_f_angry_01.flac"),
                 "--model", f"{asked}:{folder}", "--tokens", "none"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and len(err[0]) < 400, err
    assert err[0].startswith("cuelab: error:") and f"is a {found} checkpoint" in err[0]
    assert f"--model {found}:{folder}" in err[0]


def test_a_folder_of_an_unknown_model_type_is_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "whisper"}', encoding="utf-8")
    code = main(["predict", str(REPO / "assets" / "demo" / "spk01_f_angry_01.flac"),
                 "--model", f"qwen2-audio:{tmp_path}", "--tokens", "none"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "model_type 'whisper'" in err[0]
    assert "no CueLab family loads" in err[0]


# --- trap 7: progress without a terminal -----------------------------------------------------


def test_progress_lines_when_stderr_is_not_a_terminal(manifest: Path, tmp_path: Path) -> None:
    env = _headless_env(CUELAB_PROGRESS_SECONDS="0")
    proc = _cuelab(*eval_args(manifest, tmp_path / "run", "--limit", "4"), env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.startswith("eval: ")]
    scoring = [x for x in lines if x.startswith("eval: scoring ")]
    assert scoring[0].startswith("eval: scoring 0/4 (0%)")
    assert scoring[-1].startswith("eval: scoring 4/4 (100%)") and len(scoring) == 5
    assert "\r" not in proc.stderr
    # at the default interval (30 s) a run this short prints no progress line
    quiet = _cuelab(*eval_args(manifest, tmp_path / "r2", "--limit", "4"), env=_headless_env(),
                    timeout=600)  # fmt: skip
    assert quiet.returncode == 0 and "eval: " not in quiet.stderr


def test_plain_progress_prints_every_interval(capsys: pytest.CaptureFixture[str]) -> None:
    import time

    from cuelab.cli.common import plain_progress
    from cuelab.core.jobs import JobControl

    ctl = JobControl(on_progress=plain_progress("eval", 0.2))
    ctl.start(3, "scoring")
    ctl.advance(1)  # before the interval: silent
    time.sleep(0.25)
    ctl.advance(1)  # due
    ctl.advance(1)  # the end of a stage that printed
    lines = capsys.readouterr().err.splitlines()
    assert [x.split()[:3] for x in lines] == [
        ["eval:", "scoring", "2/3"],
        ["eval:", "scoring", "3/3"],
    ]
    assert "eta" in lines[0] and "eta" not in lines[1]


def test_setup_pip_steps_are_not_silent() -> None:
    script = (REPO / "scripts" / "run.sh").read_text(encoding="utf-8")
    lines = script.splitlines()
    installs = [line for line in lines if "pip" in line and " install " in line]
    assert installs, "run.sh installs with pip"
    pip_def = next(line for line in lines if line.strip().startswith("local pip="))
    assert " -q" not in pip_def  # pip's own progress (Collecting..., Downloading...) is shown
    # the install command the script builds must be one pip accepts: run it for real on an
    # already-installed package (an option pip does not take fails with a usage error)
    install_def = next(line for line in lines if line.strip().startswith("local install="))
    assert "--progress-bar" in install_def
    snippet = "\n".join(
        [
            f'VENV="{Path(sys.prefix)}"',
            "bar=off",
            pip_def.strip().removeprefix("local "),
            install_def.strip().removeprefix("local "),
            '"${install[@]}" --no-index --no-deps pip',
        ]
    )
    done = subprocess.run(["bash", "-c", snippet], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "already satisfied" in done.stdout


# --- trap 9: folder imports without speakers -------------------------------------------------


@pytest.fixture(scope="module")
def folder_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo clips in class folders, imported without a speaker pattern."""
    root = tmp_path_factory.mktemp("folders") / "clips"
    for lab in ("angry", "happy", "sad"):
        (root / lab).mkdir(parents=True)
        for spk in ("spk01_f", "spk04_m"):
            src = REPO / "assets" / "demo" / f"{spk}_{lab}_01.flac"
            (root / lab / src.name).symlink_to(src)
    out = root.parent / "manifest.csv"
    assert main(["import", "folders", str(root), "-o", str(out)]) == 0
    return out


def test_a_manifest_without_speakers_says_so_in_the_summary(
    folder_manifest: Path, tmp_path: Path
) -> None:
    import csv

    out = tmp_path / "run"
    assert main(eval_args(folder_manifest, out)) == 0
    with open(out / "summary.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(r["ci_method"] == "clip-bootstrap" for r in rows)
    assert all(r["n_speakers"] == "0" and "no speaker column" in r["ci_note"] for r in rows)


def test_train_reference_on_a_folder_import_explains_split(
    folder_manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["train-reference", str(folder_manifest), "-o", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no 'split' column" in err[0] and "--split ''" in err[0]
    assert main(["train-reference", str(folder_manifest), "-o", str(tmp_path / "m"),
                 "--split", "", "--workers", "1"]) == 0  # fmt: skip


# --- trap 10: help and docs that disagree with the code --------------------------------------

DEMO_CLIP = REPO / "assets" / "demo" / "spk01_f_angry_01.flac"


def test_predict_takes_the_gender_from_the_manifest_beside_the_clip(capsys) -> None:
    def predict(*more: str) -> dict:
        capsys.readouterr()
        assert main(["predict", str(DEMO_CLIP), "--model", "reference", "--json", *more]) == 0
        return json.loads(capsys.readouterr().out)

    found = predict()  # assets/demo/manifest.csv says spk01_f is f, as the window uses
    assert found["gender"] == "f" and found["edges"]["PITCH"] == "f"
    assert found["gender_from"] == str(REPO / "assets" / "demo" / "manifest.csv")
    assert found["probs"] == predict("--gender", "f")["probs"]
    assert predict("--gender", "m")["edges"]["PITCH"] == "m"  # a flag still wins


def test_predict_with_a_manifest_that_does_not_list_the_clip(tmp_path: Path, capsys) -> None:
    other = tmp_path / "m.csv"
    other.write_text("path,label,gender\nnothing.wav,angry,f\n", encoding="utf-8")
    assert main(["predict", str(DEMO_CLIP), "--model", "reference", "--manifest", str(other)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not list" in err[0]


def test_sets_folder_is_git_ignored() -> None:
    proc = subprocess.run(["git", "check-ignore", "-q", "sets/demo-sseu/manifest.csv"], cwd=REPO)
    assert proc.returncode == 0  # where the README's `cuelab sseu build --out sets/...` writes


def test_a_missing_text_model_in_a_worker_is_not_a_network_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cuelab.core.models.isolated.client import WORKER_DIR

    monkeypatch.syspath_prepend(str(WORKER_DIR))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as the client starts every worker
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty"))
    import wk_common

    with pytest.raises(RuntimeError) as info:
        wk_common.load_tokenizer("gpt2", "ms-clap")
    message = str(info.value)
    assert "ms-clap needs the text model 'gpt2'" in message and "hf download gpt2" in message
    assert "not a network fault" in message and "connect" not in message.lower()


def test_wrong_family_for_a_cached_hub_id(
    qwen2_audio_dir: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache = tmp_path / "hub"
    snapshot = cache / "models--acme--tiny-qwen2-audio" / "snapshots" / ("a" * 40)
    shutil.copytree(qwen2_audio_dir, snapshot)
    (cache / "models--acme--tiny-qwen2-audio" / "refs").mkdir()
    (cache / "models--acme--tiny-qwen2-audio" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    capsys.readouterr()
    code = main(["predict", str(REPO / "assets" / "demo" / "spk01_f_angry_01.flac"),
                 "--model", "qwen2.5-omni:acme/tiny-qwen2-audio", "--tokens", "none"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert "model acme/tiny-qwen2-audio is a qwen2-audio checkpoint" in err[0]
    assert "use --model qwen2-audio:acme/tiny-qwen2-audio" in err[0]
