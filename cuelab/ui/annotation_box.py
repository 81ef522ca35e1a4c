"""The dataset panel's annotation box: who annotates, which labels, whole clip or region.

The annotator's name is asked on the first label and remembered in
``QSettings`` (``annotation/annotator``); without settings (tests, screenshot
mode) the window annotates as ``default``, the name the single sidecar of
earlier versions is read as. Every label and note goes to that annotator's own
sidecar (:mod:`cuelab.core.datasets.annotations`), so the counter, the
progress bar and "next unannotated" count only your own labels, while the
Agreement tab sees everyone's (:attr:`AnnotationBoxMixin.team`).

The label set (keys 1-9) belongs to the manifest: a configured set is stored
in ``QSettings`` under a key made from the manifest's path. With "label the
selected region" ticked, the box edits the label of the clip view's selection
(start and end in the sidecar) instead of the whole clip's.
"""

from __future__ import annotations

import getpass
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
)

from cuelab.core.datasets import (
    DEFAULT_ANNOTATOR,
    Annotation,
    Manifest,
    ManifestRow,
    Unit,
    check_annotator,
    load_all,
    save_annotation,
)
from cuelab.core.errors import CueLabError
from cuelab.ui.remedies import window_text

if TYPE_CHECKING:
    from cuelab.ui.session import Session

ANNOTATOR_KEY = "annotation/annotator"


def manifest_key(path: Path, what: str) -> str:
    """A settings key for one manifest (its resolved path, hashed: keys hold no slashes)."""
    digest = hashlib.sha1(str(Path(path).resolve()).encode("utf-8")).hexdigest()[:16]
    return f"annotation/{what}_{digest}"


class AnnotationBoxMixin:
    """Annotation state and box of :class:`~cuelab.ui.dataset_panel.DatasetPanel`.

    Attributes:
        annotations: your whole-clip annotations of the open manifest, by clip path.
        mine: all your annotations (clips and regions), by unit.
        team: every annotator's annotations (yours included), for agreement.
    """

    session: Session
    settings: QSettings | None
    _target: ManifestRow | None
    _shown: Path | None
    _loading_box: bool

    def _init_annotation_state(self) -> None:
        self.settings = None
        self._annotator: str | None = DEFAULT_ANNOTATOR
        self.annotations: dict[str, Annotation] = {}
        self.mine: dict[Unit, Annotation] = {}
        self.team: dict[str, list[Annotation]] = {}
        self._configured_labels: list[str] | None = None

    # --- who ----------------------------------------------------------------------

    def use_settings(self, settings: QSettings | None) -> None:
        """Remember the annotator and per-manifest label sets in ``settings``.

        Without a stored name the annotator is asked on the first label.
        """
        self.settings = settings
        name = str(settings.value(ANNOTATOR_KEY, "") or "") if settings is not None else ""
        self._annotator = name or (None if settings is not None else DEFAULT_ANNOTATOR)
        self._show_annotator()

    @property
    def annotator(self) -> str | None:
        """Who is annotating (None until asked, when settings are in use)."""
        return self._annotator

    def set_annotator(self, name: str) -> None:
        """Annotate as ``name`` from now on (remembered); your labels are reloaded.

        Raises:
            ManifestError: a name that cannot name a sidecar file.
        """
        clean = check_annotator(name)
        self._annotator = clean
        if self.settings is not None:
            self.settings.setValue(ANNOTATOR_KEY, clean)
        self._split_mine()
        self._after_annotations()

    def ask_annotator(self) -> str | None:
        """Ask for the annotator's name (a dialog); None when cancelled."""
        while True:
            text, ok = QInputDialog.getText(
                self,  # type: ignore[arg-type]
                "Annotator",
                "Your name as annotator (letters, digits, '_', '-'); "
                "your labels go to a sidecar of your own:",
                text=_login_name(),
            )
            if not ok:
                return None
            try:
                self.set_annotator(text)
            except CueLabError as exc:
                self.session.error.emit(window_text(exc))
                continue
            return self._annotator

    def _ensure_annotator(self) -> str | None:
        return self._annotator if self._annotator is not None else self.ask_annotator()

    def _show_annotator(self) -> None:
        who = self._annotator or "(asked on your first label)"
        self.annotator_label.setText(f"annotator: {who}")

    # --- the box --------------------------------------------------------------------

    def _build_box(self) -> QGroupBox:
        box = QGroupBox("Annotation of the highlighted clip")
        self.label_combo = QComboBox()
        self.label_combo.setEditable(True)
        self.label_combo.lineEdit().setPlaceholderText("your label (1-9 in the table)")
        self.label_combo.currentTextChanged.connect(self._on_edit)
        self.label_combo.activated.connect(lambda _i: self._note_debounce.flush())
        self.note_edit = QLineEdit()
        self.note_edit.setPlaceholderText("a note (saved when you pause)")
        self.note_edit.textEdited.connect(self._on_edit)
        self.note_edit.editingFinished.connect(self._note_debounce.flush)
        # the window's navigation keys typed in a field flush it first (eventFilter)
        self.note_edit.installEventFilter(self)
        self.label_combo.lineEdit().installEventFilter(self)
        self.region_box = QCheckBox("label the selected region")
        self.region_box.setToolTip("Select a part of the clip in the clip view (Analyse selection)")
        self.region_box.setEnabled(False)
        self.region_box.toggled.connect(lambda _on: self._switch_scope())
        self.saved_label = QLabel("")
        self.saved_label.setStyleSheet("color: #555;")
        self.counter_label = QLabel("")
        self.counter_label.setToolTip("Clips of the manifest with your label or note")
        self.progress = QProgressBar()
        self.progress.setFormat("your labels %v / %m")
        self.progress.setToolTip("Clips you have labelled, of all the manifest's clips")
        self.annotator_label = QLabel("")
        change = QPushButton("Change…")
        change.setToolTip("Annotate under another name (each name has its own sidecar)")
        change.clicked.connect(self.ask_annotator)
        who = QHBoxLayout()
        who.addWidget(self.annotator_label, 1)
        who.addWidget(change)
        form = QFormLayout(box)
        form.addRow("Label", self.label_combo)
        form.addRow("Note", self.note_edit)
        form.addRow("", self.region_box)
        form.addRow(self.counter_label, self.saved_label)
        form.addRow(self.progress)
        form.addRow(who)
        box.setEnabled(False)
        self._show_annotator()
        return box

    def _scope(self) -> tuple[float | None, float | None]:
        """(start, end) the box edits: the selection when ticked, else the whole clip."""
        region = self.session.region
        if self.region_box.isChecked() and region is not None:
            return round(region[0], 3), round(region[1], 3)
        return None, None

    def _on_region(self) -> None:
        region = self.session.region
        self.region_box.setEnabled(region is not None)
        self.region_box.setText(
            f"label the selected region ({region[0]:.3f}–{region[1]:.3f} s)"
            if region is not None
            else "label the selected region"
        )
        if self.region_box.isChecked():
            self._switch_scope()

    def _switch_scope(self) -> None:
        self._note_debounce.flush()  # typing so far belongs to the scope it was typed for
        self._show_target()

    def _current(self) -> Annotation | None:
        row = self._target
        if row is None:
            return None
        start, end = self._scope()
        return self.mine.get((row.rel_path, start, end))

    def _show_target(self) -> None:
        """Fill the annotation box from your annotation of the highlighted row (or region)."""
        row = self._target
        self.annotation_box.setEnabled(row is not None)
        ann = self._current()
        self._loading_box = True
        try:
            self.label_combo.setCurrentText(ann.label if ann else "")
            self.note_edit.setText(ann.note if ann else "")
        finally:
            self._loading_box = False
        self.saved_label.setText(f"saved {ann.updated}" if ann else "")
        start, _end = self._scope()
        what = "region of " if start is not None else ""
        self.annotation_box.setTitle(
            f"Annotation of {what}{row.utt_id}"
            if row is not None
            else "Annotation of the highlighted clip"
        )
        self._count()

    def _count(self) -> None:
        manifest = self.session.manifest
        if manifest is None:
            self.counter_label.setText("")
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            return
        done = sum(1 for r in manifest.rows if r.unit in self.mine)
        labelled = sum(1 for r in manifest.rows if self._has_label(r))
        self.counter_label.setText(f"annotated {done} / {len(manifest)}")
        self.progress.setRange(0, len(manifest))
        self.progress.setValue(labelled)

    def _has_label(self, row: ManifestRow) -> bool:
        ann = self.mine.get(row.unit)
        return ann is not None and bool(ann.label)

    def _on_edit(self, _text: str = "") -> None:
        if not self._loading_box:
            self.saved_label.setText("editing…")
            self._note_debounce.trigger()

    # --- loading --------------------------------------------------------------------

    def _load_annotations(self, manifest: Manifest) -> None:
        """Read every annotator's sidecar of ``manifest``; a bad one is named, not fatal."""
        try:
            self.team = load_all(manifest.path)
        except CueLabError as exc:  # names the sidecar and the problem (e.g. not UTF-8)
            self.team = {}
            self.session.error.emit(window_text(exc))
        self._split_mine()

    def _split_mine(self) -> None:
        mine = self.team.get(self._annotator or "", []) if self._annotator else []
        self.mine = {a.unit: a for a in mine}
        self.annotations = {a.path: a for a in mine if not a.is_region}

    def _start_row(self, manifest: Manifest) -> ManifestRow | None:
        """The row you labelled last (by the sidecar's times): where a reopened dataset starts."""
        if not self.mine or self._shown is None or manifest.path != self._shown:
            return None
        last = max(self.mine.values(), key=lambda a: a.updated)
        rows = {r.unit: r for r in manifest.rows}
        whole = {r.rel_path: r for r in manifest.rows if r.start is None}
        return rows.get(last.unit) or whole.get(last.path)

    # --- labels -----------------------------------------------------------------------

    def set_label_set(self, labels: list[str] | None) -> None:
        """Use ``labels`` for the open manifest (keys 1-9), or None for its own labels.

        The set is remembered per manifest when settings are in use.
        """
        cleaned = [lab.strip() for lab in labels or [] if lab.strip()]
        self._configured_labels = list(dict.fromkeys(cleaned)) or None
        manifest = self.session.manifest
        if self.settings is not None and manifest is not None:
            key = manifest_key(manifest.path, "labels")
            self.settings.setValue(key, ",".join(self._configured_labels or []))
        self._fill_labels()

    def _restore_label_set(self, manifest: Manifest) -> None:
        stored = ""
        if self.settings is not None:
            stored = str(self.settings.value(manifest_key(manifest.path, "labels"), "") or "")
        cleaned = [lab.strip() for lab in stored.split(",") if lab.strip()]
        self._configured_labels = list(dict.fromkeys(cleaned)) or None

    def _fill_labels(self) -> None:
        manifest = self.session.manifest
        labels = self._configured_labels or sorted(
            {r.get("label") for r in manifest.rows if r.get("label")} if manifest else set()
        )
        current = self.label_combo.currentText()
        self._loading_box = True
        self.label_combo.blockSignals(True)
        try:
            self.label_combo.clear()
            self.label_combo.addItems(["", *labels])
            self.label_combo.setCurrentText(current)
        finally:
            self.label_combo.blockSignals(False)
            self._loading_box = False
        self.labels_changed.emit()

    def label_set(self) -> list[str]:
        """The labels the 1-9 keys choose: the configured set, else the manifest's, sorted."""
        return [self.label_combo.itemText(i) for i in range(1, self.label_combo.count())]

    def label_by_number(self, k: int) -> None:
        """Give the highlighted clip label ``k`` (1-based) of the label set, saved at once."""
        labels = self.label_set()
        if self._target is None or not 1 <= k <= len(labels):
            return
        self.label_combo.setCurrentText(labels[k - 1])
        self._note_debounce.flush()

    # --- saving ---------------------------------------------------------------------

    def save_current(self) -> None:
        """Write the open clip's (or region's) label and note to your sidecar now."""
        row = self._target
        shown = self._shown  # not session.manifest: it may already be the next one
        if row is None or shown is None:
            return
        label, note = self.label_combo.currentText().strip(), self.note_edit.text()
        start, end = self._scope()
        if start is None and row.start is not None:  # a region row of the manifest
            start, end = row.start, row.end
        old = self.mine.get((row.rel_path, start, end))
        if old is not None and (old.label, old.note) == (label, note):
            return
        if old is None and not label and not note.strip():
            self.saved_label.setText("")
            return
        who = self._ensure_annotator()
        if who is None:
            self.saved_label.setText("not saved: no annotator name")
            return
        old = self.mine.get((row.rel_path, start, end))  # the name may have just changed
        try:
            ann = save_annotation(
                shown, row.rel_path, label, note, annotator=who, start=start, end=end
            )
        except CueLabError as exc:
            self.session.error.emit(f"{shown}: cannot save annotations ({exc})")
            return
        except OSError as exc:
            self.session.error.emit(f"{shown}: cannot save annotations ({exc.strerror})")
            return
        mine = [a for a in self.team.get(who, []) if a.unit != ann.unit]
        self.team[who] = mine if ann.empty else [*mine, ann]
        if not self.team[who]:
            del self.team[who]
        self._split_mine()
        if row is self._target:
            self.saved_label.setText(f"saved {ann.updated}")
        self._after_annotations()

    def _after_annotations(self) -> None:
        """Your annotations changed: cells, counter, progress, and the Agreement tab."""
        self._show_annotator()
        self._refresh_annotation_cells()
        self._count()
        self.annotations_changed.emit()

    # Provided by the panel.
    _note_debounce: Any
    annotation_box: QGroupBox
    labels_changed: Any
    annotations_changed: Any

    def _refresh_annotation_cells(self) -> None:  # pragma: no cover - the panel's
        raise NotImplementedError


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""
