"""The Agreement tab: how the open dataset's annotators agree, live, with drill-down.

It shows what ``cuelab annotations agreement`` prints (the same core function,
:func:`cuelab.core.reports.team_agreement.team_agreement`): Krippendorff's
alpha with its bootstrap interval, Fleiss' kappa, Cohen's kappa for every pair
of annotators, a confusion table of two annotators, per-class agreement, and
each annotator against the window's model predictions. It is recomputed in a
worker a moment after a label changes. Every cell drills down: a click shows
its clips in the Dataset tab (:signal:`drill_down`). The manifest's folder is
watched, so a sidecar another annotator (or a merge) writes there shows up too.
"""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cuelab.core.datasets import Unit, glob_escape
from cuelab.core.reports import TeamAgreement, compute_team_agreement
from cuelab.ui.dataset_panel import DatasetPanel
from cuelab.ui.session import Session
from cuelab.ui.workers import Debouncer, Job, JobSlot

RECOMPUTE_MS = 300
N_BOOT = 500
_UNITS = Qt.ItemDataRole.UserRole


def _f(x: float | None) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.3f}"


def _tint(x: float | None) -> QColor:
    """Red (≤ 0) to green (1) for kappa and agreement cells."""
    if x is None or not math.isfinite(x):
        return QColor("#eeeeee")
    t = max(0.0, min(1.0, x))
    return QColor(int(240 - 120 * t), int(200 + 40 * t), int(200 - 60 * t))


class AgreementPanel(QWidget):
    """Live agreement of the open dataset's annotators.

    Signals:
        drill_down(list, str): utterance ids of a cell's clips and what they are.
    """

    drill_down = Signal(list, str)

    def __init__(self, session: Session, dataset: DatasetPanel, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.dataset = dataset
        self.result: TeamAgreement | None = None
        self.slot = JobSlot("agreement", session.pool, session)
        session.slots["agreement"] = self.slot  # the window's shutdown awaits it
        self.slot.failed.connect(lambda msg: self.summary.setText(f"agreement failed: {msg}"))
        self._debounce = Debouncer(RECOMPUTE_MS, self.recompute, self)
        self._watcher = QFileSystemWatcher(self)
        self._watcher.directoryChanged.connect(lambda _p: self._disk_debounce.trigger())
        self._disk_debounce = Debouncer(RECOMPUTE_MS, self._on_disk, self)
        self._seen: tuple[tuple[str, int, int], ...] = ()
        self._build()
        dataset.annotations_changed.connect(self._debounce.trigger)
        session.manifest_changed.connect(self._watch)
        session.prediction_changed.connect(lambda _u: self._debounce.trigger())

    def _table(self, tip: str) -> QTableWidget:
        table = QTableWidget(0, 0)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table.setToolTip(tip)
        table.cellClicked.connect(lambda i, j, t=table: self._clicked(t, i, j))
        return table

    @staticmethod
    def _fit_height(table: QTableWidget, rows: int = 6) -> None:
        """No taller than its first ``rows`` rows: the confusion table gets the room."""
        table.resizeRowsToContents()
        shown = sum(table.rowHeight(i) for i in range(min(rows, table.rowCount())))
        extra = table.horizontalHeader().height() + 2 * table.frameWidth() + 4
        extra += table.horizontalScrollBar().sizeHint().height()  # room for one, if needed
        table.setMaximumHeight(max(60, shown + extra))

    def _build(self) -> None:
        self.summary = QLabel("Open a dataset that annotators have labelled.")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        reload_button = QPushButton("Re-read sidecars")
        reload_button.setToolTip("Read every annotator's sidecar again (e.g. after a merge)")
        reload_button.clicked.connect(self.reload)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(reload_button)

        self.kappa_table = self._table(
            "Cohen's kappa (clips both labelled); click: their disagreements"
        )
        self.a_combo, self.b_combo = QComboBox(), QComboBox()
        for combo in (self.a_combo, self.b_combo):
            combo.currentTextChanged.connect(lambda _t: self._fill_confusion())
        self.confusion = self._table("Rows: annotator A's label; columns: B's; click: the clips")
        self.class_table = self._table("o_cc / n_c per class; click: the clips with that label")
        self.class_table.verticalHeader().setVisible(False)
        self.model_table = self._table(
            "Each annotator against the window's predictions; click: the clips where they differ"
        )
        self.model_table.verticalHeader().setVisible(False)

        pairs = QGroupBox("Cohen's kappa, pairs of annotators")
        QVBoxLayout(pairs).addWidget(self.kappa_table)
        conf = QGroupBox("Two annotators' labels")
        conf_layout = QVBoxLayout(conf)
        chooser = QHBoxLayout()
        chooser.addWidget(QLabel("rows"))
        chooser.addWidget(self.a_combo, 1)
        chooser.addWidget(QLabel("columns"))
        chooser.addWidget(self.b_combo, 1)
        conf_layout.addLayout(chooser)
        conf_layout.addWidget(self.confusion)
        classes = QGroupBox("Per class")
        QVBoxLayout(classes).addWidget(self.class_table)
        model = QGroupBox("Annotators against the model")
        QVBoxLayout(model).addWidget(self.model_table)
        grid = QHBoxLayout()
        left, right = QVBoxLayout(), QVBoxLayout()
        left.addWidget(pairs)
        left.addWidget(conf, 1)
        right.addWidget(classes)
        right.addWidget(model)
        right.addStretch(1)
        grid.addLayout(left, 3)
        grid.addLayout(right, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(grid, 1)

    # --- computing ---------------------------------------------------------------

    def _sidecars(self) -> tuple[tuple[str, int, int], ...]:
        """(name, mtime, size) of the open manifest's sidecars: what a change on disk moves."""
        manifest = self.session.manifest
        if manifest is None:
            return ()
        pattern = f"{glob_escape(manifest.path.stem)}.annotations*.csv"
        out = []
        for p in sorted(manifest.path.parent.glob(pattern)):
            try:
                st = p.stat()
            except OSError:
                continue
            out.append((p.name, st.st_mtime_ns, st.st_size))
        return tuple(out)

    def _watch(self) -> None:
        """A new manifest: watch its folder and compute."""
        if self._watcher.directories():
            self._watcher.removePaths(self._watcher.directories())
        manifest = self.session.manifest
        if manifest is not None:
            self._watcher.addPath(str(manifest.path.parent))
        self._seen = self._sidecars()
        self._debounce.trigger()

    def _on_disk(self) -> None:
        """Something in the folder changed: re-read the sidecars when one of them did."""
        now = self._sidecars()
        if now != self._seen:
            self._seen = now
            self.reload()

    def reload(self) -> None:
        """Re-read the sidecars (another annotator's file changed) and recompute."""
        manifest = self.session.manifest
        if manifest is not None:
            self.dataset._load_annotations(manifest)
            self.dataset._after_annotations()

    def _predictions(self) -> dict[str, dict[str, str]]:
        manifest = self.session.manifest
        if manifest is None:
            return {}
        answers = {}
        for row in manifest.rows:
            update = self.session.predictions_by_clip.get(str(row.path))
            if update is not None and row.start is None:
                answers[row.rel_path] = update.top_tokens or update.top_audio or ""
        return {"window model": answers} if answers else {}

    def recompute(self) -> None:
        """Compute every figure in a worker; the newest result wins."""
        manifest = self.session.manifest
        if manifest is None:
            return
        team = {who: list(anns) for who, anns in self.dataset.team.items()}
        preds = self._predictions()
        path = manifest.path

        def work(_job: Job) -> TeamAgreement:
            return compute_team_agreement(path, annotations=team, predictions=preds, n_boot=N_BOOT)

        self.slot.start(work, lambda result, _s: self.show_result(result, path))

    def show_result(self, result: TeamAgreement, manifest: Path) -> None:
        """Fill the tab (results for another manifest than the open one are dropped)."""
        if self.session.manifest is None or self.session.manifest.path != manifest:
            return
        self.result = result
        n_ann = len(result.annotators)
        if n_ann < 2:
            who = result.annotators[0] if result.annotators else "nobody"
            self.summary.setText(f"Labelled by {who} only: agreement needs two annotators.")
        else:
            ordinal = (
                f" · ordinal α <b>{_f(result.alpha_ordinal)}</b>"
                if result.alpha_ordinal is not None
                else ""
            )
            regions = (
                f" · {result.n_region_units} regions, α {_f(result.alpha_regions)}"
                if result.n_region_units
                else ""
            )
            self.summary.setText(
                f"Krippendorff's α (nominal) <b>{_f(result.alpha)}</b> "
                f"[{_f(result.alpha_ci_low)}, {_f(result.alpha_ci_high)}] 95% CI{ordinal}"
                f" · Fleiss' κ <b>{_f(result.fleiss_kappa)}</b><br>"
                f"{result.n_units} clips labelled by 2+ of {n_ann} annotators "
                f"({', '.join(result.annotators)}){regions}"
            )
        self._fill_kappa()
        who = result.annotators
        keep = [self.a_combo.currentText(), self.b_combo.currentText()]
        if not (keep[0] in who and keep[1] in who and keep[0] != keep[1]):
            keep = [*who[:2], "", ""][:2]  # a chosen pair is kept while it still exists
        for combo, name in ((self.a_combo, keep[0]), (self.b_combo, keep[1])):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(who)
            combo.setCurrentText(name)
            combo.blockSignals(False)
        self._fill_confusion()
        self._fill_classes()
        self._fill_model()

    # --- tables --------------------------------------------------------------------

    def _cell(self, table: QTableWidget, i: int, j: int, text: str, units: list[Unit],
              what: str, value: float | None = None) -> None:  # fmt: skip
        item = QTableWidgetItem(text)
        item.setData(_UNITS, (units, what))
        item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
        if value is not None:
            item.setBackground(_tint(value))
        item.setToolTip(f"{len(units)} clips: {what}" if units else what)
        table.setItem(i, j, item)

    def _fill_kappa(self) -> None:
        r = self.result
        assert r is not None
        who = r.annotators
        t = self.kappa_table
        t.clear()
        t.setRowCount(len(who))
        t.setColumnCount(len(who))
        t.setHorizontalHeaderLabels(who)
        t.setVerticalHeaderLabels(who)
        pairs = {(p["annotator_a"], p["annotator_b"]): p for p in r.pairwise}
        for i, a in enumerate(who):
            for j, b in enumerate(who):
                p = pairs.get((a, b)) or pairs.get((b, a))
                if p is None:
                    self._cell(t, i, j, "", [], a)
                    continue
                units = r.disagreements(a, b)
                self._cell(t, i, j, f"{_f(p['kappa'])} (n={p['n']})", units,
                           f"{a} and {b} disagree", p["kappa"])  # fmt: skip
        self._fit_height(t, 5)

    def _fill_confusion(self) -> None:
        r = self.result
        t = self.confusion
        t.clear()
        a, b = self.a_combo.currentText(), self.b_combo.currentText()
        if r is None or r.clips is None or not a or not b:
            t.setRowCount(0)
            t.setColumnCount(0)
            return
        table = r.clips
        labels = sorted({v for u in table.units for v in table.labels[u].values()})
        t.setRowCount(len(labels))
        t.setColumnCount(len(labels))
        t.setVerticalHeaderLabels([f"{a}: {x}" for x in labels])
        t.setHorizontalHeaderLabels(labels)  # B's; the rows name A's (narrow columns)
        for i, la in enumerate(labels):
            for j, lb in enumerate(labels):
                units = r.pair_cell(a, b, la, lb)
                item_text = str(len(units)) if units else ""
                self._cell(t, i, j, item_text, units, f"{a} said {la}, {b} said {lb}")
                if units and la == lb:
                    t.item(i, j).setBackground(QColor("#d8efd8"))
                elif units:
                    t.item(i, j).setBackground(QColor("#f6dada"))

    def _fill_classes(self) -> None:
        r = self.result
        assert r is not None
        t = self.class_table
        t.clear()
        t.setColumnCount(2)
        t.setHorizontalHeaderLabels(["class", "agreement"])
        t.setRowCount(len(r.per_class))
        for i, (label, value) in enumerate(sorted(r.per_class.items())):
            units = r.with_class(label)
            self._cell(t, i, 0, label, units, f"someone said {label}")
            self._cell(t, i, 1, _f(value), units, f"someone said {label}", value)
        self._fit_height(t, 8)

    def _fill_model(self) -> None:
        r = self.result
        assert r is not None
        t = self.model_table
        t.clear()
        t.setColumnCount(4)
        t.setHorizontalHeaderLabels(["annotator", "n", "agreement", "κ"])
        t.setRowCount(len(r.versus_model))
        answers = self._predictions().get("window model", {})
        for i, row in enumerate(r.versus_model):
            who = row["annotator"]
            units = []
            if r.clips is not None:
                units = [
                    u for u in r.clips.units
                    if who in r.clips.labels[u] and u[0] in answers
                    and r.clips.labels[u][who] != answers[u[0]].strip().casefold()
                ]  # fmt: skip
            what = f"{who} and the model differ"
            self._cell(t, i, 0, who, units, what)
            self._cell(t, i, 1, str(row["n"]), units, what)
            self._cell(t, i, 2, _f(row["agreement"]), units, what, row["agreement"])
            self._cell(t, i, 3, _f(row["kappa"]), units, what, row["kappa"])
        self._fit_height(t, 5)

    # --- drill-down -------------------------------------------------------------

    def _clicked(self, table: QTableWidget, i: int, j: int) -> None:
        item = table.item(i, j)
        data = item.data(_UNITS) if item is not None else None
        if data:
            self.show_clips(*data)

    def show_clips(self, units: list[Unit], what: str) -> None:
        """Emit the utterance ids of ``units`` (whole-clip rows of the open manifest)."""
        manifest = self.session.manifest
        if manifest is None:
            return
        ids = {r.rel_path: r.utt_id for r in manifest.rows if r.start is None}
        utt_ids = [ids[u[0]] for u in units if u[0] in ids]
        self.drill_down.emit(utt_ids, what)
