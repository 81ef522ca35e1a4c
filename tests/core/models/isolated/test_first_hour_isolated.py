"""examples/isolated.toml through a real MS-CLAP worker (the environment test_clap_envs builds)."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cuelab.cli import main
from cuelab.core.runs import read_record
from tests.conftest import REPO
from tests.core.models.isolated.test_clap_envs import built, env_root  # noqa: F401


@pytest.fixture(scope="module")
def ms_clap(env_root: Path) -> Iterator[Path]:  # noqa: F811
    _, fixtures = built("ms-clap", env_root)
    old = os.environ.get("HF_HOME")
    os.environ["HF_HOME"] = str(fixtures / "hf")  # the worker's gpt2, offline
    yield fixtures / "weights"
    if old is None:
        os.environ.pop("HF_HOME", None)
    else:
        os.environ["HF_HOME"] = old


def test_the_isolated_example_runs_through_the_worker(ms_clap: Path, tmp_path: Path) -> None:
    spec = f"ms-clap:{ms_clap}"
    out = tmp_path / "run"
    code = main(["eval", str(REPO / "examples" / "isolated.toml"), "--model", spec,
                 "--limit", "4", "--workers", "1", "--out", str(out), "--no-plots"])  # fmt: skip
    assert code == 0
    record = read_record(out)
    assert record["status"] == "complete" and record["config"]["allow_pickle"] is True
    assert record["models"][spec]["family"] == "ms-clap"
    with open(out / "predictions.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and {r["condition"] for r in rows} == {"audio-only"}
