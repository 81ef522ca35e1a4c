"""The program itself, started in a subprocess offscreen, and the Qt binding it runs on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def _run(args, tmp_path, timeout=240):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "CUELAB_LOG_DIR": str(tmp_path / "logs")}
    return subprocess.run(
        [sys.executable, "-m", "cuelab", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_gui_screenshot_smoke(tmp_path):
    from PySide6.QtGui import QImage

    out = tmp_path / "shot.png"
    proc = _run(["gui", "--screenshot", str(out), "--timeout", "120"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 20_000
    img = QImage(str(out))
    assert img.width() >= 800 and img.height() >= 600
    colours = {
        img.pixel(x, y) for x in range(0, img.width(), 37) for y in range(0, img.height(), 23)
    }
    assert len(colours) > 50  # drawn panels, not a blank window


def test_screenshot_times_out_with_a_nonzero_exit(tmp_path):
    out = tmp_path / "never.png"
    proc = _run(["gui", "--model", "none", "--screenshot", str(out), "--timeout", "2"], tmp_path)
    assert proc.returncode == 3
    assert "not ready within 2 s" in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("where", ["under_a_file", "is_folder", "proc"])
def test_an_unwritable_screenshot_path_is_one_line_before_the_window(tmp_path, where):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    out = {
        "under_a_file": blocker / "sub" / "shot.png",
        "is_folder": tmp_path,
        "proc": Path("/proc/cuelab-shot.png"),  # a file system nobody may create files in
    }[where]
    proc = _run(["gui", "--screenshot", str(out), "--timeout", "60"], tmp_path, timeout=60)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"cuelab: error: cannot write screenshot {out}")


def test_a_bad_clip_ends_screenshot_mode_at_once_with_its_error(tmp_path):
    bad = tmp_path / "BAD.wav"
    bad.write_bytes(b"RIFF not really a wave file" * 50)
    out = tmp_path / "shot.png"
    proc = _run(["gui", str(bad), "--screenshot", str(out), "--timeout", "90"], tmp_path, 80)
    assert proc.returncode == 1, proc.stderr
    errors = [x for x in proc.stderr.splitlines() if x.startswith("cuelab: error:")]
    assert len(errors) == 1 and "BAD.wav" in errors[0], proc.stderr
    assert "not ready within" not in proc.stderr
    assert out.stat().st_size > 10_000  # the window as it showed the error


def test_qt_binding_keeps_reference_counts():
    """PySide6 6.12.0 on Python 3.11 drops a reference to True on every emit and to
    None on every Python ``run()`` override: a long session then aborts with
    "deallocating None/True". This guards the environment against it."""
    from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

    class Emitter(QObject):
        sig = Signal(object)

    class Noop(QRunnable):
        def run(self) -> None:
            pass

    e = Emitter()
    e.sig.connect(lambda _v: None)
    true_before, none_before = sys.getrefcount(True), sys.getrefcount(None)
    for _ in range(200):
        e.sig.emit(1)
    pool = QThreadPool()
    keep = [Noop() for _ in range(200)]
    for r in keep:
        r.setAutoDelete(False)
        pool.start(r)
    assert pool.waitForDone(5000)
    assert sys.getrefcount(True) - true_before > -100
    assert sys.getrefcount(None) - none_before > -100


@pytest.mark.slow
def test_screenshot_at_1366x768_lies_inside_the_screen(tmp_path):
    """Under a real X server (Xvfb) of a laptop's size, the window and its grab fit it."""
    import shutil

    from PySide6.QtGui import QImage

    xvfb = shutil.which("xvfb-run")
    assert xvfb is not None, (
        "xvfb-run is missing: 'bash scripts/run.sh test' installs it (Debian xvfb)"
    )
    out = tmp_path / "laptop.png"
    env = {**os.environ, "CUELAB_LOG_DIR": str(tmp_path / "logs")}
    env.pop("QT_QPA_PLATFORM", None)
    proc = subprocess.run(
        [xvfb, "-a", "-s", "-screen 0 1366x768x24", sys.executable, "-m", "cuelab", "gui",
         "--screenshot", str(out), "--timeout", "120"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    img = QImage(str(out))
    assert 0 < img.width() <= 1366 and 0 < img.height() <= 768
