"""Several models on one clip, side by side, and concept sweeps across them.

The session's own model is the first column; up to three more are loaded here
(in a worker, never on the GUI thread) and scored on the same clip, region
and token text whenever the session's model answers. A sweep steps one
concept through its levels, the other tokens kept, and plots each label's
probability against the level for every shown model, as LIT's
counterfactual plots do for text. The state lives in :mod:`cuelab.ui.compare`.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QComboBox,
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

from cuelab.core.cues import VOCAB
from cuelab.ui.compare import MAX_MODELS, ModelAnswer, score_pair, sweep
from cuelab.ui.remedies import model_error
from cuelab.ui.session import PredictionUpdate, Session, _one_line
from cuelab.ui.workers import Job, JobSlot, run_detached

log = logging.getLogger(__name__)

LABEL_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")
MODEL_STYLES = (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine,
                Qt.PenStyle.DashDotLine)  # fmt: skip


def short_spec(spec: str) -> str:
    """``family:…/folder`` as a column header: the family and the folder's last part."""
    family, _, location = spec.partition(":")
    tail = location.rstrip("/").rsplit("/", 1)[-1] if location and location != "-" else ""
    return f"{family}:{tail}" if tail else family


def _answer_of(update: PredictionUpdate) -> ModelAnswer:
    return ModelAnswer(update.model_spec, update.labels, update.audio_only, update.with_tokens,
                       update.token_text, update.clip_key)  # fmt: skip


class SideBySidePanel(QWidget):
    """A table with audio-only / with-tokens / Δ per loaded model, and a sweep plot.

    Signals:
        answers_changed(): every shown model answered the current clip and tokens.
        sweep_done(): a sweep's curves are drawn (``sweep_result``).
    """

    answers_changed = Signal()
    sweep_done = Signal()

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.state = session.wb.compare  # the workbench's models (up to four) and answers
        self.sweep_result: dict[str, dict[str, list[float]]] = {}
        self.sweep_concept = ""
        self._lock = threading.Lock()  # the extra models: one call at a time
        self.load_slot = JobSlot("compare-load", session.pool, self)
        self.score_slot = JobSlot("compare", session.pool, self)
        self.sweep_slot = JobSlot("sweep", session.pool, self)
        for name, slot in (("compare-load", self.load_slot), ("compare", self.score_slot),
                           ("sweep", self.sweep_slot)):  # fmt: skip
            session.slots[name] = slot  # cancelled and awaited when the window closes
            slot.failed.connect(self._fail)
        self._build()
        session.prediction_changed.connect(self._on_prediction)
        session.model_changed.connect(self._redraw)
        for signal in (session.clip_changed, session.analysis_started, session.labels_changed):
            signal.connect(self._drop_answers)

    def _build(self) -> None:
        self.spec_edit = QLineEdit("oracle")
        self.spec_edit.setPlaceholderText("family:location (e.g. oracle, reference)")
        self.add_button = QPushButton("Add model")
        self.add_button.setToolTip(f"load another model beside the session's (up to {MAX_MODELS})")
        self.add_button.clicked.connect(lambda: self.add_model(self.spec_edit.text().strip()))
        self.remove_combo = QComboBox()
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(
            lambda: self.remove_model(self.remove_combo.currentText())
        )
        top = QHBoxLayout()
        top.addWidget(self.spec_edit, 1)
        top.addWidget(self.add_button)
        top.addWidget(self.remove_combo)
        top.addWidget(self.remove_button)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setStyleSheet("color: #555;")
        self.table = QTableWidget(0, 1)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.concept_combo = QComboBox()
        self.concept_combo.addItems(list(VOCAB))
        self.sweep_button = QPushButton("Sweep")
        self.sweep_button.setToolTip("step this concept through its levels, the rest kept")
        self.sweep_button.clicked.connect(
            lambda: self.start_sweep(self.concept_combo.currentText())
        )
        row = QHBoxLayout()
        row.addWidget(QLabel("Sweep"))
        row.addWidget(self.concept_combo, 1)
        row.addWidget(self.sweep_button)
        self.sweep_label = QLabel("")
        self.sweep_label.setWordWrap(True)
        self.sweep_label.setStyleSheet("color: #555;")
        self.plot = pg.PlotWidget()
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setYRange(0, 1, padding=0.02)
        self.plot.setLabel("left", "p")
        self.plot.setMinimumHeight(120)
        # The legend sits above the plot, never over the curves: colour = label, line = model.
        self.legend_label = QLabel("")
        self.legend_label.setTextFormat(Qt.TextFormat.RichText)
        self.legend_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status_label)
        layout.addWidget(self.table)
        layout.addLayout(row)
        layout.addWidget(self.sweep_label)
        layout.addWidget(self.legend_label)
        layout.addWidget(self.plot, 1)
        self._redraw()

    # --- models -------------------------------------------------------------------

    def _fail(self, message: str) -> None:
        self.status_label.setStyleSheet("color: #b00020;")
        self.status_label.setText(message)

    def _say(self, text: str) -> None:
        self.status_label.setStyleSheet("color: #555;")
        self.status_label.setText(text)

    def add_model(self, spec: str) -> None:
        """Load ``spec`` in a worker and show it as one more column group."""
        if not spec:
            return
        try:  # refused before any loading: full, or shown already
            self.state.add(spec, None, self.session.model_spec)
        except ValueError as exc:
            self._fail(str(exc))
            return
        self.state.remove(spec)

        def work(job: Job) -> Any:
            from cuelab.core.errors import CueLabError, ModelError
            from cuelab.core.models import LoadOptions, load_model

            job.report(f"Loading {spec}…")
            try:
                return load_model(spec, LoadOptions(on_progress=job.report))
            except CueLabError as exc:
                raise ModelError(model_error("load", spec, exc)) from exc
            except Exception as exc:
                log.exception("loading %s failed", spec)
                raise ModelError(model_error("load", spec, _one_line(exc))) from exc

        def done(adapter: Any, seconds: float) -> None:
            try:
                self.state.add(spec, adapter, self.session.model_spec)
            except ValueError as exc:
                self._fail(str(exc))
                self._unload_later(adapter)
                return
            self._say(f"{spec} loaded in {seconds:.1f} s")
            self._redraw()
            self._score_extras()

        self._say(f"Loading {spec}…")
        self.load_slot.start(work, done)

    def remove_model(self, spec: str) -> None:
        """Drop one extra model (unloaded in a worker)."""
        adapter = self.state.remove(spec)
        if adapter is not None:
            self._unload_later(adapter)
        self.sweep_result.pop(spec, None)
        self._redraw()

    def _unload_later(self, adapter: Any) -> None:
        lock = self._lock

        def work(_job: Job) -> None:
            with lock:
                adapter.unload()

        run_detached(self.session.pool, work)

    def _clip(self) -> Any:
        """The clip as the session's model saw it (segment, features, manifest fields)."""
        return self.session.wb.clip()

    # --- answers ------------------------------------------------------------------

    def _drop_answers(self) -> None:
        self.score_slot.cancel()
        self.sweep_slot.cancel()
        self.state.clear_answers()
        self.sweep_result = {}
        self._redraw()

    def _on_prediction(self, update: PredictionUpdate) -> None:
        self.state.answers = {k: v for k, v in self.state.answers.items()
                              if k != update.model_spec}  # fmt: skip
        self.state.answers[update.model_spec] = _answer_of(update)
        self._redraw()
        self._score_extras()

    def _score_extras(self) -> None:
        """Score every extra model on the session's last answered clip and token text."""
        s, last = self.session, self.session.prediction
        if last is None or s.features is None or not self.state.models:
            if last is not None and not self.state.models:
                self.answers_changed.emit()
            return
        clip, task, labels = self._clip(), s.task, tuple(last.labels)
        text, key = last.token_text, last.clip_key
        models, lock = dict(self.state.models), self._lock

        def work(job: Job) -> list[ModelAnswer]:
            from cuelab.core.errors import CueLabError, ModelError

            out = []
            for spec, adapter in models.items():
                with lock:
                    job.check()
                    job.report(f"Scoring with {spec}…")
                    try:
                        out.append(score_pair(adapter, spec, clip, task, labels, text, key))
                    except CueLabError as exc:
                        raise ModelError(model_error("score", spec, exc)) from exc
            return out

        def done(answers: list[ModelAnswer], _s: float) -> None:
            for answer in answers:
                if answer.spec in self.state.models:
                    self.state.answers[answer.spec] = answer
            self._redraw()
            self.answers_changed.emit()

        self.score_slot.start(work, done)

    def _redraw(self) -> None:
        s, state = self.session, self.state
        specs = state.columns(s.model_spec)
        self.remove_combo.clear()
        self.remove_combo.addItems(list(state.models))
        self.remove_button.setEnabled(bool(state.models))
        self.add_button.setEnabled(state.room(s.model_spec) > 0)
        headers = ["label"]
        for spec in specs:
            name = short_spec(spec)
            headers += [f"{name}\naudio", f"{name}\ntokens", f"{name}\nΔ"]
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        for j, spec in enumerate(specs):
            for k in range(3):
                self.table.horizontalHeaderItem(1 + 3 * j + k).setToolTip(spec)
        labels = s.labels
        self.table.setRowCount(len(labels))
        header = self.table.horizontalHeader().sizeHint().height()
        self.table.setFixedHeight(header + 22 * len(labels) + 2 * self.table.frameWidth() + 2)
        for i, lab in enumerate(labels):
            self._cell(i, 0, lab, None)
            for j, spec in enumerate(specs):
                answer = state.answers.get(spec)
                cells: list[tuple[str, float | None]] = [("", None)] * 3
                if answer is not None and lab in answer.audio_only:
                    pa = answer.audio_only[lab]
                    pt = answer.with_tokens[lab] if answer.with_tokens else None
                    d = 0.0 if pt is None or abs(pt - pa) < 5e-4 else pt - pa
                    cells = [(f"{pa:.3f}", None), ("—" if pt is None else f"{pt:.3f}", None),
                             (f"{d:+.3f}", d)]  # fmt: skip
                for k, (text, signed) in enumerate(cells):
                    self._cell(i, 1 + 3 * j + k, text, signed)

    def _cell(self, i: int, j: int, text: str, signed: float | None) -> None:
        item = QTableWidgetItem(text)
        if j:
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if signed is not None and abs(signed) >= 0.005:
            item.setForeground(QBrush(QColor("#00802b" if signed > 0 else "#c00000")))
        self.table.setItem(i, j, item)

    def value(self, spec: str, label: str, column: str) -> str:
        """The shown text of ``column`` ('audio', 'tokens' or 'Δ') for ``spec`` and ``label``."""
        j = self.state.columns(self.session.model_spec).index(spec)
        i = list(self.session.labels).index(label)
        item = self.table.item(i, 1 + 3 * j + ("audio", "tokens", "Δ").index(column))
        return item.text() if item is not None else ""

    # --- sweeps -------------------------------------------------------------------

    def start_sweep(self, concept: str) -> None:
        """Step ``concept`` through its levels for every shown model, in a worker."""
        s = self.session
        if s.model is None or s.features is None or s.tokens is None:
            self.sweep_label.setText("A sweep needs a model and an analysed clip.")
            return
        self.concept_combo.setCurrentText(concept)
        clip, task, labels, tokens = self._clip(), s.task, tuple(s.labels), s.tokens
        models = [(s.model_spec, s.model, s.model_lock)]
        models += [(spec, m, self._lock) for spec, m in self.state.models.items()]

        def work(job: Job) -> dict[str, dict[str, list[float]]]:
            out = {}
            for spec, adapter, lock in models:
                with lock:
                    job.check()
                    job.report(f"Sweeping {concept} with {spec}…")
                    out[spec] = sweep(adapter, clip, task, labels, tokens, concept)
            return out

        def done(result: dict[str, dict[str, list[float]]], seconds: float) -> None:
            self.sweep_result, self.sweep_concept = result, concept
            self._draw_sweep(labels)
            self.session.message.emit(f"{concept} swept for {len(result)} model(s)")
            self.sweep_label.setText(
                f"{concept} swept over {len(VOCAB[concept])} levels for {len(result)} "
                f"model(s) in {seconds:.1f} s; other tokens as shown"
            )
            self.sweep_done.emit()

        self.sweep_label.setText(f"Sweeping {concept}…")
        self.sweep_slot.start(work, done)

    def _draw_sweep(self, labels: tuple[str, ...]) -> None:
        self.plot.clear()
        swatches = [f'<span style="color:{LABEL_COLOURS[k % len(LABEL_COLOURS)]}">■</span> {lab}'
                    for k, lab in enumerate(labels)]  # fmt: skip
        dashes = ("——", "- - -", "·····", "-·-·")
        styles = [f"{dashes[m % len(dashes)]} {short_spec(spec)}"
                  for m, spec in enumerate(self.sweep_result)]  # fmt: skip
        self.legend_label.setText(
            " &nbsp; ".join(swatches) + " &nbsp;|&nbsp; " + " &nbsp; ".join(styles)
        )
        levels = VOCAB[self.sweep_concept]
        x = list(range(len(levels)))
        for m, curves in enumerate(self.sweep_result.values()):
            style = MODEL_STYLES[m % len(MODEL_STYLES)]
            for k, lab in enumerate(labels):
                pen = pg.mkPen(LABEL_COLOURS[k % len(LABEL_COLOURS)], width=2, style=style)
                self.plot.plot(x, curves[lab], pen=pen, symbol="o", symbolSize=5,
                               symbolBrush=LABEL_COLOURS[k % len(LABEL_COLOURS)])  # fmt: skip
        self.plot.getAxis("bottom").setTicks([list(zip(x, levels))])
        self.plot.setXRange(-0.6, len(levels) - 0.4, padding=0)
        self.plot.setLabel("bottom", self.sweep_concept)
