"""Save docs/agreement.png: the Agreement tab on the demo clips labelled by two annotators.

Why: the README shows what team annotation looks like; this remakes the picture
from the code as it is (run under ``xvfb-run -a`` or with
``QT_QPA_PLATFORM=offscreen``). The labels are made up here, with a fixed
seed: Alice mostly agrees with the manifest, Bob confuses happy with angry and
sad with neutral more often, and each leaves a few clips unlabelled.

    xvfb-run -a python scripts/agreement_screenshot.py [docs/agreement.png]
"""

from __future__ import annotations

import csv
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "assets" / "demo"
CONFUSE = {"happy": "angry", "angry": "happy", "sad": "neutral", "neutral": "sad"}


def make_dataset(folder: Path) -> Path:
    """The demo clips, their manifest, and Alice's and Bob's sidecars."""
    from cuelab.core.datasets.annotations import save_annotation

    with (DEMO / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:48]
    manifest = folder / "demo.csv"
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            shutil.copy(DEMO / row["path"], folder / row["path"])
            writer.writerow(row)
    rng = random.Random(7)
    for row in rows:
        truth = row["label"]
        if rng.random() < 0.9:
            alice = truth if rng.random() < 0.85 else CONFUSE[truth]
            note = "voice cracks" if rng.random() < 0.1 else ""
            save_annotation(manifest, row["path"], alice, note, annotator="alice")
        if rng.random() < 0.85:
            bob = truth if rng.random() < 0.7 else CONFUSE[truth]
            save_annotation(manifest, row["path"], bob, "", annotator="bob")
    return manifest


def main(out: str = "docs/agreement.png") -> int:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    import pyqtgraph as pg

    from cuelab.ui.main_window import MainWindow

    pg.setConfigOptions(background="w", foreground="k")
    with tempfile.TemporaryDirectory() as tmp:
        manifest = make_dataset(Path(tmp))
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        settings.setValue("annotation/annotator", "alice")
        win = MainWindow(playback=False, settings=settings)
        win.notifier.dialogs_enabled = False
        win.resize(1366, 768)
        win.show()
        win.session.open_manifest(manifest)
        win.session.load_model("reference")
        agree = win.agreement_panel
        start = time.monotonic()
        while time.monotonic() - start < 120:
            app.processEvents()
            ready = win.is_ready and agree.result is not None
            if ready and len(agree.result.annotators) == 2 and not agree.slot.busy:
                break
            time.sleep(0.02)
        else:
            print("agreement_screenshot: the window did not get ready", file=sys.stderr)
            return 3
        win.tabs.setCurrentWidget(agree.parentWidget().parentWidget())
        win.splitters["main"].setSizes([760, 606])
        for _ in range(50):
            app.processEvents()
            time.sleep(0.01)
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        win.grab().save(out)
        print(f"wrote {out} ({win.width()}x{win.height()}); {agree.summary.text()}")
        win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
