"""Open answers (SSEU-Bench's reading): prompts that list no class; closed ones unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from cuelab.cli import main
from cuelab.core.errors import ModelError
from cuelab.core.runs import RunConfigError, config_from_mapping
from cuelab.core.tasks.sseu.build import DEMO_BACKGROUNDS, read_backgrounds
from cuelab.core.tasks.sseu.prompts import display_label, load_sseu_task
from tests.conftest import REPO

BGS = read_backgrounds(DEMO_BACKGROUNDS)
SCENES = sorted({b.scene for b in BGS})
EVENTS = sorted({e for b in BGS for e in b.events})


@pytest.mark.parametrize("task", ["asc", "at", "joint", "cot"])
def test_open_prompts_name_no_class_and_closed_ones_list_them(task: str) -> None:
    open_text = load_sseu_task(task, SCENES, EVENTS, answers="open").render().lower()
    closed = load_sseu_task(task, SCENES, EVENTS, answers="closed").render().lower()
    listed = SCENES if task == "asc" else EVENTS
    assert all(display_label(c) in closed for c in listed)
    # "street" and "office" might occur as ordinary words; no class list may be offered
    assert sum(display_label(c) in open_text for c in [*SCENES, *EVENTS]) == 0, open_text
    assert open_text != closed
    open_prompt = load_sseu_task(task, SCENES, EVENTS, answers="open")
    assert open_prompt.name.endswith("_open") and open_prompt.labels == ()


def test_asr_is_the_same_in_both_styles_and_bad_styles_are_refused() -> None:
    assert (
        load_sseu_task("asr", answers="open").render()
        == load_sseu_task("asr", answers="closed").render()
    )
    with pytest.raises(ModelError, match="open or closed"):
        load_sseu_task("asc", SCENES, EVENTS, answers="free")
    # open prompts need no class lists at all
    assert "JSON" in load_sseu_task("joint", answers="open").render()


def test_cot_open_still_asks_when_the_speech_begins() -> None:
    text = load_sseu_task("cot", answers="open").render()
    assert "when the speech starts" in text and "Final answer:" in text


def test_cli_prints_either_style(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sseu", "prompt", "at", "--answers", "open"]) == 0
    open_out = capsys.readouterr().out
    assert main(["sseu", "prompt", "at", "--answers", "closed"]) == 0
    closed_out = capsys.readouterr().out
    assert "car horn" in closed_out and "car horn" not in open_out
    assert main(["sseu", "prompt", "at"]) == 0
    assert capsys.readouterr().out == closed_out  # closed stays the default


def test_answers_is_an_sseu_setting() -> None:
    base = {"manifest": str(REPO / "assets/demo/manifest.csv"), "models": ["oracle:-"], "out": "r"}
    with pytest.raises(RunConfigError, match="'answers' is for speech/scene/event runs"):
        config_from_mapping({**base, "conditions": ["audio-only"], "answers": "open"}, None)
    with pytest.raises(RunConfigError, match="answers 'free' is not open or closed"):
        config_from_mapping({**base, "joint": True, "answers": "free"}, None)
    assert config_from_mapping({**base, "joint": True}, None).answers == "closed"


def test_open_answers_mapped_lexically_say_so(tmp_path: Path) -> None:
    from cuelab.core.runs import run_eval
    from cuelab.core.runs.sseu import OPEN_LEXICAL_NOTE
    from cuelab.core.tasks.sseu.build import build_sseu

    demo = REPO / "assets" / "demo"
    lines = (demo / "manifest.csv").read_text(encoding="utf-8").splitlines()
    speech = tmp_path / "speech.csv"
    speech.write_text(f"{lines[0]}\n{demo}/{lines[1]}\n", encoding="utf-8")
    build_sseu(tmp_path / "set", speech, None, (0.0,), sr=16000)
    base = {"manifest": str(tmp_path / "set" / "manifest.csv"), "models": ["oracle:-"],
            "joint": True}  # fmt: skip
    opened = run_eval(config_from_mapping({**base, "answers": "open", "out": str(tmp_path / "o")},
                                          None))  # fmt: skip
    closed = run_eval(config_from_mapping({**base, "out": str(tmp_path / "c")}, None))
    assert OPEN_LEXICAL_NOTE in opened.notes and OPEN_LEXICAL_NOTE not in closed.notes
    assert "embeddings" in OPEN_LEXICAL_NOTE
