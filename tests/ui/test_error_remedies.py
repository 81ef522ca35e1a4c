"""The window words a core error's remedy as its own control, and offers it as an action.

Exceptions cross from the worker thread as objects (``JobSlot.raised``), so a
panel reads the typed remedy rather than parsing a message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cuelab.core import errors
from cuelab.core.errors import ModelError
from cuelab.ui.model_panel import ModelPanel
from cuelab.ui.session import Session
from cuelab.ui.workers import Job, JobSlot
from tests.ui.test_batch_panel import RUN_TIMEOUT_MS, configure, window_on


def test_a_job_slot_sends_the_exception_object_and_its_window_wording(qtbot) -> None:
    session = Session()
    slot = JobSlot("probe", session.pool, session)
    failed: list[str] = []
    raised: list[BaseException] = []
    slot.failed.connect(failed.append)
    slot.raised.connect(raised.append)

    def work(_job: Job) -> None:
        raise ModelError(
            "model /m asks to run its own Python code", remedy=errors.TRUST_REMOTE_CODE
        )

    with qtbot.waitSignal(slot.raised, timeout=10_000):
        slot.start(work, lambda _v, _s: None)
    assert type(raised[0]) is ModelError and raised[0].remedy == errors.TRUST_REMOTE_CODE
    assert raised[0].__traceback__ is None  # the worker's frames are not kept alive
    assert failed == [
        "model /m asks to run its own Python code; "
        "tick 'Trust remote code' (Safety) if you trust its source"
    ]

    def bug(_job: Job) -> None:
        raise KeyError("k")

    with qtbot.waitSignal(slot.raised, timeout=10_000):
        slot.start(bug, lambda _v, _s: None)
    assert isinstance(raised[1], KeyError) and failed[1] == "KeyError: 'k'"
    session.shutdown()


@pytest.fixture
def panel(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelPanel:
    monkeypatch.setenv("CUELAB_ENVS", str(tmp_path / "envs"))
    session = Session()
    widget = ModelPanel(session)
    qtbot.addWidget(widget)
    yield widget
    session.shutdown()


def test_the_allow_pickle_action_ticks_the_switch_and_loads(
    panel: ModelPanel, qtbot, tmp_path: Path
) -> None:
    import torch
    from safetensors.torch import load_file

    from cuelab.core.models import tiny

    folder = tiny.build_qwen2_audio(tmp_path / "tiny")
    weights = folder / "model.safetensors"
    torch.save(load_file(str(weights)), folder / "pytorch_model.bin")
    weights.unlink()
    panel.family_combo.setCurrentText("qwen2-audio")
    panel.location_edit.setText(str(folder))
    panel.device_combo.setCurrentText("cpu")
    with qtbot.waitSignal(panel.session.model_failed, timeout=120_000):
        panel.load()
    qtbot.waitUntil(lambda: panel.fix_button.isVisibleTo(panel), timeout=10_000)
    assert panel.fix_button.text() == "Allow pickle and load"
    assert panel.fix == errors.ALLOW_PICKLE and not panel.pickle_check.isChecked()
    with qtbot.waitSignal(panel.session.model_changed, timeout=120_000):
        panel.fix_button.click()
    assert panel.pickle_check.isChecked() and panel.session.model is not None
    assert panel.session.model_trust["allow_pickle"] is True
    assert not panel.fix_button.isVisibleTo(panel)


def test_a_missing_environment_offers_to_build_it(panel: ModelPanel, qtbot, tmp_path) -> None:
    panel.family_combo.setCurrentText("ms-clap")
    panel.location_edit.setText(str(tmp_path))
    panel.pickle_check.setChecked(True)
    with qtbot.waitSignal(panel.session.model_failed, timeout=60_000) as blocker:
        panel.load()
    assert blocker.args[0].endswith("; press Create beside Environment (Model panel)")
    qtbot.waitUntil(lambda: panel.fix_button.isVisibleTo(panel), timeout=10_000)
    assert panel.fix == errors.build_env("ms-clap")
    assert panel.fix_button.text() == "Create environment"


def test_a_folder_that_holds_a_run_offers_resume_and_resume_works(
    make_window, qtbot, tmp_path: Path, small_manifest: Path
) -> None:
    win = window_on(make_window, qtbot, small_manifest)
    panel = win.batch_panel
    errors_seen: list[str] = []
    win.session.error.connect(errors_seen.append)
    configure(panel, tmp_path / "run", ("audio-only",))
    with qtbot.waitSignal(panel.run_finished, timeout=RUN_TIMEOUT_MS):
        panel.start_button.click()
    panel.last_config = None
    panel._set_state("idle")
    assert not panel.resume_button.isEnabled()
    panel.start_button.click()  # the same folder again
    assert errors_seen[-1] == (
        f"batch run: {tmp_path / 'run'} already holds a run; press Resume to continue it, "
        "or choose another run folder"
    )
    assert panel.resume_button.isEnabled() and panel.state == "idle"
    with qtbot.waitSignal(panel.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        panel.resume_button.click()
    assert blocker.args[0].folder == tmp_path / "run" and panel.state == "finished"


def test_a_broken_environment_row_words_its_remedy_as_the_button(
    panel: ModelPanel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The status carries a typed remedy: the row names the Create button, the CLI the command."""
    import json

    from cuelab.cli import main
    from cuelab.core.models.isolated import envs

    (tmp_path / "envs" / "pengi").mkdir(parents=True)
    (tmp_path / "envs" / "pengi" / envs.BUILDING).write_text("2026-12-06")
    panel.family_combo.setCurrentText("pengi")
    assert panel.env_label.text() == (
        "broken: its build did not finish; press Create beside Environment (Model panel)"
    )
    assert main(["env", "list", "--json"]) == 0
    rows = {d["family"]: d for d in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["pengi"]["reason"] == "its build did not finish; run: cuelab env create pengi"
