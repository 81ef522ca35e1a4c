"""Bad run configurations are refused with one line, never coerced or accepted silently."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cuelab.core.models.registry import parse_spec
from cuelab.core.runs import config_from_mapping
from cuelab.core.safeio import atomic_write_text
from tests.conftest import REPO

BASE = {"manifest": "m.csv", "models": ["reference"], "conditions": ["audio-only"], "out": "o"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"seeds": [1.7]}, "'seeds' must be a list of int"),
        ({"seeds": [True]}, "'seeds' must be a list of int"),
        ({"seeds": [-1]}, "seeds must be 0 or more"),
        ({"limit": True}, "'limit' must be an integer"),
        ({"bootstrap": True}, "'bootstrap' must be an integer"),
        ({"quant": ["nf4"]}, "'quant' must be a string"),
        ({"quant": "int3"}, "quant 'int3' is not one of"),
        ({"device": "tpu"}, "device 'tpu' is not one of"),
        ({"matcher": "embeddings:/models/x"}, "'matcher' is for speech/scene/event runs"),
        ({"shard": 2}, "'shard' must be a string"),
        ({"labels": 7}, "'labels' must be a label set name or a list"),
    ],
)
def test_refused(extra: dict, message: str) -> None:
    with pytest.raises(Exception, match=message) as err:
        config_from_mapping({**BASE, **extra}, None)
    assert "\n" not in str(err.value)


def test_valid_values_still_pass() -> None:
    config = config_from_mapping({**BASE, "seeds": "0,2", "limit": 3, "quant": "nf4"}, None)
    assert config.seeds == (0, 2) and config.limit == 3 and config.quant == "nf4"


def test_a_bare_oracle_spec_means_the_oracle() -> None:
    assert parse_spec("oracle") == ("oracle", "-")


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writes_respect_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        path = atomic_write_text(tmp_path / f"f{umask:o}.txt", "x")
        plain = tmp_path / f"plain{umask:o}.txt"
        plain.write_text("x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o666 & ~umask


def test_tokens_on_a_fifo_is_one_line_not_a_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    proc = subprocess.run([sys.executable, "-m", "cuelab", "tokens", str(fifo)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 1
    assert "not a regular file" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
