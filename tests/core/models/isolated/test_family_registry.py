"""A new isolated family is one recipe plus one handler, and nothing else.

The test adds a recipe for a family CueLab has never heard of, whose handler is the
protocol tests' probe (a small real contrastive model, standard library only, kept
outside CueLab's worker folder), and an environment for it whose interpreter is this
Python. Without touching any list, the family is then in the registry, in
``cuelab list families``, in ``cuelab env list``, gets an adapter of its kind, and a
real worker process dispatches its requests to the handler.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from cuelab.cli import main
from cuelab.core.models import capabilities as caps
from cuelab.core.models.base import Clip
from cuelab.core.models.isolated import recipes
from cuelab.core.models.isolated.adapter import ContrastiveWorkerAdapter, adapter_class
from cuelab.core.models.isolated.inspect_env import MARKER
from cuelab.core.models.registry import REGISTRY, families, load_model
from cuelab.core.tasks.prompts import TaskPrompt

HANDLERS = Path(__file__).parent / "handlers"
FAMILY = "fake-clap"
RECIPE = recipes.Recipe(
    family=FAMILY,
    kind=recipes.CONTRASTIVE,
    torch="2.13.0",
    packages=(),
    code="pypi:fake-clap==1.0",
    imports=(),
    location="a probe plan (JSON)",
    pickle=False,
    handler="probe_handler:ProbeHandler",
    handler_path=(str(HANDLERS),),
    summary="a family added by a test: one recipe, one handler",
    label_template="the voice sounds {label}",
)


@pytest.fixture()
def fake_family(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The recipe, and a ready environment whose Python is this one."""
    monkeypatch.setitem(recipes.RECIPES, FAMILY, RECIPE)
    root = tmp_path / "envs"
    monkeypatch.setenv("CUELAB_ENVS", str(root))
    folder = root / FAMILY
    (folder / "bin").mkdir(parents=True)
    python = folder / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n', encoding="utf-8")
    python.chmod(0o755)
    marker = {"recipe": RECIPE.digest(), "python": "3", "packages": {"probe": "1"}}
    (folder / MARKER).write_text(json.dumps(marker), encoding="utf-8")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"counter": str(tmp_path / "calls.txt")}), encoding="utf-8")
    return plan


def test_the_new_family_is_listed_everywhere(
    fake_family: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert FAMILY in families() and REGISTRY[FAMILY].endswith(f"({FAMILY})")
    assert main(["list", "families", "--json"]) == 0
    listed = {
        item["name"]: item["description"]
        for item in map(json.loads, capsys.readouterr().out.splitlines())
    }
    assert listed[FAMILY] == RECIPE.summary
    assert main(["env", "list", "--json"]) == 0
    envs = {item["family"]: item for item in map(json.loads, capsys.readouterr().out.splitlines())}
    assert envs[FAMILY]["state"] == "ready"


def test_the_new_family_gets_an_adapter_of_its_kind(fake_family: Path) -> None:
    cls = adapter_class(FAMILY)
    assert issubclass(cls, ContrastiveWorkerAdapter) and cls.family == FAMILY
    assert adapter_class(FAMILY) is cls  # one class per recipe
    assert caps.scores_similarity(cls) and caps.has_label_texts(cls)
    assert cls.default_label_template == "the voice sounds {label}"


def test_a_real_worker_dispatches_the_new_family_to_its_handler(fake_family: Path) -> None:
    model = load_model(f"{FAMILY}:{fake_family}")
    try:
        assert model.describe()["family"] == FAMILY
        assert caps.has_label_texts(model)
        assert model.label_prompts(["sad"]) == {"sad": "the voice sounds sad"}
        t = np.arange(16000) / 16000
        clip = Clip((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
        task = TaskPrompt("ser", "Which? {labels}", "Which? {labels} {tokens}")
        labels = ("angry", "happy", "neutral", "sad")
        (pred,) = model.score_labels(clip, task, labels, [None])
        assert pred.label in labels and sum(pred.probs.values()) == pytest.approx(1.0)
        assert (fake_family.parent / "calls.txt").read_text() == "1"  # the handler answered
    finally:
        model.unload()
