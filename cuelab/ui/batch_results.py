"""The results of a batch run as the panel shows them: summary, confusion, plots.

Each is a tab of :class:`~cuelab.ui.results_view.ResultsTabs`, beside the
run folder's other tables (tests, reliance, calibration, channels) and the
comparison with a second run; the summary marks its CI warnings inline.

The summary table sorts numerically (numbers shown to three decimals, the
full value in the tooltip); the confusion matrix of the first model under a
chosen condition lists a cell's clips on a click (LIT-style drill-down, the
window shows them in the Dataset tab); plots are thumbnails that open large.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPixmap, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cuelab.ui.batch_jobs import BatchResult
from cuelab.ui.results_view import ResultsTabs, configure_table, fit_columns, mark_ci_notes
from cuelab.ui.widgets import ElidedLabel


class _PlotThumb(QLabel):
    """A plot in the gallery; a click opens it large."""

    clicked = Signal(object)

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self.path)
        super().mouseReleaseEvent(event)


class ResultsView(QWidget):
    """Summary table, confusion matrix and plot gallery of one :class:`BatchResult`.

    Signals:
        drill_down(object, str): a confusion cell was clicked: its clips' ids
            and a description (``angry → happy · correct``).
    """

    drill_down = Signal(object, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: BatchResult | None = None
        self.summary_model = QStandardItemModel(self)
        self.summary_model.setSortRole(Qt.ItemDataRole.UserRole)
        self.summary_view = QTableView()
        self.summary_view.setModel(self.summary_model)
        self.summary_view.setSortingEnabled(True)
        self.summary_view.verticalHeader().setVisible(False)
        self.confusion_combo = QComboBox()
        self.confusion_combo.setToolTip("Condition of the confusion matrix (first model)")
        self.confusion_combo.currentTextChanged.connect(self._show_confusion)
        self.confusion_table = QTableWidget(0, 0)
        self.confusion_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.confusion_table.setToolTip(
            "Rows: the label; columns: the prediction. Click a cell to list its clips "
            "in the Dataset tab."
        )
        self.confusion_table.cellClicked.connect(self._on_confusion_cell)
        self.plot_labels: list[QLabel] = []
        self.plot_dialogs: list[QDialog] = []
        self._gallery = QWidget()
        self._gallery_layout = QVBoxLayout(self._gallery)
        self._gallery_layout.setAlignment(
            Qt.AlignmentFlag.AlignTop
        )  # thumbnails stacked, not spread
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._gallery)

        # One tab per part of the run, each a table that scrolls itself (results_view).
        configure_table(self.summary_view)
        self.ci_banner = QLabel()
        self.ci_banner.setWordWrap(True)
        self.ci_banner.setStyleSheet("background: #fff1c9; padding: 4px;")
        self.ci_banner.hide()
        summary_page = QWidget()
        summary_layout = QVBoxLayout(summary_page)
        summary_layout.setContentsMargins(0, 0, 0, 0)
        summary_layout.addWidget(self.ci_banner)
        summary_layout.addWidget(self.summary_view, 1)
        confusion_page = QWidget()
        confusion_layout = QVBoxLayout(confusion_page)
        confusion_layout.setContentsMargins(0, 0, 0, 0)
        confusion_row = QHBoxLayout()
        confusion_row.addWidget(QLabel("Confusion under"))
        confusion_row.addWidget(self.confusion_combo)
        confusion_row.addStretch(1)
        confusion_layout.addLayout(confusion_row)
        confusion_layout.addWidget(self.confusion_table, 1)
        self.tabs = ResultsTabs(summary_page, confusion_page, scroll)
        self.folder_label = ElidedLabel("")
        self.detach_button = QPushButton("Own window")
        self.detach_button.setToolTip("Show the results in a window of their own (and back)")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        top.addWidget(self.folder_label, 1)
        top.addWidget(self.detach_button)
        layout.addLayout(top)
        layout.addWidget(self.tabs, 1)

    def clear(self) -> None:
        """Show nothing (a new run started: nothing of an older one may be shown)."""
        self.result = None
        self.summary_model.clear()
        self.confusion_combo.clear()
        self.confusion_table.setRowCount(0)
        self.confusion_table.setColumnCount(0)
        for label in self.plot_labels:
            self._gallery_layout.removeWidget(label)
            label.deleteLater()
        self.plot_labels = []
        self.ci_banner.hide()
        self.folder_label.setText("")
        self.tabs.show_folder(None, has_plots=False)

    def show_result(self, result: BatchResult) -> None:
        """Show ``result``."""
        self.result = result
        self.summary_model.clear()
        self.summary_model.setHorizontalHeaderLabels(result.header)
        for row in result.rows:
            self.summary_model.appendRow([_summary_item(cell) for cell in row])
        fit_columns(self.summary_view)
        self._show_ci_notes(result)
        self.folder_label.setText(str(result.folder))
        self.tabs.show_folder(result.folder, has_plots=bool(result.plots))
        self.confusion_combo.blockSignals(True)
        self.confusion_combo.clear()
        self.confusion_combo.addItems(list(result.cells))
        if result.condition in result.cells:
            self.confusion_combo.setCurrentText(result.condition)
        self.confusion_combo.blockSignals(False)
        self._show_confusion(self.confusion_combo.currentText())
        for label in self.plot_labels:
            self._gallery_layout.removeWidget(label)
            label.deleteLater()
        self.plot_labels = []
        for path, image in result.plots:
            label = _PlotThumb(path)
            label.setPixmap(QPixmap.fromImage(image))
            label.setToolTip(f"{path}\nClick to open it large")
            label.setAlignment(Qt.AlignmentFlag.AlignHCenter)
            label.clicked.connect(self.open_plot)
            self._gallery_layout.addWidget(label)
            self.plot_labels.append(label)

    def _show_ci_notes(self, result: BatchResult) -> None:
        """The CI warnings inline: marked rows, the note beside the interval, a banner."""
        header = self.summary_view.horizontalHeader()
        if "ci_note" in result.header and "uar_ci_high" in result.header:
            visual = header.visualIndex(result.header.index("uar_ci_high"))
            header.moveSection(header.visualIndex(result.header.index("ci_note")), visual + 1)
        n = mark_ci_notes(self.summary_model, result.header, self)
        if n:  # a note is read, not scanned: wider than other text columns
            col = result.header.index("ci_note")
            self.summary_view.resizeColumnToContents(col)
            self.summary_view.setColumnWidth(col, min(self.summary_view.columnWidth(col), 420))
        notes = sorted({r[result.header.index("ci_note")] for r in result.rows} - {""}) if n else []
        self.ci_banner.setText(f"⚠ {n} row(s) with a CI warning: " + "; ".join(notes))
        self.ci_banner.setToolTip(self.ci_banner.text())
        self.ci_banner.setVisible(bool(n))

    def _confusion_axes(self, condition: str) -> tuple[list[str], list[str]]:
        result = self.result
        if result is None or condition not in result.cells:
            return [], []
        return list(result.labels), [*result.labels, "unparsed"]  # as confusion.csv

    def _show_confusion(self, condition: str) -> None:
        """Counts of (label, prediction) under ``condition``; a click lists the cell's clips."""
        rows, columns = self._confusion_axes(condition)
        table = self.confusion_table
        table.setRowCount(len(rows))
        table.setColumnCount(len(columns))
        table.setVerticalHeaderLabels(rows)
        table.setHorizontalHeaderLabels(columns)
        cells = self.result.cells.get(condition, {}) if self.result is not None else {}
        for i, label in enumerate(rows):
            for j, pred in enumerate(columns):
                n = len(cells.get((label, pred), []))
                item = QTableWidgetItem(str(n))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                if n and label == pred:
                    item.setBackground(QColor("#d8ecd8"))
                elif n:
                    item.setBackground(QColor("#f6dede"))
                table.setItem(i, j, item)
        table.resizeColumnsToContents()

    def _on_confusion_cell(self, i: int, j: int) -> None:
        condition = self.confusion_combo.currentText()
        rows, columns = self._confusion_axes(condition)
        if self.result is None or not (0 <= i < len(rows) and 0 <= j < len(columns)):
            return
        ids = self.result.cells[condition].get((rows[i], columns[j]), [])
        self.drill_down.emit(list(ids), f"{rows[i]} → {columns[j]} · {condition}")

    def open_plot(self, path: Path) -> QDialog:
        """Show one plot at full size in its own (non-modal, resizable) window."""
        dialog = QDialog(self)
        dialog.setWindowTitle(path.name)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        image = QLabel()
        image.setPixmap(QPixmap(str(path)))
        area = QScrollArea()
        area.setWidget(image)
        layout = QVBoxLayout(dialog)
        layout.addWidget(area)
        screen = self.screen().availableGeometry() if self.screen() else None
        size = image.pixmap().size()
        if screen is not None:
            dialog.resize(
                min(size.width() + 40, screen.width()), min(size.height() + 40, screen.height())
            )
        dialog.show()
        self.plot_dialogs.append(dialog)
        return dialog


def _summary_item(cell: str) -> QStandardItem:
    """A summary cell: numbers shown to 3 decimals (integers whole) and sorted as numbers."""
    try:
        value = float(cell)
    except ValueError:
        item = QStandardItem(cell)
        item.setData(cell, Qt.ItemDataRole.UserRole)
        item.setToolTip(cell)  # a long spec is elided in the middle; here it is whole
    else:
        text = f"{value:.0f}" if value.is_integer() and "." not in cell else f"{value:.3f}"
        item = QStandardItem(text if cell.strip().lower() != "nan" else "—")
        item.setData(value, Qt.ItemDataRole.UserRole)
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        item.setToolTip(cell)
    item.setEditable(False)
    return item
