"""How long the window's GUI thread stalls: opening a 10-minute clip, and a token edit.

A 10 ms QTimer on the GUI thread records the longest gap between its ticks
(a gap is time the window could not repaint or take input). Two figures:

1. open a 10-minute clip (voice-like tones and noise, FLAC at 16 kHz) with the
   reference model loaded, until its prediction is on screen: the longest gap,
   and the time to that prediction;
2. edit one token chip until the new prediction is drawn (median of 7 edits),
   and the longest gap meanwhile.

Figures vary with the machine and its load; compare runs on one machine.

Usage::

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/gui_stalls.py [--minutes 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf


class GapMeter:
    """Longest gap between the ticks of a 10 ms timer on the GUI thread."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.max_gap_ms = 0.0
        self._last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.max_gap_ms = 0.0
        self._last = time.perf_counter()
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.max_gap_ms = max(self.max_gap_ms, (now - self._last) * 1000)
        self._last = now

    def stop(self) -> float:
        self.timer.stop()
        return self.max_gap_ms


def make_clip(path: Path, minutes: float, sr: int = 16000) -> Path:
    """Voice-like harmonic tones (with pauses) and a little noise."""
    rng = np.random.default_rng(0)
    n = int(minutes * 60 * sr)
    t = np.arange(n) / sr
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 6))
    x *= (np.sin(2 * np.pi * 0.5 * t) > -0.3).astype(np.float64)  # pauses
    x = 0.2 * x / np.max(np.abs(x)) + 0.005 * rng.standard_normal(n)
    sf.write(str(path), x.astype(np.float32), sr, subtype="PCM_16")
    return path


def wait_until(app, predicate, timeout_s: float) -> None:
    end = time.perf_counter() + timeout_s
    while not predicate():
        if time.perf_counter() > end:
            raise TimeoutError("timed out")
        app.processEvents()
        time.sleep(0.002)


def pump(app, seconds: float) -> None:
    """Let queued work (debounced redraws, worker results, paints) run for ``seconds``."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.002)


def _percentiles(gaps: list[float]) -> dict[str, float]:
    ordered = sorted(gaps)
    p95 = ordered[min(len(ordered) - 1, int(np.ceil(0.95 * len(ordered))) - 1)]
    return {"p50": statistics.median(ordered), "p95": p95, "max": ordered[-1], "n": len(ordered)}


def action_stalls(
    app, win, clip: Path, meter: GapMeter, opens: int = 5
) -> dict[str, dict[str, float]]:
    """The longest GUI gap of each single action (the action and 300 ms after it, so its
    debounced redraws and worker results count), as p50 / p95 / max over repetitions."""
    s, view = win.session, win.clip_view
    vb = view.wave_plot.getViewBox()
    results: dict[str, list[float]] = {
        "open_long_clip": [],
        "wheel_zoom_step": [],
        "fit": [],
        "down": [],
        "model_load": [],
        "batch_start": [],
    }

    def measure(name: str, action, settle: float = 0.3) -> None:
        pump(app, 0.05)
        meter.start()
        action()
        pump(app, settle)
        results[name].append(meter.stop())

    # Opening the long clip, from a short one, until its prediction is drawn (and 300 ms).
    short = Path(__file__).resolve().parents[1] / "assets/demo/spk01_f_angry_01.flac"
    for _ in range(opens):
        s.open_file(short)
        wait_until(
            app, lambda: s.prediction is not None and s.prediction.clip_key == str(short), 120
        )
        pump(app, 0.3)

        def opened() -> bool:
            return s.prediction is not None and s.prediction.clip_key == str(clip)

        measure("open_long_clip", lambda: s.open_file(clip), settle=0.0)
        meter.start()
        wait_until(app, opened, 600)
        pump(app, 0.3)
        results["open_long_clip"][-1] = max(results["open_long_clip"][-1], meter.stop())
    # Wheel zoom on the long clip: one wheel notch is ViewBox.scaleBy by its wheel factor.
    factor = 1.0 / (1.0 + 0.02) ** (120 * 1 / 8)  # pyqtgraph's scale for one 15° notch
    for _ in range(12):
        measure("wheel_zoom_step", lambda: vb.scaleBy((factor, 1.0), center=(30.0, 0.0)))
    for _ in range(12):
        measure("wheel_zoom_step", lambda: vb.scaleBy((1.0 / factor, 1.0), center=(30.0, 0.0)))
    for i in range(8):
        vb.setXRange(60.0 * i, 60.0 * i + 20.0, padding=0)
        pump(app, 0.3)
        measure("fit", view.zoom_to_fit)
    # Down through the demo dataset, 20 times.
    demo = Path(__file__).resolve().parents[1] / "assets/demo/manifest.csv"
    s.open_manifest(demo)
    wait_until(app, lambda: s.manifest is not None and s.manifest.path == demo, 60)
    wait_until(app, lambda: s.audio is not None and s.row is not None, 60)
    table = win.dataset_panel.table
    table.setFocus()
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    for _ in range(20):
        measure("down", lambda: QTest.keyClick(table, Qt.Key.Key_Down), settle=0.4)
    # Loading a model (the reference model again: its import is warm, its weights are read).
    for _ in range(3):
        before = s.model

        def load() -> None:
            s.load_model("reference")

        measure("model_load", load, settle=0.0)
        meter.start()
        wait_until(app, lambda b=before: s.model is not b, 120)
        pump(app, 0.3)
        results["model_load"][-1] = max(results["model_load"][-1], meter.stop())
    # Starting a batch run (4 demo clips, the loaded model): the run loads its own model
    # and decodes in a worker; measured from Start to 1.5 s after, then waited out.
    panel = win.batch_panel
    panel.limit_spin.setValue(4)
    for i in range(3):
        panel.out_edit.setText(str(clip.parent / f"run{i}"))
        measure("batch_start", panel.start, settle=1.5)
        wait_until(app, lambda: panel.state != "running", 300)
    return {f"action:{k}": _percentiles(v) for k, v in results.items() if v}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--actions",
        action="store_true",
        help="also: p50/p95/max of the longest gap per wheel-zoom step, Fit, Down, model load, "
        "batch start, opening the long clip",
    )
    parser.add_argument(
        "--opens", type=int, default=5, help="with --actions: times the long clip is opened"
    )
    args = parser.parse_args(argv)

    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    pg.setConfigOptions(background="w", foreground="k")
    app = QApplication.instance() or QApplication([])
    from cuelab.core.cues.tokens import VOCAB
    from cuelab.ui.main_window import MainWindow

    win = MainWindow(playback=False)
    win.notifier.dialogs_enabled = False
    win.resize(1366, 768)
    win.show()
    s = win.session
    s.load_model("reference")
    # A short clip first: openSMILE's and the model's one-time imports are not measured.
    s.open_file(Path(__file__).resolve().parents[1] / "assets/demo/spk01_f_angry_01.flac")
    wait_until(app, lambda: s.prediction is not None, 120)
    meter = GapMeter()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "long.flac", args.minutes)
        for _ in range(20):
            app.processEvents()
        meter.start()
        t0 = time.perf_counter()
        s.open_file(clip)
        wait_until(
            app, lambda: s.prediction is not None and s.prediction.clip_key == str(clip), 600
        )
        out["open_long_clip_max_gap_ms"] = meter.stop()
        out["open_long_clip_to_prediction_s"] = time.perf_counter() - t0
        for _ in range(50):
            app.processEvents()
        latencies = []
        meter.start()
        for token in VOCAB["PITCH"][:7] * 2:
            if len(latencies) >= 7:
                break
            if token == s.tokens["PITCH"]:
                continue
            before = win.predictions_panel.update_count
            t1 = time.perf_counter()
            win.concepts_panel.choose("PITCH", token)
            wait_until(app, lambda b=before: win.predictions_panel.update_count > b, 60)
            app.processEvents()
            latencies.append((time.perf_counter() - t1) * 1000)
        out["edit_to_repaint_median_ms"] = statistics.median(latencies)
        out["edit_max_gap_ms"] = meter.stop()
        if args.actions:
            out.update(action_stalls(app, win, clip, meter, args.opens))
    win.close()
    if args.json:
        print(json.dumps(out, default=float))
    else:
        for key in sorted(k for k in out if k.startswith("action:")):
            print(key, out[key])
        print(
            f"{args.minutes:g}-minute clip: longest GUI gap {out['open_long_clip_max_gap_ms']:.0f} ms, "
            f"prediction after {out['open_long_clip_to_prediction_s']:.1f} s"
        )
        print(
            f"token edit to repaint: median {out['edit_to_repaint_median_ms']:.0f} ms, "
            f"longest GUI gap {out['edit_max_gap_ms']:.0f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
