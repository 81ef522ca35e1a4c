"""The example configurations run on the demo, and the configuration reference is current.

``examples/served.toml`` runs against the test server in
``tests/core/models/remote/test_first_hour_remote.py`` and ``examples/isolated.toml``
against the MS-CLAP test environment in
``tests/core/models/isolated/test_first_hour_isolated.py``.
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import pytest

from cuelab.cli import main
from cuelab.core.runs import load_config, read_record
from cuelab.core.runs.config_doc import config_reference
from tests.conftest import REPO

EXAMPLES = REPO / "examples"
DEMO = REPO / "assets" / "demo"


def test_every_example_is_run_by_a_test() -> None:
    assert {p.stem for p in EXAMPLES.glob("*.toml")} == {"emotion", "sseu", "served", "isolated"}
    for path in EXAMPLES.glob("*.toml"):
        config = load_config(path)  # each one parses, with its paths resolved
        assert Path(config.out).parent == REPO / "runs"  # git-ignored


def test_the_emotion_example_runs_on_the_demo(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["eval", str(EXAMPLES / "emotion.toml"), "--out", str(out), "--no-plots"]) == 0
    record = read_record(out)
    assert record["status"] == "complete"
    assert record["config"]["conditions"] == [
        "audio-only", "correct", "shuffle", "conflict", "corrupt:0.2", "corrupt:0.6"
    ]  # fmt: skip
    with open(out / "summary.csv", newline="", encoding="utf-8") as fh:
        assert len(list(csv.DictReader(fh))) >= 6


def test_the_sseu_example_runs_on_a_demo_set(tmp_path: Path) -> None:
    from cuelab.core.tasks.sseu.build import build_sseu

    speech = tmp_path / "speech"
    speech.mkdir()
    with open(DEMO / "manifest.csv", encoding="utf-8", newline="") as fh:
        demo = {Path(r["path"]).stem: r for r in csv.DictReader(fh)}
    lines = ["path,label,speaker,gender,transcript"]
    for c in ("spk01_f_angry_01", "spk04_m_happy_01", "spk03_f_sad_01"):
        shutil.copy(DEMO / f"{c}.flac", speech / f"{c}.flac")
        r = demo[c]
        lines.append(f'{c}.flac,{r["label"]},{r["speaker"]},{r["gender"]},"{r["transcript"]}"')
    (speech / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    build_sseu(tmp_path / "set", speech / "manifest.csv", None, (5.0,), seed=0)
    out = tmp_path / "run"
    code = main(["eval", str(EXAMPLES / "sseu.toml"), "--manifest",
                 str(tmp_path / "set" / "manifest.csv"), "--out", str(out), "--no-plots"])  # fmt: skip
    assert code == 0
    record = read_record(out)
    assert record["sseu"]["modes"] == ["independent", "joint"]
    with open(out / "summary.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(float(r["wer"]) == 0.0 for r in rows)  # the oracle


@pytest.mark.parametrize("name", ["emotion", "sseu", "served", "isolated"])
def test_every_key_in_an_example_is_explained(name: str) -> None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    keys = tomllib.loads((EXAMPLES / f"{name}.toml").read_text(encoding="utf-8"))
    reference = config_reference()
    for key in keys:
        assert f"| `{key}` |" in reference, key
