"""Save docs/side-by-side.png: the reference model and the oracle on one demo clip, swept.

Why: the README shows what comparing models looks like; this remakes the picture
from the code as it is, at 1366x768 (run under ``xvfb-run -a`` or with
``QT_QPA_PLATFORM=offscreen``).

    xvfb-run -a python scripts/side_by_side_screenshot.py [docs/side-by-side.png]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(out: str = "docs/side-by-side.png") -> int:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    import pyqtgraph as pg

    from cuelab.ui.main_window import MainWindow

    pg.setConfigOptions(background="w", foreground="k", antialias=True)
    settings = QSettings(str(Path(out).with_suffix(".ini").resolve()), QSettings.Format.IniFormat)
    win = MainWindow(playback=False, settings=settings)
    win.notifier.dialogs_enabled = False
    win.resize(1366, 768)
    win.show()
    s, panel = win.session, win.side_by_side

    def wait(until, timeout: float = 120.0) -> None:
        end = time.monotonic() + timeout
        while not until():
            if time.monotonic() > end:
                raise TimeoutError("the window did not get there")
            app.processEvents()
            time.sleep(0.02)

    s.open_manifest(REPO / "assets" / "demo" / "manifest.csv")
    s.load_model("reference")
    wait(lambda: win.is_ready)
    panel.add_model("oracle")
    wait(lambda: "oracle" in panel.state.answers)
    win.answer_tabs.setCurrentWidget(panel)
    win.splitters["bottom"].setSizes([420, 560])
    panel.start_sweep("ENERGY")
    wait(lambda: bool(panel.sweep_result))
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    win.grab().save(out)
    print(f"saved {out} ({win.width()}x{win.height()})")
    win.close()
    Path(settings.fileName()).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
