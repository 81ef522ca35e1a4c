"""Start the window: ``cuelab`` / ``cuelab gui [AUDIO] [--screenshot PNG]``.

Only Qt, pyqtgraph and the light core modules are imported here; torch and
transformers are imported by the model worker, after the window has painted.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)

SCREENSHOT_SETTLE_MS = 300


def run_gui(
    audio: str | Path | None = None,
    screenshot: str | Path | None = None,
    timeout_s: float = 180.0,
    model_spec: str | None = "reference",
    restore: bool = False,
) -> int:
    """Open the window and run the event loop.

    Args:
        audio: a file to open instead of the bundled demo dataset.
        screenshot: when given, save a PNG of the window once every panel has
            drawn (features, tokens, a prediction, the spectrogram) and exit.
        timeout_s: in screenshot mode, give up after this long (exit 3)
            rather than hang.
        model_spec: the model loaded at start (None: none).
        restore: reopen the last session's manifest, model and norms (from
            QSettings) instead; never in screenshot mode.

    Returns:
        The exit status.
    """
    if screenshot is not None:
        problem = _unwritable(Path(screenshot))
        if problem:
            print(
                f"cuelab: error: cannot write screenshot {screenshot}: {problem}", file=sys.stderr
            )
            return 1
    import pyqtgraph as pg
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    _qt_messages_to_log()
    pg.setConfigOptions(background="w", foreground="k", antialias=True)
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "cuelab"])
    app.setApplicationName("CueLab")
    app.setOrganizationName("CueLab")
    app.setDesktopFileName("cuelab")

    from PySide6.QtCore import QSettings

    from cuelab.ui.main_window import MainWindow
    from cuelab.ui.notify import install_excepthook

    # A screenshot shows the bundled demo at the default size, whatever the user last had.
    settings = QSettings() if screenshot is None else None
    window = MainWindow(playback=screenshot is None, settings=settings)
    install_excepthook(window.notifier, window)
    window.show()
    if settings is not None and restore:
        QTimer.singleShot(0, lambda: window.restore_session(audio))
    else:
        QTimer.singleShot(0, lambda: window.open_demo(audio, model_spec))
    status = {"code": 0}
    if screenshot is not None:
        _arm_screenshot(app, window, Path(screenshot), timeout_s, status)
    code = app.exec()
    return status["code"] or code


def _qt_messages_to_log() -> None:
    """Qt's own messages (platform-plugin notes and the like) go to the log, not the terminal."""
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    levels = {
        QtMsgType.QtDebugMsg: logging.DEBUG,
        QtMsgType.QtInfoMsg: logging.INFO,
        QtMsgType.QtWarningMsg: logging.WARNING,
        QtMsgType.QtCriticalMsg: logging.ERROR,
        QtMsgType.QtFatalMsg: logging.CRITICAL,
    }
    qt_log = logging.getLogger("qt")

    def handler(kind: QtMsgType, context: object, message: str) -> None:
        qt_log.log(levels.get(kind, logging.WARNING), "%s", message)

    qInstallMessageHandler(handler)


def _unwritable(out: Path) -> str:
    """Why ``out`` cannot be written, found by trying before the window opens; or ""."""
    existed = out.exists()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "ab"):
            pass
    except OSError as exc:
        log.debug("screenshot path %s", out, exc_info=True)
        return exc.strerror or type(exc).__name__
    if not existed:
        out.unlink(missing_ok=True)
    return ""


def _arm_screenshot(app, window, out: Path, timeout_s: float, status: dict[str, int]) -> None:
    """Save ``out`` once the window is ready, or exit non-zero after ``timeout_s``."""
    from PySide6.QtCore import QTimer

    window.notifier.dialogs_enabled = False

    def shoot() -> None:
        detail = ""
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            saved = window.grab().save(str(out))
        except OSError as exc:
            log.debug("screenshot %s", out, exc_info=True)
            saved, detail = False, f": {exc.strerror or type(exc).__name__}"
        if not saved:
            print(f"cuelab: error: cannot write screenshot {out}{detail}", file=sys.stderr)
            status["code"] = 1
        window.close()
        app.exit(status["code"])

    def failed(level: str, message: str) -> None:
        """An error before the window is ready: save what it shows, and exit 1 at once."""
        if level != "error" or not timer.isActive():
            return
        timer.stop()
        status["code"] = 1
        print(f"cuelab: error: {message}", file=sys.stderr)
        QTimer.singleShot(SCREENSHOT_SETTLE_MS, shoot)

    def ready() -> None:
        if not timer.isActive():  # an error came first, or the time ran out
            return
        timer.stop()
        QTimer.singleShot(SCREENSHOT_SETTLE_MS, shoot)

    def timed_out() -> None:
        print(f"cuelab: error: the window was not ready within {timeout_s:g} s", file=sys.stderr)
        status["code"] = 3
        window.close()
        app.exit(3)

    timer = QTimer(window)
    timer.setSingleShot(True)
    timer.timeout.connect(timed_out)
    timer.start(int(timeout_s * 1000))
    window.ready.connect(ready)
    window.notifier.posted.connect(failed)
