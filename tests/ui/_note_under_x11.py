"""Type a note and press Ctrl+U at once, in a real X11 session (run by test_note_flush.py).

Under X11 Qt binds Ctrl+U to "delete the whole line" in a line edit, so this is
where a note was lost; the offscreen platform has no such binding.

Usage: python _note_under_x11.py MANIFEST  (prints the sidecar's rows as JSON)
"""

from __future__ import annotations

import json
import sys

from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from cuelab.core.datasets.annotations import load_annotations
from cuelab.ui.main_window import MainWindow


def main(manifest: str) -> int:
    app = QApplication([])
    win = MainWindow(playback=False)
    win.notifier.dialogs_enabled = False
    win.show()
    win.activateWindow()  # no window manager under Xvfb: ask for the focus ourselves
    if not QTest.qWaitForWindowActive(win, 10_000):
        print("the window never became active", file=sys.stderr)
        return 2
    s, panel = win.session, win.dataset_panel
    s.open_manifest(manifest)
    deadline = 600
    while (s.clip_path is None) and deadline:
        QTest.qWait(100)
        deadline -= 1
    panel.note_edit.setFocus()
    QTest.qWait(50)
    QTest.keyClicks(panel.note_edit, "sounds resigned")
    # Within the 0.4 s save delay: the window's "next unannotated clip".
    QTest.keyClick(panel.note_edit, Qt.Key.Key_U, Qt.KeyboardModifier.ControlModifier)
    moved = panel.table.currentRow()
    QTest.qWait(1000)
    rows = {k: [a.annotator_label, a.note] for k, a in load_annotations(manifest).items()}
    print(json.dumps({"rows": rows, "current_row": moved}))
    win.close()
    QTimer.singleShot(0, app.quit)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
