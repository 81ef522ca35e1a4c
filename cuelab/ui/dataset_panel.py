"""Browse a manifest's clips, open one, and annotate it.

The annotator's label and note are written to the manifest's sidecar CSV
(:mod:`cuelab.core.datasets.annotations`) as soon as they change; the file is small and
written atomically, so this stays on the GUI thread.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
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
from cuelab.core.datasets.annotations import Annotation, load_annotations, save_annotation
from cuelab.ui.session import PredictionUpdate, Session
from cuelab.ui.workers import Debouncer

COLUMNS = ("clip", "label", "speaker", "prediction", "annotator")
_PRED, _ANN = 3, 4


class DatasetPanel(QGroupBox):
    """The open manifest as a table; a click opens the clip."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__("Dataset", parent)
        self.session = session
        self.annotations: dict[str, Annotation] = {}
        self._row_of: dict[str, int] = {}
        self._note_debounce = Debouncer(400, self.save_current, self)
        self._build()
        session.manifest_changed.connect(self._on_manifest)
        session.clip_changed.connect(self._on_clip)
        session.prediction_changed.connect(self._on_prediction)

    def _build(self) -> None:
        self.path_label = QLabel("No dataset")
        self.path_label.setWordWrap(True)
        open_button = QPushButton("Open manifest…")
        open_button.clicked.connect(self._choose)
        top = QHBoxLayout()
        top.addWidget(self.path_label, 1)
        top.addWidget(open_button)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.cellClicked.connect(self._on_click)

        box = QGroupBox("Annotation of the open clip")
        self.label_combo = QComboBox()
        self.label_combo.setEditable(True)
        self.label_combo.lineEdit().setPlaceholderText("your label")
        self.label_combo.currentTextChanged.connect(lambda _t: self.save_current())
        self.note_edit = QLineEdit()
        self.note_edit.setPlaceholderText("a note (saved as you type)")
        self.note_edit.textEdited.connect(lambda _t: self._note_debounce.trigger())
        self.note_edit.editingFinished.connect(self._note_debounce.flush)
        self.saved_label = QLabel("")
        self.saved_label.setStyleSheet("color: #555;")
        form = QFormLayout(box)
        form.addRow("Label", self.label_combo)
        form.addRow("Note", self.note_edit)
        form.addRow("", self.saved_label)
        box.setEnabled(False)
        self.annotation_box = box

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(box)

    # --- manifest ----------------------------------------------------------------

    def _choose(self) -> None:
        start = str(self.session.manifest.path.parent) if self.session.manifest else str(Path.cwd())
        path, _ = QFileDialog.getOpenFileName(self, "Manifest", start, "Manifest (*.csv)")
        if path:
            self.session.open_manifest(path)

    def _on_manifest(self) -> None:
        manifest = self.session.manifest
        if manifest is None:
            return
        self.path_label.setText(f"{manifest.path.name} · {len(manifest)} clips")
        self.path_label.setToolTip(str(manifest.path))
        try:
            self.annotations = load_annotations(manifest.path)
        except (OSError, UnicodeDecodeError) as exc:
            self.annotations = {}
            self.session.error.emit(f"{manifest.path}: cannot read annotations ({exc})")
        labels = sorted({r.get("label") for r in manifest.rows if r.get("label")})
        self.label_combo.blockSignals(True)
        self.label_combo.clear()
        self.label_combo.addItems(["", *labels])
        self.label_combo.blockSignals(False)
        self._fit_columns(False)
        self.table.setRowCount(len(manifest))
        self._row_of = {}
        for i, row in enumerate(manifest.rows):
            self._row_of[str(row.path)] = i
            pred = self.session.predictions_by_clip.get(str(row.path))
            ann = self.annotations.get(row.rel_path)
            values = (
                row.utt_id,
                row.get("label"),
                row.get("speaker"),
                _pred_text(pred),
                ann.annotator_label if ann else "",
            )
            for j, v in enumerate(values):
                self.table.setItem(i, j, QTableWidgetItem(v))
        self._fit_columns(True)

    def _on_click(self, i: int, _col: int) -> None:
        manifest = self.session.manifest
        if manifest is not None and 0 <= i < len(manifest):
            self.session.open_row(manifest.rows[i])

    # --- clip and predictions ----------------------------------------------------

    def current_row(self) -> ManifestRow | None:
        """The manifest row of the shown clip, if the clip came from the manifest."""
        s = self.session
        if s.manifest is None or s.row is None or s.clip_path is None:
            return None
        return s.row if str(s.row.path) in self._row_of else None

    def _on_clip(self) -> None:
        self._note_debounce.flush()
        row = self.current_row()
        self.annotation_box.setEnabled(row is not None)
        ann = self.annotations.get(row.rel_path) if row is not None else None
        self.label_combo.blockSignals(True)
        self.label_combo.setCurrentText(ann.annotator_label if ann else "")
        self.label_combo.blockSignals(False)
        self.note_edit.setText(ann.note if ann else "")
        self.saved_label.setText(f"saved {ann.updated}" if ann else "")
        if row is not None:
            i = self._row_of[str(row.path)]
            self.table.selectRow(i)
            self.table.scrollToItem(
                self.table.item(i, 0), QAbstractItemView.ScrollHint.EnsureVisible
            )

    def _on_prediction(self, update: PredictionUpdate) -> None:
        i = self._row_of.get(update.clip_key)
        if i is not None:
            self.table.setItem(i, _PRED, QTableWidgetItem(_pred_text(update)))

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
            item = QTableWidgetItem(answer)
            item.setData(Qt.ItemDataRole.ToolTipRole, source)
            self.table.setItem(i, _PRED, item)
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

    def save_current(self) -> None:
        """Write the open clip's label and note to the sidecar now."""
        row = self.current_row()
        manifest = self.session.manifest
        if row is None or manifest is None:
            return
        label, note = self.label_combo.currentText().strip(), self.note_edit.text()
        old = self.annotations.get(row.rel_path)
        if old is not None and (old.annotator_label, old.note) == (label, note):
            return
        if old is None and not label and not note.strip():
            return
        try:
            ann = save_annotation(manifest.path, row.rel_path, label, note)
        except OSError as exc:
            self.session.error.emit(f"{manifest.path}: cannot save annotations ({exc.strerror})")
            return
        self.annotations[row.rel_path] = ann
        self.saved_label.setText(f"saved {ann.updated}")
        item = QTableWidgetItem(ann.annotator_label)
        item.setData(Qt.ItemDataRole.ToolTipRole, ann.note)
        self.table.setItem(self._row_of[str(row.path)], _ANN, item)


def _pred_text(update: PredictionUpdate | None) -> str:
    if update is None:
        return ""
    top = update.top_tokens or update.top_audio
    return top
