"""``cuelab env``: states, refusals and the recipes (the real builds are in test_clap_envs.py)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cuelab.cli import main
from cuelab.core.errors import ModelError
from cuelab.core.models.isolated import envs
from cuelab.core.models.isolated.recipes import RECIPES, families, get_recipe
from cuelab.core.models.registry import REGISTRY

FAMILIES = {
    "ms-clap", "laion-clap", "mga-clap", "paraclap", "pengi", "ltu-as", "kimi-audio",
    "step-audio-2-mini",
}  # fmt: skip


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CUELAB_ENVS", str(tmp_path / "envs"))
    return tmp_path / "envs"


def test_every_isolated_family_has_a_recipe_and_a_registry_entry() -> None:
    assert set(families()) == FAMILIES
    for family in FAMILIES:
        recipe = get_recipe(family)
        assert REGISTRY[family].startswith("cuelab.core.models.isolated.adapter:")
        assert recipe.torch.count(".") == 2  # pinned
        for req in recipe.packages + recipe.no_deps:
            assert "torch==" not in req.replace("torchaudio==", "")  # torch only from its step
        assert recipe.code.startswith(("pypi:", "git:"))
    assert get_recipe("ms-clap").no_deps == ("msclap==1.3.4",)
    assert get_recipe("step-audio-2-mini").remote_code and get_recipe("kimi-audio").remote_code
    assert RECIPES["ltu-as"].worker and RECIPES["ltu-as"].code.count("@") == 1
    assert len(RECIPES["ltu-as"].code.rsplit("@", 1)[1]) == 40  # pinned to a commit


def test_the_recipe_hash_ignores_notes_but_not_packages() -> None:
    from dataclasses import replace

    recipe = get_recipe("ms-clap")
    assert replace(recipe, notes=("other",)).digest() == recipe.digest()
    assert replace(recipe, packages=(*recipe.packages, "x==1")).digest() != recipe.digest()


def test_list_shows_missing_and_broken_states(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (root / "pengi").mkdir(parents=True)
    (root / "pengi" / envs.BUILDING).write_text("2026-11-30")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / envs.MARKER).write_text(json.dumps({"recipe": "old", "python": "3.11.7"}))
    envs.adopt("paraclap", elsewhere)
    assert main(["env", "list", "--json"]) == 0
    rows = {d["family"]: d for d in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(rows) == FAMILIES
    assert rows["ms-clap"] == {
        "family": "ms-clap", "state": "missing", "path": str(root / "ms-clap"), "python": None,
    }  # fmt: skip
    assert rows["pengi"]["state"] == "broken" and "did not finish" in rows["pengi"]["reason"]
    assert rows["paraclap"]["path"] == str(elsewhere)
    assert "another recipe" in rows["paraclap"]["reason"]
    assert main(["env", "check", "ms-clap"]) == 1
    assert "missing" in capsys.readouterr().out


def test_create_refuses_a_folder_that_holds_something_else(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "thesis.tex").write_text("keep me")
    assert main(["env", "create", "ms-clap", "--dir", str(target)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "holds no CueLab environment" in err
    assert (target / "thesis.tex").read_text() == "keep me"


def test_model_code_is_fetched_at_the_pinned_commit_before_any_install(tmp_path: Path) -> None:
    """A ``git:URL@COMMIT`` recipe checks out exactly that commit (a local repository here)."""
    import subprocess
    from dataclasses import replace

    repo = tmp_path / "Upstream"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "model.py").write_text("VERSION = 1\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    first = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    (repo / "model.py").write_text("VERSION = 2\n")
    subprocess.run([*git, "commit", "-qam", "two"], check=True)
    recipe = replace(get_recipe("paraclap"), code=f"git:file://{repo}@{first.strip()}")
    src = envs._fetch_git_code(recipe, tmp_path / "env")
    assert src == tmp_path / "env" / "src" / "Upstream"
    assert (src / "model.py").read_text() == "VERSION = 1\n"
    bad = replace(recipe, code=f"git:file://{tmp_path}/nowhere@{first.strip()}")
    with pytest.raises(ModelError, match="could not clone") as info:
        envs._fetch_git_code(bad, tmp_path / "env2")
    assert "\n" not in str(info.value)


def test_a_cancelled_build_stops_its_running_step_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancel while a step runs: the step and its children are stopped within a second, and
    the folder is left as an unfinished build. GitHub cannot be reached here (a real clone
    fails at once), so the clone step is a ``git`` on PATH that waits on a child process,
    as a clone over a slow network does."""
    import threading
    import time

    from cuelab.core.errors import Cancelled
    from cuelab.core.jobs import JobControl

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "git").write_text("#!/bin/sh\nsleep 600 &\nwait\n")  # a clone that hangs, with a child
    (fake / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CUELAB_ENVS", str(tmp_path / "envs"))
    control = JobControl()
    threading.Timer(1.0, control.cancel).start()
    started = time.monotonic()
    with pytest.raises(Cancelled, match="cancelled during: clone"):
        envs.create_env("paraclap", None, None, control)
    assert time.monotonic() - started < 5
    assert envs.env_status("paraclap").state != envs.READY
    leftover = subprocess.run(["pgrep", "-f", "sleep 600"], capture_output=True, text=True)
    assert leftover.stdout.strip() == ""


def test_a_recipe_newer_than_its_pins_allow_is_refused_before_anything_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pengi's torch 2.0.1 stops at Python 3.11; on a newer interpreter the build is refused
    in one line before a folder is made (here: the same recipe, capped below this Python)."""
    import sys
    from dataclasses import replace

    assert get_recipe("pengi").python_max == (3, 11)
    capped = replace(get_recipe("pengi"), python_max=(3, sys.version_info[1] - 1))
    monkeypatch.setattr(envs, "get_recipe", lambda family: capped)
    monkeypatch.setenv("CUELAB_ENVS", str(tmp_path / "envs"))
    with pytest.raises(ModelError, match=r"pengi: its pins \(torch 2\.0\.1\) have no wheels"):
        envs.create_env("pengi")
    assert not (tmp_path / "envs" / "pengi").exists()
