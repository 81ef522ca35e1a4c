"""Save docs/clip-selection.png: a selection dragged on the demo clip, analysed alone.

Why: the README and docs/window.md show the Praat-like selection; this remakes the
picture from the code as it is. The selection is made as the end of a drag makes it
(``ClipTools.show_span``) and the cursor readout is placed over the selection.

    QT_QPA_PLATFORM=offscreen python scripts/clip_selection_screenshot.py [docs/clip-selection.png]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "assets" / "demo" / "manifest.csv"


def main(out: str = "docs/clip-selection.png") -> int:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    import pyqtgraph as pg

    from cuelab.ui.main_window import MainWindow

    pg.setConfigOptions(background="w", foreground="k")

    def wait(cond, seconds: float = 120) -> None:
        start = time.monotonic()
        while time.monotonic() - start < seconds and not cond():
            app.processEvents()
            time.sleep(0.02)
        if not cond():
            raise SystemExit("timed out")

    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        win = MainWindow(playback=False, settings=settings)
        win.notifier.dialogs_enabled = False
        win.resize(1366, 768)
        win.show()
        win.session.open_manifest(DEMO)
        win.session.load_model("reference")
        wait(lambda: win.is_ready)
        view, s = win.clip_view, win.session
        wait(lambda: view.tools.intensity is not None)
        d = view.duration
        view.tools.show_span(0.62 * d, 0.22 * d, final=True)  # dragged right to left
        wait(lambda: s.prediction is not None and s.prediction.region == s.region)
        for _ in range(30):  # the spectrogram and the layout settle
            app.processEvents()
            time.sleep(0.02)
        plot = view.spec_plot
        box = plot.getViewBox()
        spot = box.mapViewToScene(pg.Point(0.55 * d, 1500.0))
        view._on_mouse(plot, spot)  # the readout as a pointer there shows it
        app.processEvents()
        win.grab().save(str(REPO / out if not Path(out).is_absolute() else out))
        win.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
