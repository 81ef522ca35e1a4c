"""Fixtures for the window tests: a small manifest of demo clips and a ready window."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO

DEMO = REPO / "assets" / "demo"
READY_TIMEOUT_MS = 60_000


@pytest.fixture
def small_manifest(tmp_path: Path) -> Path:
    """Four demo clips (two speakers, four labels) copied into a private folder."""
    names = [
        "spk01_f_angry_01.flac",
        "spk01_f_sad_01.flac",
        "spk04_m_happy_01.flac",
        "spk04_m_neutral_01.flac",
    ]
    with (DEMO / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        rows = {r["path"]: r for r in csv.DictReader(fh)}
    out = tmp_path / "data" / "small.csv"
    out.parent.mkdir()
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[names[0]]))
        writer.writeheader()
        for name in names:
            shutil.copy(DEMO / name, out.parent / name)
            writer.writerow(rows[name])
    return out


@pytest.fixture
def make_window(qtbot):
    """Build a window (playback off unless asked); closed (workers awaited) after the test."""
    import pyqtgraph as pg

    from cuelab.ui.main_window import MainWindow

    pg.setConfigOptions(background="w", foreground="k")
    made = []

    def make(playback: bool = False):
        win = MainWindow(playback=playback)
        win.notifier.dialogs_enabled = False
        qtbot.addWidget(win)
        win.resize(1200, 800)
        win.show()
        made.append(win)
        return win

    yield make
    for win in made:
        win.close()


@pytest.fixture
def ready_window(make_window, qtbot, small_manifest):
    """A window on the small manifest with the reference model, every panel drawn."""
    win = make_window()
    win.session.open_manifest(small_manifest)
    win.session.load_model("reference")
    qtbot.waitUntil(lambda: win.is_ready, timeout=READY_TIMEOUT_MS)
    return win
