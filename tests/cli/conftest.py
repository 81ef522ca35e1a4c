"""Shared by the command-line tests: a small manifest and one finished run of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from cuelab.cli import main
from tests.core.runs.test_emotion_runs import make_manifest


def eval_args(manifest: Path | str, out: Path | str, *more: str) -> list[str]:
    return ["eval", "--manifest", str(manifest), "--model", "reference", "--conditions",
            "audio-only,correct", "--workers", "1", "--bootstrap", "20", "--no-plots",
            "--out", str(out), *more]  # fmt: skip


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_manifest(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def finished(manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "done"
    assert main(eval_args(manifest, out)) == 0
    return out
