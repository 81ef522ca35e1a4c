"""A run folder's tables as the Batch tab shows them: one tab per file, every row.

The second trial found the summary five rows high inside three levels of
scrolling, and the tests and the CI warnings never shown. Here each table is a
plain table view that scrolls itself (the one scroll a reader needs), every
CSV is read by column *name* (runs written by older or newer versions add or
lack columns), and a tab exists only when its file does. Long model specs are
elided in the middle, where ``qwen2-audio:/models/…/Qwen2-Audio-7B`` keeps the
family and the checkpoint that tell two models apart. A second run folder can
be compared cell by cell (B − A), matched on model, condition and seed.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent, QColor, QShowEvent, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStyle,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cuelab.ui.widgets import ElidedLabel

KEY_COLUMNS = ("model", "condition", "seed")
# Tab title -> the files it shows, in order (a tab appears when any exists).
FILE_TABS: dict[str, tuple[str, ...]] = {
    "Tests": ("tests.csv",),
    "Reliance": ("reliance.csv", "reliance_index.csv"),
    "Calibration": ("calibration.csv",),
    "Channels": ("channels.csv",),
}
# Columns read first, whatever their place in the file (the rest follow in file order).
LEADING = {
    "summary.csv": (
        "model",
        "condition",
        "seed",
        "n",
        "uar",
        "uar_ci_low",
        "uar_ci_high",
        "ci_note",
    ),
    "tests.csv": ("model", "family", "condition_a", "condition_b", "seed", "p_holm", "p_mcnemar"),
}
MAX_COLUMN_PX = 240  # wider cells (a model spec, a note) are elided; the tooltip has them whole
WARN_COLOUR = QColor("#fff1c9")
ALPHA = 0.05


@dataclass
class CsvTable:
    """One CSV of a run folder, read by column name."""

    path: Path | None
    columns: list[str]
    rows: list[dict[str, str]] = field(default_factory=list)


def read_table(path: Path) -> CsvTable | None:
    """``path`` as a :class:`CsvTable`; None when it is missing or not a readable CSV."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = [{k: (v or "") for k, v in row.items() if k is not None} for row in reader]
            columns = list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return CsvTable(path, columns, rows) if columns else None


def as_number(text: str) -> float | None:
    """The cell as a float, or None (empty, text, or NaN)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def numeric_columns(table: CsvTable, exclude: tuple[str, ...] = KEY_COLUMNS) -> list[str]:
    """Columns whose every non-empty cell is a number (and at least one is)."""
    out = []
    for col in table.columns:
        if col in exclude:
            continue
        cells = [r.get(col, "") for r in table.rows if r.get(col, "").strip()]
        if cells and all(_is_number(c) for c in cells):
            out.append(col)
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def row_key(row: dict[str, str]) -> tuple[str, str, str]:
    """model, condition and seed of a summary row ("" where a column is absent)."""
    return (row.get("model", ""), row.get("condition", ""), row.get("seed", ""))


@dataclass
class DeltaTable:
    """Two summaries compared: per key, per numeric column, (A, B, B − A).

    A value is None where a side lacks the row, the column or a number.
    """

    columns: list[str]
    rows: list[
        tuple[tuple[str, str, str], dict[str, tuple[float | None, float | None, float | None]]]
    ]


def summary_delta(a: CsvTable, b: CsvTable) -> DeltaTable:
    """Compare run B with run A cell by cell, matched on model, condition and seed."""
    columns = [c for c in numeric_columns(a) if c in numeric_columns(b)]
    rows_a = {row_key(r): r for r in a.rows}
    rows_b = {row_key(r): r for r in b.rows}
    keys = list(rows_a) + [k for k in rows_b if k not in rows_a]
    out = []
    for key in keys:
        ra, rb = rows_a.get(key, {}), rows_b.get(key, {})
        cells = {}
        for col in columns:
            va, vb = as_number(ra.get(col, "")), as_number(rb.get(col, ""))
            cells[col] = (va, vb, None if va is None or vb is None else vb - va)
        out.append((key, cells))
    return DeltaTable(columns, out)


def ordered_columns(table: CsvTable) -> list[str]:
    """The table's columns, the ones a reader looks for first leading."""
    lead = LEADING.get(table.path.name if table.path else "", ())
    first = [c for c in lead if c in table.columns]
    return first + [c for c in table.columns if c not in first]


def cell_item(text: str) -> QStandardItem:
    """A cell: numbers to 3 decimals (sorted as numbers), text as is; the tooltip is exact."""
    value = as_number(text)
    if value is None:
        item = QStandardItem("—" if text.strip().lower() == "nan" else text)
        item.setData(text, Qt.ItemDataRole.UserRole)
    else:
        whole = value.is_integer() and "." not in text and "e" not in text.lower()
        item = QStandardItem(f"{value:.0f}" if whole else f"{value:.3f}")
        item.setData(value, Qt.ItemDataRole.UserRole)
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    item.setToolTip(text)
    item.setEditable(False)
    return item


def configure_table(view: QTableView) -> None:
    """A results table: sortable, text elided in the middle, compact rows."""
    view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    view.setWordWrap(False)
    view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # file order first
    view.setSortingEnabled(True)
    view.setAlternatingRowColors(True)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 6)
    view.setMinimumHeight(80)


def fit_columns(view: QTableView) -> None:
    """Columns sized to their contents, none wider than :data:`MAX_COLUMN_PX`."""
    view.resizeColumnsToContents()
    header = view.horizontalHeader()
    for j in range(header.count()):
        if header.sectionSize(j) > MAX_COLUMN_PX:
            header.resizeSection(j, MAX_COLUMN_PX)


def mark_ci_notes(model: QStandardItemModel, header: list[str], view: QWidget) -> int:
    """Give each row with a ``ci_note`` a warning icon and colour; return how many have one."""
    if "ci_note" not in header:
        return 0
    col = header.index("ci_note")
    icon = view.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
    count = 0
    for i in range(model.rowCount()):
        item = model.item(i, col)
        if item is None or not item.text().strip():
            continue
        count += 1
        item.setIcon(icon)
        item.setToolTip(f"CI warning: {item.text()}")
        for j in range(model.columnCount()):
            cell = model.item(i, j)
            if cell is not None:
                cell.setBackground(WARN_COLOUR)
    return count


class CsvTableView(QWidget):
    """One or more CSVs of a run, each a titled, sortable table showing every row."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.views: list[QTableView] = []
        self.models: list[QStandardItemModel] = []
        self._pending: list[CsvTable] | None = None

    def set_tables(self, tables: list[CsvTable]) -> None:
        """Show ``tables`` when the page is first shown (a run's result arrives on the GUI
        thread; building tables nobody looks at would only stall it)."""
        self._pending = tables
        if self.isVisible():
            self.show_tables(tables)

    def showEvent(self, event: QShowEvent) -> None:
        if self._pending is not None:
            self.show_tables(self._pending)
        super().showEvent(event)

    def show_tables(self, tables: list[CsvTable]) -> None:
        """Show ``tables`` one under the other (each named when there are several)."""
        self._pending = None
        while self.layout_.count():
            w = self.layout_.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        self.views, self.models = [], []
        for table in tables:
            if len(tables) > 1 and table.path is not None:
                self.layout_.addWidget(QLabel(f"<b>{table.path.name}</b>"))
            model = QStandardItemModel(self)
            model.setSortRole(Qt.ItemDataRole.UserRole)
            columns = ordered_columns(table)
            model.setHorizontalHeaderLabels(columns)
            for row in table.rows:
                model.appendRow([cell_item(row.get(c, "")) for c in columns])
            self._mark_significant(model, columns)
            view = QTableView()
            configure_table(view)
            view.setModel(model)
            fit_columns(view)
            self.layout_.addWidget(view, 1)
            self.views.append(view)
            self.models.append(model)

    @staticmethod
    def _mark_significant(model: QStandardItemModel, columns: list[str]) -> None:
        """Bold a Holm-corrected p below :data:`ALPHA` (the uncorrected one is not the claim)."""
        if "p_holm" not in columns:
            return
        col = columns.index("p_holm")
        for i in range(model.rowCount()):
            item = model.item(i, col)
            value = as_number(item.toolTip()) if item is not None else None
            if item is not None and value is not None and value < ALPHA:
                font = item.font()
                font.setBold(True)
                item.setFont(font)
                item.setToolTip(f"{item.toolTip()} (< {ALPHA} after Holm's correction)")


class CompareView(QWidget):
    """This run against another, cell by cell: B − A per numeric summary column.

    A is the run on show; B is the one chosen with "Compare with run…". The
    tooltip of a cell holds both values; rows only one run has say so.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.base: CsvTable | None = None
        self.other: CsvTable | None = None
        self.delta: DeltaTable | None = None
        self.choose_button = QPushButton("Compare with run…")
        self.choose_button.setToolTip("Choose a second run folder (B); cells show B − A")
        self.choose_button.clicked.connect(self._choose)
        self.caption = ElidedLabel("Choose a second run to compare with this one")
        self.values_box = QCheckBox("A and B too")
        self.values_box.setToolTip("Show each run's value beside the difference")
        self.values_box.toggled.connect(lambda _on: self._refresh())
        self.model = QStandardItemModel(self)
        self.model.setSortRole(Qt.ItemDataRole.UserRole)
        self.view = QTableView()
        configure_table(self.view)
        self.view.setModel(self.model)
        row = QHBoxLayout()
        row.addWidget(self.choose_button)
        row.addWidget(self.caption, 1)
        row.addWidget(self.values_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.view, 1)

    def set_base(self, summary: CsvTable | None) -> None:
        self.base = summary
        self._refresh()

    def _choose(self) -> None:
        start = str(self.base.path.parent.parent) if self.base and self.base.path else ""
        folder = QFileDialog.getExistingDirectory(self, "Compare with run", start)
        if folder:
            self.compare_with(Path(folder))

    def compare_with(self, folder: Path) -> bool:
        """Compare with ``folder``'s summary.csv; False (and a note) when it has none."""
        other = read_table(Path(folder) / "summary.csv")
        if other is None:
            self.caption.setText(f"{folder}: no readable summary.csv")
            return False
        self.other = other
        self._refresh()
        return True

    def _refresh(self) -> None:
        self.model.clear()
        if self.base is None or self.other is None:
            self.delta = None
            return
        delta = self.delta = summary_delta(self.base, self.other)
        a = self.base.path.parent if self.base.path else "A"
        b = self.other.path.parent if self.other.path else "B"
        self.caption.setText(f"B − A · A = {a} · B = {b}")
        both = self.values_box.isChecked()
        names = [
            name
            for c in delta.columns
            for name in ((f"A {c}", f"B {c}", f"Δ {c}") if both else (f"Δ {c}",))
        ]
        self.model.setHorizontalHeaderLabels([*KEY_COLUMNS, *names])
        for key, cells in delta.rows:
            items = [cell_item(k) for k in key]
            for col in delta.columns:
                va, vb, d = cells[col]
                if both:
                    items += [cell_item("" if v is None else repr(v)) for v in (va, vb)]
                items.append(_delta_item(va, vb, d))
            self.model.appendRow(items)
        fit_columns(self.view)


def _delta_item(va: float | None, vb: float | None, d: float | None) -> QStandardItem:
    """B − A, coloured by sign; "only in A/B" where one run lacks the row or value."""
    if d is None:
        text = (
            "only in A" if vb is None and va is not None else "only in B" if vb is not None else "—"
        )
        item = QStandardItem(text)
        item.setData(math.inf, Qt.ItemDataRole.UserRole)
        item.setForeground(QColor("#888888"))
    else:
        whole = va is not None and vb is not None and va.is_integer() and vb.is_integer()
        item = QStandardItem("0" if d == 0 else f"{d:+.0f}" if whole else f"{d:+.3f}")
        item.setData(d, Qt.ItemDataRole.UserRole)
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if d:
            item.setForeground(QColor("#1b7a1b" if d > 0 else "#b22222"))
    item.setToolTip(f"A: {_fmt(va)}\nB: {_fmt(vb)}")
    item.setEditable(False)
    return item


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.6g}"


class ResultsTabs(QTabWidget):
    """The tabs of a run: Summary, Tests, Confusion, Reliance, Calibration, Channels, Plots, Compare.

    Summary, Confusion and Plots are pages the caller built; the others are
    read from the run folder and exist only when their file does.
    """

    def __init__(self, summary: QWidget, confusion: QWidget, plots: QWidget) -> None:
        super().__init__()
        self.setDocumentMode(True)
        self.fixed = {"Summary": summary, "Confusion": confusion, "Plots": plots}
        self.file_pages = {name: CsvTableView() for name in FILE_TABS}
        self.compare = CompareView()
        self._arrange([])

    def titles(self) -> list[str]:
        return [self.tabText(i) for i in range(self.count())]

    def page(self, title: str) -> QWidget:
        if title == "Compare":
            return self.compare
        return self.fixed.get(title) or self.file_pages[title]

    def _arrange(self, present: list[str], plots: bool = False, compare: bool = False) -> None:
        current = self.tabText(self.currentIndex()) if self.count() else "Summary"
        while self.count():
            self.removeTab(0)
        order = ["Summary", "Tests", "Confusion", "Reliance", "Calibration", "Channels"]
        for title in order:
            if title == "Summary" or title in present:
                self.addTab(self.page(title), title)
        if plots:
            self.addTab(self.fixed["Plots"], "Plots")
        if compare:
            self.addTab(self.compare, "Compare")
        titles = self.titles()
        self.setCurrentIndex(titles.index(current) if current in titles else 0)

    def show_folder(self, folder: Path | None, has_plots: bool) -> None:
        """Read ``folder``'s CSVs and show a tab for each that exists (None: just the fixed)."""
        present = []
        if folder is not None:
            for title, names in FILE_TABS.items():
                tables = [t for t in (read_table(folder / n) for n in names) if t is not None]
                if tables:
                    self.file_pages[title].set_tables(tables)
                    present.append(title)
        if folder is not None and (folder / "confusion.csv").is_file():
            present.append("Confusion")
        summary = read_table(folder / "summary.csv") if folder is not None else None
        self.compare.set_base(summary)
        self._arrange(present, plots=has_plots, compare=summary is not None)


class DetachHost(QWidget):
    """Holds a widget in its place, or in its own window (closing the window brings it back)."""

    attached_changed = Signal(bool)

    def __init__(self, child: QWidget, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.child = child
        self.title = title
        self.window_: _DetachedWindow | None = None
        self.placeholder = QWidget()
        note = QLabel("The results are in their own window.")
        back = QPushButton("Bring them back")
        back.clicked.connect(self.attach)
        ph = QVBoxLayout(self.placeholder)
        ph.addWidget(note)
        ph.addWidget(back)
        ph.addStretch(1)
        self.placeholder.hide()
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.layout_.addWidget(child)
        self.layout_.addWidget(self.placeholder)

    @property
    def detached(self) -> bool:
        return self.window_ is not None

    def toggle(self) -> None:
        self.attach() if self.detached else self.detach()

    def detach(self) -> QWidget:
        """Move the widget into a window of its own, sized to most of the screen."""
        if self.window_ is None:
            self.layout_.removeWidget(self.child)
            self.window_ = _DetachedWindow(self)
            self.window_.setWindowTitle(self.title)
            QVBoxLayout(self.window_).addWidget(self.child)
            self.child.show()
            screen = self.screen().availableGeometry() if self.screen() else None
            if screen is not None:
                self.window_.resize(int(screen.width() * 0.8), int(screen.height() * 0.8))
            self.placeholder.show()
            self.window_.show()
            self.attached_changed.emit(False)
        return self.window_

    def attach(self) -> None:
        """Put the widget back in its place (and close its window)."""
        window, self.window_ = self.window_, None
        if window is None:
            return
        self.child.setParent(self)
        self.layout_.insertWidget(0, self.child)
        self.child.show()
        self.placeholder.hide()
        window.host = None
        window.close()
        window.deleteLater()
        self.attached_changed.emit(True)


class _DetachedWindow(QWidget):
    def __init__(self, host: DetachHost) -> None:
        # A window of its own, but owned by the host: it closes with the main window
        # and never keeps the application alive after it.
        super().__init__(host, Qt.WindowType.Window)
        self.host: DetachHost | None = host

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.host is not None:
            self.host.attach()
        super().closeEvent(event)
