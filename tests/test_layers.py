"""The import contracts in pyproject.toml hold, and they would catch a break.

``[tool.importlinter]`` fixes the pipeline's layers (audio < cues < models <
tasks < runs < reports, then cli and ui), forbids import cycles among sibling
modules and packages anywhere in cuelab/, keeps Qt out of the core, and keeps
the window and the command line on the core packages' public faces. The
first test checks cuelab itself. The others copy the same contracts onto a
small package laid out like cuelab and break it on purpose (a cycle, an
upward import, Qt in the core), so a contract that silently stopped matching
anything would fail here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from tests.conftest import REPO

LINT = [str(Path(sys.executable).with_name("lint-imports"))]


def _lint(
    cwd: Path, config: Path, extra_path: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [*LINT, "--config", str(config), "--no-cache"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_cuelab_keeps_its_import_contracts() -> None:
    proc = _lint(REPO, REPO / "pyproject.toml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 kept, 0 broken" in proc.stdout


def _contracts() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "importlinter"
    ]


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value) + '"'


@pytest.fixture()
def toy(tmp_path: Path) -> tuple[Path, Path]:
    """A package ``toylab`` with cuelab's layer packages, and cuelab's contracts renamed for it."""
    settings = _contracts()
    src = tmp_path / "src"
    modules = {"toylab.cli", "toylab.ui"}
    for contract in settings["contracts"]:
        for layer in contract.get("layers", []):
            modules.update(m.strip().replace("cuelab", "toylab") for m in layer.split("|"))
    for module in sorted(modules):
        parts = module.split(".")
        for i in range(1, len(parts) + 1):
            pkg = src.joinpath(*parts[:i])
            pkg.mkdir(parents=True, exist_ok=True)
            (pkg / "__init__.py").touch()
    lines = [
        "[tool.importlinter]",
        'root_packages = ["toylab"]',
        "include_external_packages = true",
    ]
    for contract in settings["contracts"]:
        lines.append("[[tool.importlinter.contracts]]")
        for key, value in contract.items():
            if isinstance(value, list):
                value = [str(v).replace("cuelab", "toylab") for v in value]
            elif isinstance(value, str):
                value = value.replace("cuelab", "toylab")
            lines.append(f"{key} = {_toml_value(value)}")
    config = tmp_path / "contracts.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return src, config


def _module(src: Path, dotted: str, body: str) -> None:
    path = src.joinpath(*dotted.split(".")).with_suffix(".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")


def test_the_contracts_pass_a_clean_layout(toy: tuple[Path, Path]) -> None:
    src, config = toy
    _module(src, "toylab.core.runs.engine", "from toylab.core.models import base\n")
    _module(src, "toylab.core.models.base", "from toylab.core import errors\n")
    proc = _lint(src, config, src)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_contracts_catch_a_cycle_between_sibling_modules(toy: tuple[Path, Path]) -> None:
    src, config = toy
    _module(src, "toylab.core.models.hf_alm", "from toylab.core.models import suffix\n")
    _module(src, "toylab.core.models.suffix", "from toylab.core.models import hf_alm\n")
    proc = _lint(src, config, src)
    assert proc.returncode == 1
    assert "No cycles are allowed in toylab.core.models" in proc.stdout


def test_the_contracts_catch_a_lower_layer_importing_a_higher_one(toy: tuple[Path, Path]) -> None:
    src, config = toy
    _module(src, "toylab.core.runs.plan", "X = 1\n")
    _module(src, "toylab.core.cues.concepts", "from toylab.core.runs import plan\n")
    proc = _lint(src, config, src)
    assert proc.returncode == 1
    assert "toylab.core.cues.concepts -> toylab.core.runs.plan" in proc.stdout


def test_the_contracts_catch_qt_in_the_core(toy: tuple[Path, Path]) -> None:
    src, config = toy
    _module(src, "toylab.core.audio.io", "import PySide6\n")
    proc = _lint(src, config, src)
    assert proc.returncode == 1
    assert "toylab.core.audio.io -> PySide6" in proc.stdout


def test_the_contracts_keep_ui_and_cli_on_the_public_faces(toy: tuple[Path, Path]) -> None:
    src, config = toy
    _module(src, "toylab.core.runs.folder", "X = 1\n")
    _module(src, "toylab.ui.panel", "from toylab.core.runs import RunFolder\n")  # the face: kept
    proc = _lint(src, config, src)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _module(src, "toylab.cli.eval", "from toylab.core.runs.folder import X\n")  # inside: broken
    proc = _lint(src, config, src)
    assert proc.returncode == 1
    assert "toylab.cli.eval -> toylab.core.runs.folder" in proc.stdout
