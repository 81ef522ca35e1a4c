"""MS-CLAP and LAION-CLAP for real: their environments, their packages, their release formats.

The environments are built by ``cuelab env create``'s code from the shipped
recipes (real venvs, real PyPI packages, the local CPU torch wheel), once per
recipe into a cache (``$CUELAB_TEST_ENVS``, default ``~/.cache/cuelab-test-envs``),
so later sessions only check them. Inside each environment
``build_clap_fixtures.py`` writes tiny random text models into a private
Hugging Face cache and a random-weight checkpoint in the release's format with
the package's own classes. The demo is then scored through the worker: emotion
(``cuelab predict``, ``cuelab eval``) and SSEU scenes and events.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import json
import math
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cuelab.cli import main
from cuelab.core.models.base import Clip, LoadOptions
from cuelab.core.models.isolated import envs
from cuelab.core.models.isolated.client import WORKER_DIR
from cuelab.core.models.isolated.recipes import get_recipe
from cuelab.core.models.registry import load_model
from cuelab.core.runs import config_from_mapping, run_eval
from cuelab.core.tasks.sseu.build import build_sseu
from tests.conftest import REPO

HERE = Path(__file__).resolve().parent
BUILDER = HERE / "build_clap_fixtures.py"
DEMO = REPO / "assets" / "demo"
LABELS = ("angry", "happy", "neutral", "sad")
WEIGHTS = {"ms-clap": "CLAP_weights_2023.pth", "laion-clap": "630k-audioset-best.pt"}
PACKAGE = {"ms-clap": "msclap", "laion-clap": "laion-clap"}
VERSION = {"ms-clap": "1.3.4", "laion-clap": "1.1.7"}  # the recipes' pins
RATE = {"ms-clap": 44100, "laion-clap": 48000}


def cache_root() -> Path:
    env = os.environ.get("CUELAB_TEST_ENVS")
    return Path(env) if env else Path.home() / ".cache" / "cuelab-test-envs"


@pytest.fixture(scope="module")
def env_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("envs")
    old = os.environ.get("CUELAB_ENVS")
    os.environ["CUELAB_ENVS"] = str(root)
    yield root
    if old is None:
        os.environ.pop("CUELAB_ENVS", None)
    else:
        os.environ["CUELAB_ENVS"] = old


def built(family: str, env_root: Path) -> tuple[Path, Path]:
    """``(environment, fixtures)``: built on first use, reused while the recipe is unchanged."""
    recipe = get_recipe(family)
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    folder = root / f"{family}-{recipe.digest()}"
    builder_hash = hashlib.sha256(BUILDER.read_bytes()).hexdigest()[:12]
    fixtures = folder.with_name(folder.name + f"-fixtures-{builder_hash}")
    with open(root / f"{family}.lock", "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # one builder per cache, across sessions
        if envs.adopt(family, folder).state != envs.READY:
            for stale in root.glob(f"{family}-*"):  # earlier recipes' builds: GBs each
                if stale.is_dir() and not stale.name.startswith(folder.name):
                    shutil.rmtree(stale)
            envs.create_env(family, folder)
        python = envs.env_python(folder)
        if not (fixtures / "done").exists():
            subprocess.run(
                [
                    str(python),
                    "-s",
                    str(BUILDER),
                    family,
                    str(fixtures / "hf"),
                    str(fixtures / "weights"),
                ],
                check=True,
                env={**os.environ, "CUELAB_WORKER_DIR": str(WORKER_DIR)},
                timeout=1800,
            )
            (fixtures / "done").write_text("ok", encoding="utf-8")
    assert envs.env_status(family).state == envs.READY
    return folder, fixtures


@pytest.fixture(scope="module", params=["ms-clap", "laion-clap"])
def family(request: pytest.FixtureRequest, env_root: Path) -> Iterator[tuple[str, Path]]:
    name = request.param
    _, fixtures = built(name, env_root)
    old = os.environ.get("HF_HOME")
    os.environ["HF_HOME"] = str(fixtures / "hf")  # the worker inherits it: text models offline
    yield name, fixtures / "weights"
    if old is None:
        os.environ.pop("HF_HOME", None)
    else:
        os.environ["HF_HOME"] = old


def test_env_list_and_check_report_the_built_environment(
    family: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    name, _ = family
    assert main(["env", "list", "--json"]) == 0
    listed = {d["family"]: d for d in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(listed) == {
        "ms-clap", "laion-clap", "mga-clap", "paraclap", "pengi", "ltu-as", "kimi-audio",
        "step-audio-2-mini",
    }  # fmt: skip
    assert listed[name]["state"] == "ready" and listed[name]["python"].startswith("3.")
    assert main(["env", "check", name, "--json"]) == 0
    checked = json.loads(capsys.readouterr().out)
    assert checked["packages"]["torch"].startswith("2.13.0")  # the CPU build, never replaced
    assert checked["packages"][PACKAGE[name]] == VERSION[name]


def test_a_pickle_checkpoint_needs_allow_pickle(
    family: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    name, weights = family
    audio = DEMO / "spk01_f_angry_01.flac"
    assert main(["predict", str(audio), "--model", f"{name}:{weights}", "--json"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--allow-pickle" in err


def test_predict_scores_the_demo_through_the_worker(
    family: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    name, weights = family
    audio = DEMO / "spk01_f_angry_01.flac"
    spec = f"{name}:{weights / WEIGHTS[name]}"
    code = main(["predict", str(audio), "--model", spec, "--allow-pickle", "--json", "--tokens",
                 "ENERGY=HIGH"])  # fmt: skip
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record["label"] in LABELS
    assert sum(record["probs"].values()) == pytest.approx(1.0)
    assert len(set(record["probs"].values())) == 4  # random weights still tell labels apart
    assert record["prompts"] == {lab: f"a person speaking in a {lab} voice" for lab in LABELS}
    assert "concept tokens not applicable" in record["tokens_note"]
    assert record["scoring"] == "similarity"


def test_worker_scores_equal_the_package_called_directly(family: tuple[str, Path]) -> None:
    """The same clip through the protocol and straight through the package's API, in the env."""
    name, weights = family
    model = load_model(f"{name}:{weights}", LoadOptions(allow_pickle=True))
    try:
        assert model.sample_rate == RATE[name]
        from cuelab.core.audio.io import load_audio

        audio, sr = load_audio(DEMO / "spk04_m_sad_01.flac", sr=model.sample_rate)
        texts = ["a person speaking in a sad voice", "the sound of rain"]
        clip = Clip(audio, sr)
        via_worker = model.similarities(clip, texts)[1]  # type: ignore[attr-defined]
        a = model.embed_audio(clip)  # type: ignore[attr-defined]
        t = model.embed_text(texts)  # type: ignore[attr-defined]
        described = model.describe()
    finally:
        model.unload()
    raw = audio.astype("<f4").tobytes()
    probe = HERE / "direct_scores.py"
    python = envs.env_python(envs.env_path(name))
    out = subprocess.run(
        [str(python), "-s", str(probe), name, str(weights), *texts],
        input=raw,
        capture_output=True,
        check=True,
        timeout=600,
        env={**os.environ, "CUELAB_WORKER_DIR": str(WORKER_DIR), "HF_HUB_OFFLINE": "1"},
    )
    direct = json.loads(out.stdout.decode().strip().splitlines()[-1])
    assert via_worker == pytest.approx(direct, abs=1e-5)
    cosines = t @ a / (np.linalg.norm(t, axis=1) * np.linalg.norm(a))
    assert list(cosines) == pytest.approx(direct, abs=1e-5)  # embed_audio / embed_text agree
    assert described["packages"][PACKAGE[name]] == VERSION[name]
    assert described["checkpoint"]["weights_only"] is True  # a state dict: no unpickling needed


def test_emotion_and_sseu_runs_through_the_worker(family: tuple[str, Path], tmp_path: Path) -> None:
    name, weights = family
    spec = f"{name}:{weights}"
    speech = tmp_path / "speech"
    speech.mkdir()
    with open(DEMO / "manifest.csv", encoding="utf-8", newline="") as fh:
        demo = {Path(r["path"]).stem: r for r in csv.DictReader(fh)}
    clips = ["spk01_f_angry_01", "spk04_m_happy_01", "spk03_f_sad_01"]
    lines = ["path,label,speaker,gender,transcript"]
    for c in clips:
        (speech / f"{c}.flac").symlink_to(DEMO / f"{c}.flac")
        r = demo[c]
        lines.append(f'{c}.flac,{r["label"]},{r["speaker"]},{r["speaker"][-1]},"{r["transcript"]}"')
    (speech / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    base = {"models": [spec], "seeds": [0], "bootstrap": 50, "workers": 1, "allow_pickle": True}
    emo = tmp_path / "emotion"
    run_eval(config_from_mapping({**base, "manifest": str(speech / "manifest.csv"),
                                  "conditions": "audio-only,correct", "out": str(emo)},
                                 base_dir=None))  # fmt: skip
    with open(emo / "predictions.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6
    label_cols = [c for c in rows[0] if c.startswith("p_")]
    assert label_cols == ["p_angry", "p_happy", "p_sad"]  # the manifest's labels
    for r in rows:
        assert math.fsum(float(r[c]) for c in label_cols) == pytest.approx(1.0, abs=1e-5)
    record = json.loads((emo / "run.json").read_text())
    described = record["models"][spec]
    assert described["packages"]["torch"].startswith("2.13.0")
    assert described["prompts"]["happy"] == "a person speaking in a happy voice"

    build_sseu(tmp_path / "set", speech / "manifest.csv", None, (5.0,), seed=0)
    sseu = tmp_path / "sseu"
    run_eval(config_from_mapping({**base, "manifest": str(tmp_path / "set" / "manifest.csv"),
                                  "sseu_tasks": "asc,at", "out": str(sseu)},
                                 base_dir=None))  # fmt: skip
    with open(sseu / "predictions.csv", encoding="utf-8", newline="") as fh:
        srows = list(csv.DictReader(fh))
    assert srows and {r["mode"] for r in srows} == {"zero-shot"}
    scene_cols = [c for c in srows[0] if c.startswith("scene_p_") or c.startswith("p_scene_")]
    event_cols = [c for c in srows[0] if c.startswith("event_p_") or c.startswith("p_event_")]
    assert scene_cols and event_cols
    for r in srows:
        assert math.fsum(float(r[c]) for c in scene_cols) == pytest.approx(1.0, abs=1e-5)
        assert all(0.0 < float(r[c]) < 1.0 for c in event_cols)
    assert json.loads((sseu / "run.json").read_text())["models"][spec]["sample_rate"] == RATE[name]
