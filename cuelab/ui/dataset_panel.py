"""Browse a manifest's clips, open one, and annotate it.

The highlighted row is the open clip: moving the highlight with the mouse or
the keyboard (Up/Down, Page keys, Enter) opens that row, and the annotation
box always edits the highlighted row, even in the moment before its audio has
loaded. Keys: 1-9 in the table (Alt+1-9 anywhere) pick a label of the label
set, Ctrl+Up/Down step through the clips, Ctrl+U goes to the next clip without
your label; "annotated N / M" and the progress bar count your own clips.

Your label and note are written to your own sidecar CSV
(:mod:`cuelab.core.datasets.annotations`, atomically, honouring the umask) a
moment after the typing stops, and at once when the highlight moves or the
window closes: the file is not rewritten on every keystroke. Who you are, the
label set and regions: :mod:`cuelab.ui.annotation_box`. A reopened dataset
returns to the clip you labelled last.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QModelIndex, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cuelab.core.datasets import ManifestRow
from cuelab.ui.annotation_box import AnnotationBoxMixin
from cuelab.ui.session import PredictionUpdate, Session
from cuelab.ui.widgets import ElidedLabel
from cuelab.ui.workers import Debouncer

SAVE_DEBOUNCE_MS = 400

COLUMNS = ("clip", "label", "speaker", "pred.", "yours", "note", "✓")
_COLUMN_TIPS = (
    "the clip (utterance id)",
    "the manifest's label",
    "the speaker",
    "the last prediction (the window's, or a batch run's)",
    "your label (your annotation sidecar)",
    "your note",
    "✓ when the prediction equals the manifest's label, ✗ when not",
)
_LABEL, _PRED, _ANN, _NOTE, _AGREE = 1, 3, 4, 5, 6
_INDEX = Qt.ItemDataRole.UserRole  # the manifest index, on column 0 (rows may be sorted)


class DatasetPanel(AnnotationBoxMixin, QGroupBox):
    """The open manifest as a table; the highlighted row is the open clip.

    Signals:
        labels_changed(): the label set (for the 1-9 keys) changed.
        annotations_changed(): your labels changed (or who you are): agreement is stale.
    """

    labels_changed = Signal()
    annotations_changed = Signal()

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__("Dataset", parent)
        self.session = session
        self._init_annotation_state()
        self._row_of: dict[str, int] = {}  # path -> manifest index
        self._items: list[QTableWidgetItem] = []  # column-0 item of each manifest row
        self._target: ManifestRow | None = None  # the highlighted row: what the box edits
        self._shown: Path | None = None  # the manifest the table (and the box) belong to
        self._loading_box = False
        self._note_debounce = Debouncer(SAVE_DEBOUNCE_MS, self.save_current, self)
        # The window's navigation keys (Ctrl+U, Ctrl+Up/Down): they must win over the
        # fields' own editing keys (on X11 Ctrl+U clears a line edit) and flush first.
        self.navigation_keys: list[QKeySequence] = []
        self._build()
        session.manifest_changed.connect(self._on_manifest)
        session.clip_changed.connect(self._on_clip)
        session.prediction_changed.connect(self._on_prediction)
        session.analysis_started.connect(self._on_region)
        session.clip_changed.connect(self._on_region)  # a new clip starts without a selection
        session.start_row = self._start_row

    def _build(self) -> None:
        self.path_label = ElidedLabel("No dataset")
        open_button = QPushButton("Open manifest…")
        open_button.clicked.connect(self.choose)
        top = QHBoxLayout()
        top.addWidget(self.path_label, 1)
        top.addWidget(open_button)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        for j, tip in enumerate(_COLUMN_TIPS):
            self.table.horizontalHeaderItem(j).setToolTip(tip)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.horizontalHeader().setMinimumSectionSize(22)
        # Manifest order until a header is clicked (section -1: no sort yet). A click sorts
        # once; the order then stays while labels and predictions change, as in a
        # spreadsheet (a live sort moved the typed row away, so Down skipped clips).
        sort_header = self.table.horizontalHeader()
        sort_header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        sort_header.setSectionsClickable(True)
        sort_header.setSortIndicatorShown(True)
        sort_header.sortIndicatorChanged.connect(lambda _c, _o: self.resort())
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("filter: clip, label, speaker, prediction…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self.apply_filter)
        self._subset: set[str] | None = None  # utt_ids of a confusion cell, when drilled into
        self.subset_label = QLabel("")
        self.subset_label.setStyleSheet("color: #a05000;")
        self.subset_clear = QPushButton("Show all")
        self.subset_clear.clicked.connect(lambda: self.show_subset(None))
        self.subset_label.setVisible(False)
        self.subset_clear.setVisible(False)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setTabKeyNavigation(False)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_row)
        self.table.activated.connect(lambda index: self._open_index(self._index_of(index.row())))
        self.table.installEventFilter(self)

        self.annotation_box = self._build_box()

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.filter_edit)
        subset_row = QHBoxLayout()
        subset_row.addWidget(self.subset_label, 1)
        subset_row.addWidget(self.subset_clear)
        layout.addLayout(subset_row)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.annotation_box)

    # --- manifest ----------------------------------------------------------------

    def choose(self) -> None:
        """Ask for a manifest and open it."""
        start = str(self.session.manifest.path.parent) if self.session.manifest else str(Path.cwd())
        path, _ = QFileDialog.getOpenFileName(self, "Manifest", start, "Manifest (*.csv)")
        if path:
            self.session.open_manifest(path)

    def _on_manifest(self) -> None:
        manifest = self.session.manifest
        if manifest is None:
            return
        self._note_debounce.flush()  # into the manifest it was typed for (self._shown)
        self._target = None
        self._shown = manifest.path
        self.path_label.setText(f"{manifest.path.name} · {len(manifest)} clips")
        self.path_label.setToolTip(str(manifest.path))
        self._load_annotations(manifest)
        self._restore_label_set(manifest)
        self._fill_labels()
        self._fit_columns(False)
        self.table.blockSignals(True)
        self.table.selectionModel().blockSignals(True)
        self.table.setRowCount(len(manifest))
        self._row_of = {}
        self._items = []
        for i, row in enumerate(manifest.rows):
            self._row_of[str(row.path)] = i
            pred = self.session.predictions_by_clip.get(str(row.path))
            ann = self.mine.get(row.unit)
            values = (
                row.utt_id,
                row.get("label"),
                row.get("speaker"),
                _pred_text(pred),
                ann.label if ann else "",
                ann.note if ann else "",
                "",
            )
            for j, v in enumerate(values):
                item = QTableWidgetItem(v)
                if j == 0:
                    item.setData(_INDEX, i)
                    self._items.append(item)
                self.table.setItem(i, j, item)
            self._set_agreement(i)
        self.resort()
        self._subset = None
        self.subset_label.setVisible(False)
        self.subset_clear.setVisible(False)
        self.apply_filter()
        self.table.clearSelection()
        self.table.setCurrentIndex(QModelIndex())
        self.table.selectionModel().blockSignals(False)
        self.table.blockSignals(False)
        self._fit_columns(True)
        self._show_target()

    # --- highlight = open clip -----------------------------------------------------

    def _on_current_row(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self._open_index(self._index_of(current.row()))

    def _index_of(self, visual: int) -> int:
        """The manifest index of table row ``visual`` (the table may be sorted)."""
        item = self.table.item(visual, 0)
        return int(item.data(_INDEX)) if item is not None else -1

    def _visual(self, index: int) -> int:
        """The table row that shows manifest row ``index``."""
        return self.table.row(self._items[index])

    def _cell(self, index: int, column: int) -> QTableWidgetItem:
        """The item of manifest row ``index`` in ``column`` (created when missing)."""
        visual = self._visual(index)
        item = self.table.item(visual, column)
        if item is None:
            item = QTableWidgetItem("")
            self.table.setItem(visual, column, item)
        return item

    def _set_agreement(self, index: int) -> None:
        label = self._cell(index, _LABEL).text()
        pred = self._cell(index, _PRED).text()
        self._cell(index, _AGREE).setText(
            "" if not (label and pred) else "✓" if label == pred else "✗"
        )

    def apply_filter(self, text: str | None = None) -> None:
        """Show only the rows with ``text`` in one of their cells (case-insensitive),
        and only a drilled-into subset when there is one."""
        needle = (self.filter_edit.text() if text is None else text).strip().lower()
        for visual in range(self.table.rowCount()):
            cells = [self.table.item(visual, j) for j in range(len(COLUMNS))]
            hay = " ".join(c.text().lower() for c in cells if c is not None)
            hidden = bool(needle) and needle not in hay
            if self._subset is not None and cells[0] is not None:
                hidden = hidden or cells[0].text() not in self._subset
            self.table.setRowHidden(visual, hidden)

    def show_subset(self, utt_ids: list[str] | None, description: str = "") -> None:
        """Show only these clips (a confusion cell of a batch run); None shows all again."""
        self._subset = set(utt_ids) if utt_ids is not None else None
        self.subset_label.setText(
            f"{len(self._subset)} clips: {description}" if self._subset is not None else ""
        )
        self.subset_label.setVisible(self._subset is not None)
        self.subset_clear.setVisible(self._subset is not None)
        self.apply_filter()

    def _on_click(self, i: int, _col: int = 0) -> None:
        """Highlight table row ``i`` (and so open it)."""
        self.table.setCurrentCell(i, 0)
        self._open_index(self._index_of(i))

    def _open_index(self, i: int) -> None:
        """Make row ``i`` the annotation target and the open clip."""
        manifest = self.session.manifest
        if manifest is None or not 0 <= i < len(manifest):
            return
        row = manifest.rows[i]
        if self._target is not None and self._target.path == row.path:
            s = self.session
            if s.row is not None and s.row.path == row.path and s.clip_path is not None:
                return  # already open (Enter on the open row)
        self._note_debounce.flush()  # the previous row's typing goes to the previous row
        self._target = row
        self._show_target()
        self.session.open_row(row)

    def flush(self) -> None:
        """Write a pending label or note now (the window closes)."""
        self._note_debounce.flush()

    def resort(self) -> None:
        """Sort the table now by the header's column and order (the order is frozen in
        between: typing a label or a new prediction never moves a row)."""
        header = self.table.horizontalHeader()
        if header.sortIndicatorSection() >= 0:
            self.table.sortItems(header.sortIndicatorSection(), header.sortIndicatorOrder())

    def step(self, delta: int) -> None:
        """Highlight (and open) the next (+1) or previous (-1) shown clip, in table order."""
        self._note_debounce.flush()
        i = self.table.currentRow()
        j = i + delta if i >= 0 else (0 if delta > 0 else self.table.rowCount() - 1)
        while 0 <= j < self.table.rowCount():
            if not self.table.isRowHidden(j):
                self.table.setCurrentCell(j, 0)
                return
            j += delta

    def next_unannotated(self) -> None:
        """Highlight the next clip (after the highlighted one, wrapping) without your
        annotation: other annotators' labels do not count."""
        self._note_debounce.flush()  # the typed note counts: this clip is annotated now
        manifest = self.session.manifest
        if manifest is None or not manifest.rows:
            return
        n, start = self.table.rowCount(), self.table.currentRow()
        for k in range(1, n + 1):
            visual = (start + k) % n
            index = self._index_of(visual)
            if self.table.isRowHidden(visual) or index < 0:
                continue
            if manifest.rows[index].unit not in self.mine:
                self.table.setCurrentCell(visual, 0)
                return
        self.session.message.emit("You have annotated every clip of the manifest")

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        """Digits 1-9 in the table label the highlighted clip; navigation keys typed
        in the Note or Label field flush the text and reach the window's shortcut."""
        if (
            event.type() == QEvent.Type.ShortcutOverride
            and obj is not self.table
            and isinstance(event, QKeyEvent)
            and QKeySequence(event.keyCombination()) in self.navigation_keys
        ):
            self._note_debounce.flush()
            return True  # not accepted: the shortcut, not the field's own binding, runs
        if obj is self.table and isinstance(event, QKeyEvent):
            key = event.key()
            plain = not (event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier)
            if (
                event.type() == QEvent.Type.KeyPress
                and plain
                and Qt.Key.Key_1 <= key <= Qt.Key.Key_9
            ):
                self.label_by_number(int(key) - int(Qt.Key.Key_0))
                return True
        return super().eventFilter(obj, event)

    # --- clip and predictions ----------------------------------------------------

    def current_row(self) -> ManifestRow | None:
        """The highlighted manifest row: the clip the annotation box edits."""
        return self._target

    def _on_clip(self) -> None:
        s = self.session
        row = s.row if s.clip_path is not None and s.row is not None else None
        if row is not None and str(row.path) not in self._row_of:
            row = None
        if row is None:  # a mix or a file outside the manifest: no row is highlighted
            self._note_debounce.flush()
            self._target = None
            self.table.selectionModel().blockSignals(True)
            self.table.clearSelection()
            self.table.setCurrentIndex(QModelIndex())
            self.table.selectionModel().blockSignals(False)
            self._show_target()
            return
        if self._target is None or self._target.path != row.path:
            self._note_debounce.flush()
            self._target = row
            self._show_target()
        i = self._visual(self._row_of[str(row.path)])
        if self.table.currentRow() != i:
            self.table.selectionModel().blockSignals(True)
            self.table.setCurrentCell(i, 0)
            self.table.selectionModel().blockSignals(False)
        self.table.selectRow(i)
        self.table.scrollToItem(self.table.item(i, 0), QAbstractItemView.ScrollHint.EnsureVisible)

    def _on_prediction(self, update: PredictionUpdate) -> None:
        i = self._row_of.get(update.clip_key)
        if i is not None:
            self._cell(i, _PRED).setText(_pred_text(update))
            self._cell(i, _PRED).setToolTip("")
            self._set_agreement(i)

    def show_run_predictions(self, manifest: Path, predictions: dict[str, str], source: str) -> int:
        """Fill the prediction column from a batch run of the open manifest.

        Args:
            manifest: the manifest the run scored (other manifests are ignored).
            predictions: utt_id -> answer.
            source: shown as the cells' tooltip (run folder and condition).

        Returns:
            The number of rows filled.
        """
        current = self.session.manifest
        if current is None or Path(manifest).resolve() != current.path.resolve():
            return 0
        filled = 0
        self._fit_columns(False)
        for i, row in enumerate(current.rows):
            answer = predictions.get(row.utt_id)
            if answer is None:
                continue
            item = self._cell(i, _PRED)
            item.setText(answer)
            item.setToolTip(source)
            self._set_agreement(i)
            filled += 1
        self._fit_columns(True)
        return filled

    def _fit_columns(self, on: bool) -> None:
        """Switch column fitting off around a bulk fill, and back on (one fit at the end).

        With fitting on, every ``setItem`` re-measures whole columns, which made
        filling 96 rows take 300 ms of the GUI thread.
        """
        header = self.table.horizontalHeader()
        fit, fixed = QHeaderView.ResizeMode.ResizeToContents, QHeaderView.ResizeMode.Interactive
        for j in range(1, len(COLUMNS)):
            header.setSectionResizeMode(j, fit if on else fixed)

    # --- annotation --------------------------------------------------------------

    def _refresh_annotation_cells(self) -> None:
        """Your label and note in the table (after a save or a change of annotator)."""
        manifest = self.session.manifest
        if manifest is None or self._shown != manifest.path:
            return
        for i, row in enumerate(manifest.rows):
            ann = self.mine.get(row.unit)
            label, note = (ann.label, ann.note) if ann else ("", "")
            item = self._cell(i, _ANN)
            if item.text() != label:
                item.setText(label)
            item.setToolTip(note)
            cell = self._cell(i, _NOTE)
            if cell.text() != note:
                cell.setText(note)
            cell.setToolTip(note)


def _pred_text(update: PredictionUpdate | None) -> str:
    if update is None:
        return ""
    top = update.top_tokens or update.top_audio
    return top
