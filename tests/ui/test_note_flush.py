"""A typed note survives every way of moving on (issue 26, must-fix 1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import Qt

from cuelab.core.datasets.annotations import load_annotations
from tests.conftest import REPO

SCRIPT = Path(__file__).with_name("_note_under_x11.py")


def test_ctrl_u_in_the_note_field_keeps_the_note_under_x11(small_manifest):
    """On X11, Ctrl+U is also the line edit's "delete line": the window's shortcut must win,
    after the note is written."""
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", PYTHONPATH=str(REPO))
    proc = subprocess.run(
        ["xvfb-run", "-a", sys.executable, str(SCRIPT), str(small_manifest)],
        env=env, capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["rows"] == {"spk01_f_angry_01.flac": ["", "sounds resigned"]}
    assert out["current_row"] == 1  # and it moved on to the next unannotated clip


def test_note_written_before_next_clip_by_menu_and_keys(make_window, qtbot, small_manifest):
    """Ctrl+Down, the menu's Next clip and Ctrl+U each write the pending note first."""
    win = make_window()
    s, panel = win.session, win.dataset_panel
    with qtbot.waitSignal(s.clip_changed, timeout=30_000):
        s.open_manifest(small_manifest)
    panel.note_edit.setFocus()
    qtbot.keyClicks(panel.note_edit, "first")
    qtbot.keyClick(panel.note_edit, Qt.Key.Key_Down, Qt.KeyboardModifier.ControlModifier)
    assert load_annotations(small_manifest)["spk01_f_angry_01.flac"].note == "first"
    assert panel.table.currentRow() == 1 and panel.note_edit.text() == ""
    qtbot.keyClicks(panel.note_edit, "second")
    next_clip = next(a for a in win.menuBar().findChildren(type(win.close_action))
                     if a.text() == "&Next clip")  # fmt: skip
    next_clip.trigger()
    assert load_annotations(small_manifest)["spk01_f_sad_01.flac"].note == "second"
    assert panel.table.currentRow() == 2
