"""Small widgets shared by the panels: an elided label and a scroll wrapper.

A plain ``QLabel`` asks for the width of its whole text, so one long file
name made the window 2186 px wide and it never shrank again. An
:class:`ElidedLabel` asks for almost nothing and draws its text elided in the
middle (the start and the end of a clip name are what tell clips apart); the
full text is in the tooltip.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QSizePolicy, QWidget

MIN_ELIDED_CHARS = 8


class ElidedLabel(QLabel):
    """One line of text, elided in the middle to the space it is given.

    ``text()`` returns the full text; the widget never asks for more width than
    about :data:`MIN_ELIDED_CHARS` characters, so it cannot widen its window.
    """

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setToolTip(text)
        self.setWordWrap(False)

    def setText(self, text: str) -> None:
        """Set the full text (and the tooltip that shows it whole)."""
        super().setText(text)
        self.setToolTip(text)

    def minimumSizeHint(self) -> QSize:
        fm = self.fontMetrics()
        return QSize(fm.averageCharWidth() * MIN_ELIDED_CHARS, fm.height())

    def sizeHint(self) -> QSize:
        fm = self.fontMetrics()
        return QSize(min(fm.horizontalAdvance(self.text()), 400) + 4, fm.height())

    def elided_text(self) -> str:
        """The text as drawn at the current width."""
        return self.fontMetrics().elidedText(
            self.text(), Qt.TextElideMode.ElideMiddle, max(0, self.contentsRect().width())
        )

    def paintEvent(self, _event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setPen(self.palette().color(self.foregroundRole()))
        align = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        p.drawText(self.contentsRect(), align, self.elided_text())
        p.end()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.update()


def scrolled(widget: QWidget, horizontal: bool = False) -> QScrollArea:
    """``widget`` in a frameless scroll area, so its height never sets the window's minimum.

    Args:
        widget: the panel.
        horizontal: allow a horizontal scroll bar too (otherwise the panel's
            minimum width still counts, so nothing is cut at the side).
    """
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    if not horizontal:
        area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        bar = area.verticalScrollBar().sizeHint().width()
        area.setMinimumWidth(widget.minimumSizeHint().width() + bar)
    area.setMinimumHeight(60)
    return area
