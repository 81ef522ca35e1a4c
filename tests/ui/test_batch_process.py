"""The batch run from the window runs in a child process (issue 26): cancel, kill, errors."""

from __future__ import annotations

import json
import os
import signal
import threading

from PySide6.QtCore import Qt

from cuelab.core.runs.folder import run_lock
from tests.helpers import read_csv as read_rows
from tests.ui.conftest import DEMO
from tests.ui.test_batch_panel import RUN_TIMEOUT_MS, configure, window_on


def hold_after(panel, clips: int) -> tuple[threading.Event, threading.Event, list[int]]:
    """Hold the run after ``clips`` scored clips (the child waits for the window's answer)."""
    reached, proceed, seen = threading.Event(), threading.Event(), []

    def hold(_run_id, info):  # in the panel's worker thread, between clips
        if info.message != "features" and info.done == clips and not reached.is_set():
            seen.append(panel.child_pid)
            reached.set()
            proceed.wait(30)

    panel.relay.progress.connect(hold, Qt.ConnectionType.DirectConnection)
    return reached, proceed, seen


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_run_is_another_process_and_cancel_stops_it_resumably(make_window, qtbot, tmp_path):
    win = window_on(make_window, qtbot, DEMO / "manifest.csv")
    panel = win.batch_panel
    configure(panel, tmp_path / "run", ("audio-only", "correct"), limit=6)
    reached, proceed, seen = hold_after(panel, 2)
    panel.start_button.click()
    qtbot.waitUntil(reached.is_set, timeout=RUN_TIMEOUT_MS)
    child = seen[0]
    assert child is not None and child != os.getpid() and alive(child)
    panel.cancel_button.click()
    proceed.set()
    qtbot.waitUntil(lambda: panel.state == "cancelled", timeout=RUN_TIMEOUT_MS)

    run = tmp_path / "run"
    assert not alive(child)  # stopped and reaped, no orphan
    assert json.loads((run / "run.json").read_text())["status"] == "cancelled"
    # The child keeps scoring while this thread holds the relay, so the cancel lands after
    # the second clip or a little later; whole clips only, and never the last.
    written = len(read_rows(run / "predictions.csv"))
    assert written % 2 == 0 and 2 * 2 <= written < 6 * 2, written
    with run_lock(run):  # the child's lock went with it
        pass
    assert panel.resume_button.isEnabled()

    with qtbot.waitSignal(panel.run_finished, timeout=RUN_TIMEOUT_MS):
        panel.resume_button.click()
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "complete" and len(record["sessions"]) == 2
    assert panel.child_pid not in (None, child, os.getpid())
    assert len(read_rows(run / "predictions.csv")) == 6 * 2


def test_a_killed_run_process_is_one_line_and_resumable(make_window, qtbot, tmp_path):
    win = window_on(make_window, qtbot, DEMO / "manifest.csv")
    panel = win.batch_panel
    configure(panel, tmp_path / "run", ("audio-only",), limit=5)
    reached, proceed, seen = hold_after(panel, 2)
    panel.start_button.click()
    qtbot.waitUntil(reached.is_set, timeout=RUN_TIMEOUT_MS)
    os.kill(seen[0], signal.SIGKILL)
    proceed.set()
    qtbot.waitUntil(lambda: panel.state == "failed", timeout=RUN_TIMEOUT_MS)
    assert "process died" in panel.error_text and "\n" not in panel.error_text
    run = tmp_path / "run"
    with run_lock(run):  # a killed child leaves no lock behind
        pass
    assert panel.resume_button.isEnabled()
    with qtbot.waitSignal(panel.run_finished, timeout=RUN_TIMEOUT_MS):
        panel.resume_button.click()
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    assert len(read_rows(run / "predictions.csv")) == 5


def test_an_error_in_the_run_process_is_one_typed_line(make_window, qtbot, tmp_path):
    win = window_on(make_window, qtbot, DEMO / "manifest.csv")
    panel = win.batch_panel
    configure(panel, tmp_path / "run", ("audio-only",), limit=2)
    panel.model_edit.setText("no-such-model-family:x")
    panel.start_button.click()
    qtbot.waitUntil(lambda: panel.state == "failed", timeout=RUN_TIMEOUT_MS)
    assert panel.error_text and "\n" not in panel.error_text
    assert "Traceback" not in panel.error_text and "no-such-model-family" in panel.error_text


def test_quitting_during_a_run_cancels_the_run_process(make_window, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    win = window_on(make_window, qtbot, DEMO / "manifest.csv")
    panel = win.batch_panel
    configure(panel, tmp_path / "run", ("audio-only",), limit=6)
    reached, proceed, seen = hold_after(panel, 2)
    asked = []

    def answer(*args, **kwargs):
        asked.append(args[2])
        # The run goes on once the window has cancelled it and is waiting for it.
        threading.Timer(0.5, proceed.set).start()
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", answer)
    panel.start_button.click()
    qtbot.waitUntil(reached.is_set, timeout=RUN_TIMEOUT_MS)
    win.close()
    assert asked and "batch run is in progress" in asked[0]
    assert not alive(seen[0])
    run = tmp_path / "run"
    assert json.loads((run / "run.json").read_text())["status"] == "cancelled"
    # Held after its second clip's progress, the child may have scored (and writes) the
    # clip in hand before it sees the cancel: whole clips, never all six.
    written = read_rows(run / "predictions.csv")
    assert 2 <= len(written) < 6, len(written)
    assert len({r["utt_id"] for r in written}) == len(written)  # one row per clip, none twice
