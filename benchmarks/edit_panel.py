"""The Audio edits panel: edit-to-prediction time on a 5 s clip, and GUI-thread stalls.

Opens a 5 s clip (demo clips joined) with the reference model in the window
(offscreen), shows the Edits tab, then moves the pitch slider ``--moves`` times
(alternating amounts) and times each move until the new edited prediction is
drawn (the 60 ms debounce included). A 10 ms QTimer on the GUI thread records
the longest gap between its ticks meanwhile (``GapMeter`` from
``gui_stalls.py``). The first move also analyses the clip with WORLD; it is
reported apart.

Usage::

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/edit_panel.py [--moves 9] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gui_stalls import GapMeter, wait_until

DEMO = Path(__file__).resolve().parents[1] / "assets" / "demo"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=9)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    from cuelab.core.audio.io import load_audio

    pg.setConfigOptions(background="w", foreground="k")
    app = QApplication.instance() or QApplication([])
    from cuelab.ui.main_window import MainWindow

    win = MainWindow(playback=False)
    win.notifier.dialogs_enabled = False
    win.resize(1366, 768)
    win.show()
    s, panel = win.session, win.edits_panel
    s.load_model("reference")
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        parts = [load_audio(p, 16000)[0] for p in sorted(DEMO.glob("spk04_m_*.flac"))[:4]]
        clip = Path(tmp) / "five.wav"
        sf.write(clip, np.concatenate(parts)[: 5 * 16000], 16000)
        s.open_file(clip)
        wait_until(app, lambda: s.prediction is not None and s.prediction.clip_key == str(clip),
                   120)  # fmt: skip
        win.tabs.setCurrentIndex(win.tabs.indexOf(panel.parentWidget().parentWidget()))
        meter = GapMeter()
        t0 = time.perf_counter()
        meter.start()
        wait_until(app, lambda: panel.preview is not None, 120)
        out["first_edit_ms"] = (time.perf_counter() - t0) * 1000
        out["first_edit_max_gap_ms"] = meter.stop()
        latencies = []
        meter.start()
        for k in range(args.moves):
            amount = [2.0, -2.0, 4.0][k % 3] + 0.5 * (k // 3)
            want = f"pitch={amount:+g}st"
            t1 = time.perf_counter()
            panel.set_amount("pitch", amount)
            wait_until(app, lambda w=want: panel.preview is not None and panel.preview.edit == w,
                       60)  # fmt: skip
            app.processEvents()
            latencies.append((time.perf_counter() - t1) * 1000)
        out["edit_to_prediction_median_ms"] = statistics.median(latencies)
        out["edit_to_prediction_max_ms"] = max(latencies)
        out["max_gap_ms"] = meter.stop()
    win.close()
    if args.json:
        print(json.dumps({k: round(v, 1) for k, v in out.items()}))
    else:
        print(f"first edit (WORLD analysis included): {out['first_edit_ms']:.0f} ms, "
              f"longest GUI gap {out['first_edit_max_gap_ms']:.0f} ms")  # fmt: skip
        print(f"pitch slider to prediction on a 5 s clip: median "
              f"{out['edit_to_prediction_median_ms']:.0f} ms, max "
              f"{out['edit_to_prediction_max_ms']:.0f} ms; longest GUI gap "
              f"{out['max_gap_ms']:.0f} ms")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
