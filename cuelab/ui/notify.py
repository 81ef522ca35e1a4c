"""One place for errors: a notification line, the log file, and one dialog at most.

Expected failures (a bad file, a model that does not load) arrive as one-line
messages from workers and are shown in the status bar, once. Unexpected
exceptions on the GUI thread go through :func:`install_excepthook`: the full
traceback goes to the log (``cuelab.logs``), the user sees one dialog, and
while a dialog is open further errors only reach the status bar and the log,
so an error inside a paint loop cannot bury the window under dialogs.
"""

from __future__ import annotations

import logging
import sys
import traceback
from types import TracebackType

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox, QStatusBar, QWidget

from cuelab.logs import log_path

log = logging.getLogger("cuelab.ui")


class Notifier(QObject):
    """Routes messages and errors to the window's status bar.

    Signals:
        posted(str, str): level (``info``/``error``) and message, for tests
            and for any panel that wants to mirror them.
    """

    posted = Signal(str, str)

    def __init__(self, status_bar: QStatusBar | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._bar = status_bar
        self._dialog: QMessageBox | None = None
        self.dialogs_enabled = True
        self.last_error = ""

    def info(self, message: str, timeout_ms: int = 4000) -> None:
        """A passing message (progress, "saved")."""
        if self._bar is not None:
            self._bar.setStyleSheet("")
            self._bar.showMessage(message, timeout_ms)
        self.posted.emit("info", message)

    def error(self, message: str) -> None:
        """An expected failure: logged and shown in the status bar until the next message."""
        if message == self.last_error and self._bar is not None and self._bar.currentMessage():
            return  # the same error again (a retry loop) is not news
        self.last_error = message
        log.warning("%s", message)
        if self._bar is not None:
            self._bar.setStyleSheet("QStatusBar { color: #b00020; }")
            self._bar.showMessage(f"Error: {message}")
        self.posted.emit("error", message)

    def unexpected(self, summary: str, details: str, parent: QWidget | None = None) -> None:
        """A bug: log the traceback, show one dialog at a time."""
        log.error("unexpected error: %s\n%s", summary, details)
        self.error(summary)
        if not self.dialogs_enabled or self._dialog is not None:
            return
        box = QMessageBox(
            QMessageBox.Icon.Critical, "CueLab: unexpected error", summary, parent=parent
        )
        box.setInformativeText(f"The details were written to {log_path()}.")
        box.setDetailedText(details)
        box.finished.connect(self._dialog_closed)
        self._dialog = box
        box.open()

    def _dialog_closed(self, _result: int) -> None:
        self._dialog = None


def install_excepthook(notifier: Notifier, parent: QWidget | None = None) -> None:
    """Send uncaught exceptions (slots, paint events) to ``notifier``.

    PySide6 reports exceptions raised inside slots through ``sys.excepthook``;
    without a hook they print to stderr and the user never sees them.
    """

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        summary = f"{exc_type.__name__}: {' '.join(str(exc).split())}"
        notifier.unexpected(summary, details, parent)

    sys.excepthook = hook
