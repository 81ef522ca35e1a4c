"""One place for errors: a notification line, the session's list, the log file, one dialog.

Expected failures (a bad file, a model that does not load) arrive as one-line
messages from workers and are shown in the status bar, once; the panel where
they happened keeps showing them until the user acts, and every error and
warning of the session is kept in :class:`MessagesView` (the Messages dock). Unexpected
exceptions on the GUI thread go through :func:`install_excepthook`: the full
traceback goes to the log (``cuelab.logs``), the user sees one dialog, and
while a dialog is open further errors only reach the status bar and the log,
so an error inside a paint loop cannot bury the window under dialogs.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from types import TracebackType

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QStatusBar,
    QToolButton,
    QWidget,
)

from cuelab.logs import log_path

log = logging.getLogger("cuelab.ui")


class Notifier(QObject):
    """Routes messages and errors to the window's status bar.

    Signals:
        posted(str, str): level (``info``/``warning``/``error``) and message,
            for tests and for any panel that wants to mirror them.
    """

    posted = Signal(str, str)

    def __init__(self, status_bar: QStatusBar | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._bar = status_bar
        self._dialog: QMessageBox | None = None
        self.dialogs_enabled = True
        self.last_error = ""
        self.history: list[tuple[float, str, str]] = []  # (time, level, message): not info
        self.badge = QToolButton()
        self.badge.setAutoRaise(True)
        self.badge.setVisible(False)
        if status_bar is not None:
            status_bar.addPermanentWidget(self.badge)

    def _record(self, level: str, message: str) -> None:
        self.history.append((time.time(), level, message))
        n_err = sum(1 for _t, lev, _m in self.history if lev == "error")
        n_warn = len(self.history) - n_err
        parts = [f"{n_err} error{'s' if n_err != 1 else ''}"] if n_err else []
        parts += [f"{n_warn} warning{'s' if n_warn != 1 else ''}"] if n_warn else []
        self.badge.setText("⚠ " + ", ".join(parts))
        self.badge.setToolTip(f"Last: {message}\nClick for this session's messages")
        self.badge.setStyleSheet("QToolButton { color: #b00020; }" if n_err else "")
        self.badge.setVisible(True)

    def info(self, message: str, timeout_ms: int = 4000) -> None:
        """A passing message (progress, "saved")."""
        if self._bar is not None:
            self._bar.setStyleSheet("")
            self._bar.showMessage(message, timeout_ms)
        self.posted.emit("info", message)

    def warning(self, message: str) -> None:
        """Something the user should know (kept in the session's list), not a failure."""
        log.warning("%s", message)
        self._record("warning", message)
        if self._bar is not None:
            self._bar.setStyleSheet("")
            self._bar.showMessage(f"Warning: {message}", 8000)
        self.posted.emit("warning", message)

    def error(self, message: str) -> None:
        """An expected failure: logged, listed, and shown in the status bar until the next message."""
        if message == self.last_error and self._bar is not None and self._bar.currentMessage():
            return  # the same error again (a retry loop) is not news
        self.last_error = message
        log.warning("%s", message)
        self._record("error", message)
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


class MessagesView(QListWidget):
    """This session's errors and warnings, newest last, with their time (the Messages dock)."""

    def __init__(self, notifier: Notifier, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setAlternatingRowColors(True)
        for when, level, message in notifier.history:
            self._add(when, level, message)
        notifier.posted.connect(self._on_posted)

    def _on_posted(self, level: str, message: str) -> None:
        if level != "info":
            self._add(time.time(), level, message)

    def _add(self, when: float, level: str, message: str) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(when))
        item = QListWidgetItem(f"{stamp}  {level}: {message}")
        item.setToolTip(message)
        if level == "error":
            item.setForeground(QBrush(QColor("#b00020")))
        self.addItem(item)
        self.scrollToBottom()

    def messages(self) -> list[str]:
        """The listed lines (for tests and copying)."""
        return [self.item(i).text() for i in range(self.count())]


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
