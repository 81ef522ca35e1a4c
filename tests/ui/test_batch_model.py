"""The window's model during a batch run of the same model (issue 26): freed and reloaded,
or kept; and a run in the child process scores exactly as one in-process."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from cuelab.core.models import tiny
from cuelab.core.reports.build import build_report
from cuelab.core.runs import run_eval
from cuelab.ui.batch_model import on_accelerator
from tests.helpers import read_csv as read_rows
from tests.ui.conftest import DEMO
from tests.ui.test_batch_panel import RUN_TIMEOUT_MS, configure
from tests.ui.test_batch_process import hold_after

LOAD_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory):
    """A tiny random Qwen2-Audio checkpoint with its processor, loaded as users load one."""
    return tiny.build_qwen2_audio(tmp_path_factory.mktemp("qwen2-audio"))


def window_with(make_window, qtbot, spec: str):
    win = make_window()
    win.confirm_quit_during_run = False  # a failed assertion mid-run must not leave a dialog
    s = win.session
    s.open_manifest(DEMO / "manifest.csv")
    s.load_model(spec, device="cpu")
    qtbot.waitUntil(lambda: s.model is not None and s.manifest is not None, timeout=LOAD_TIMEOUT_MS)
    return win


def test_a_freed_model_is_off_during_the_run_and_reloaded_after(
    make_window, qtbot, tmp_path, tiny_qwen
):
    spec = f"qwen2-audio:{tiny_qwen}"
    win = window_with(make_window, qtbot, spec)
    s, panel = win.session, win.batch_panel
    first = s.model
    assert first.model is not None  # the weights are in the window
    assert not on_accelerator(first)  # on the CPU, so "auto" would keep it
    panel.handover.set_mode("free")
    configure(panel, tmp_path / "run", ("audio-only", "correct"), limit=3)
    assert panel.model_edit.text() == spec
    reached, proceed, _seen = hold_after(panel, 1)
    panel.start_button.click()
    qtbot.waitUntil(reached.is_set, timeout=RUN_TIMEOUT_MS)

    # During the run the window holds no copy: no model, and the old adapter's weights gone.
    try:
        assert s.model is None and first.model is None
        assert not panel.handover.note.isHidden() and "freed" in panel.handover.note.text()
        assert panel.handover.freed_spec == spec
    finally:
        proceed.set()
    qtbot.waitUntil(lambda: panel.state == "finished", timeout=RUN_TIMEOUT_MS)

    # Reloaded after the run, with the options it was loaded with.
    qtbot.waitUntil(lambda: s.model is not None, timeout=LOAD_TIMEOUT_MS)
    assert s.model is not first and s.model.model is not None
    assert s.model_spec == spec and s.model_options == ("auto", "cpu")
    qtbot.waitUntil(lambda: panel.handover.note.isHidden(), timeout=5_000)

    # The child's results are byte-identical to the same run in this process.
    config = panel.last_config
    in_process = tmp_path / "in-process"
    run_eval(replace(config, out=str(in_process)), command=["test"])
    build_report(in_process, plots=False)  # the panel's report, minus the plots
    for name in ("predictions.csv", "summary.csv", "confusion.csv", "tests.csv"):
        assert (tmp_path / "run" / name).read_bytes() == (in_process / name).read_bytes(), name
    assert len(read_rows(in_process / "predictions.csv")) == 3 * 2


def test_auto_keeps_a_cpu_model_and_the_window_keeps_predicting(make_window, qtbot, tmp_path):
    win = window_with(make_window, qtbot, "reference")
    s, panel = win.session, win.batch_panel
    model = s.model
    assert panel.handover.mode == "auto" and not on_accelerator(model)
    configure(panel, tmp_path / "run", ("audio-only",), limit=3)
    reached, proceed, _seen = hold_after(panel, 1)
    panel.start_button.click()
    qtbot.waitUntil(reached.is_set, timeout=RUN_TIMEOUT_MS)
    try:
        assert s.model is model and panel.handover.note.isHidden()
    finally:
        proceed.set()
    qtbot.waitUntil(lambda: panel.state == "finished", timeout=RUN_TIMEOUT_MS)
    assert s.model is model and not s.slots["model"].busy  # nothing was reloaded


def test_a_model_loaded_during_the_run_is_kept_and_a_closing_window_reloads_nothing(
    make_window, qtbot, tmp_path
):
    win = window_with(make_window, qtbot, "reference")
    s, panel = win.session, win.batch_panel
    panel.handover.set_mode("free")
    configure(panel, tmp_path / "run", ("audio-only",), limit=3)
    reached, proceed, _seen = hold_after(panel, 1)
    panel.start_button.click()
    qtbot.waitUntil(reached.is_set, timeout=RUN_TIMEOUT_MS)
    try:
        assert s.model is None
        s.load_model("oracle:-")  # the user moves on meanwhile
        qtbot.waitUntil(lambda: s.model is not None, timeout=LOAD_TIMEOUT_MS)
    finally:
        proceed.set()
    qtbot.waitUntil(lambda: panel.state == "finished", timeout=RUN_TIMEOUT_MS)
    qtbot.wait(200)
    assert s.model_spec == "oracle:-" and not s.slots["model"].busy
    assert panel.handover.note.isHidden()

    # Freed again, then the window closes during the run: the run is cancelled, no reload.
    s.load_model("reference")
    qtbot.waitUntil(lambda: s.model_spec == "reference", timeout=LOAD_TIMEOUT_MS)
    configure(panel, tmp_path / "run2", ("audio-only",), limit=3)
    reached, proceed, _seen = hold_after(panel, 1)
    panel.start_button.click()
    qtbot.waitUntil(reached.is_set, timeout=RUN_TIMEOUT_MS)
    proceed.set()
    assert s.model is None
    win.close()
    qtbot.wait(300)
    assert s.model is None and not s.slots["model"].busy
    assert json.loads((tmp_path / "run2" / "run.json").read_text())["status"] == "cancelled"
