"""An installed (non-editable) CueLab finds its bundled assets."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO

CHECK = """
import cuelab.core.paths as p
from cuelab.core.cues.norms import default_norms
from cuelab.core.tasks.prompts import load_task
from cuelab.core.models.registry import load_model
from cuelab.core.datasets import read_manifest
assert str(p.ASSETS).startswith(TARGET), p.ASSETS
print(default_norms().n_clips, load_task("ser").labels, load_model("reference").weights.labels)
print(len(read_manifest(p.ASSETS / "demo" / "manifest.csv")))
"""


def test_wheel_ships_assets_and_an_installed_copy_uses_them(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheels), str(REPO)],
        check=True, capture_output=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    wheel = next(wheels.glob("cuelab-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "cuelab/assets/norms/demo-norms.json",
        "cuelab/assets/prompts/ser_with_tokens.txt",
        "cuelab/assets/models/demo-reference/weights.safetensors",
        "cuelab/assets/demo/manifest.csv",
        "cuelab/assets/backgrounds/manifest.csv",
    ):
        assert needed in names
    assert sum(n.endswith(".flac") for n in names) >= 96
    # assets/ sits at the repository's top level but only inside the package in the wheel
    assert not [n for n in names if n.startswith("assets/")]
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    env = {k: v for k, v in os.environ.items() if k != "CUELAB_ASSETS"}
    env["PYTHONPATH"] = str(target)
    proc = subprocess.run(
        [sys.executable, "-c", f"TARGET = {str(target)!r}\n" + CHECK],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "96 ('angry', 'happy', 'neutral', 'sad')" in proc.stdout
    # the installed copy runs the demo: a batch run over bundled clips with the bundled model
    demo = target / "cuelab" / "assets" / "demo" / "manifest.csv"
    run = subprocess.run(
        [sys.executable, "-m", "cuelab", "eval", "--manifest", str(demo), "--model", "reference",
         "--conditions", "audio-only,correct", "--limit", "8", "--workers", "1",
         "--bootstrap", "50", "--no-plots", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    summary = (tmp_path / "run" / "summary.csv").read_text(encoding="utf-8").splitlines()
    assert summary[0].startswith("model,condition,seed,n,uar")
    assert {line.split(",")[1] for line in summary[1:]} == {"audio-only", "correct"}
