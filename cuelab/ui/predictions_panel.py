"""Audio-only versus with-tokens probabilities, side by side, and what changed.

The headline says what the numbers belong to: "analysing…" while a new clip
or region is analysed (the bars are cleared), and a failed prediction or
analysis stays in red until the next prediction arrives, so it never reads
"waiting for the clip…" forever.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
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

from cuelab.core.workbench import PIN_LETTERS
from cuelab.ui.session import PredictionUpdate, Session

AUDIO_COLOUR = "#7f9fbf"
TOKENS_COLOUR = "#e07b39"


class PredictionsPanel(QGroupBox):
    """A table and a bar chart of both predictions, the Δ per label and the top labels."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__("Predictions", parent)
        self.session = session
        self.update_count = 0
        self.last: PredictionUpdate | None = None
        self.has_error = False
        self._build()
        session.prediction_changed.connect(self.show_update)
        session.model_changed.connect(self._on_model)
        session.clip_changed.connect(self._clear)
        session.analysis_started.connect(self._on_analysing)
        session.analysis_failed.connect(
            lambda msg: self.show_error(f"No prediction: the clip could not be analysed ({msg})")
        )
        session.predict_failed.connect(lambda msg: self.show_error(f"Prediction failed: {msg}"))
        session.model_failed.connect(self._on_model_failed)
        session.clip_failed.connect(self._on_clip_failed)
        session.labels_changed.connect(self._show_labels)
        session.pins_changed.connect(self._show_pins)
        self._show_labels()
        session.slots["predict"].busy_changed.connect(self._on_busy)

    def _build(self) -> None:
        self.top_label = QLabel("No model loaded")
        self.top_label.setWordWrap(True)
        self.top_label.setStyleSheet("font-weight: bold;")
        self.labels_label = QLabel("")
        self.labels_label.setWordWrap(True)
        self.labels_label.setStyleSheet("color: #555;")
        headers = ["label", "audio only", "with tokens", "Δ"]
        for letter in PIN_LETTERS:
            headers += [letter, f"Δ {letter}"]
        self.table = QTableWidget(0, len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        for j in range(4, len(headers)):
            self.table.setColumnHidden(j, True)
        self.pin_button = QPushButton("Pin as A")
        self.pin_button.setToolTip(
            "Keep this token set's answer as A (then B, C), to compare the next edits against it"
        )
        self.pin_button.setEnabled(False)
        self.pin_button.clicked.connect(self.toggle_pin)
        self.unpin_button = QPushButton("Unpin all")
        self.unpin_button.setToolTip("forget the pinned token sets")
        self.unpin_button.setVisible(False)
        self.unpin_button.clicked.connect(self._unpin)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setMaximumHeight(140)
        self.table.setMinimumHeight(60)
        self.plot = pg.PlotWidget()
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setYRange(0, 1, padding=0.02)
        self.plot.setLabel("left", "p")
        self.plot.setMinimumHeight(80)
        self.audio_bars = pg.BarGraphItem(
            x=[], height=[], width=0.38, brush=AUDIO_COLOUR, name="audio only"
        )
        self.token_bars = pg.BarGraphItem(
            x=[], height=[], width=0.38, brush=TOKENS_COLOUR, name="with tokens"
        )
        self.plot.addItem(self.audio_bars)
        self.plot.addItem(self.token_bars)
        self.latency_label = QLabel("")
        self.latency_label.setStyleSheet("color: #555;")
        # The legend sits above the plot, never over the bars (a tall bar reaches p = 1).
        self.legend_label = QLabel(
            f'<span style="color:{AUDIO_COLOUR}">■</span> audio only &nbsp; '
            f'<span style="color:{TOKENS_COLOUR}">■</span> with tokens'
        )
        self.legend_label.setTextFormat(Qt.TextFormat.RichText)
        layout = QVBoxLayout(self)
        layout.addWidget(self.top_label)
        layout.addWidget(self.labels_label)
        layout.addWidget(self.legend_label)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.table)
        bottom = QHBoxLayout()
        bottom.addWidget(self.latency_label, 1)
        bottom.addWidget(self.pin_button)
        bottom.addWidget(self.unpin_button)
        layout.addLayout(bottom)
        self.pin_label = QLabel("")
        self.pin_label.setWordWrap(True)
        self.pin_label.setStyleSheet("color: #555;")
        self.pin_label.setVisible(False)
        layout.addWidget(self.pin_label)

    def _headline(self, text: str, error: bool = False) -> None:
        self.top_label.setText(text)
        self.top_label.setStyleSheet(
            "font-weight: bold; color: #b00020;" if error else "font-weight: bold;"
        )
        self.has_error = error

    def show_error(self, message: str) -> None:
        """A failure about this clip's prediction, shown until the next prediction."""
        self._headline(message, error=True)

    def _show_labels(self) -> None:
        """Which label set is scored: the dataset's (as in a batch run) or the model's."""
        s = self.session
        self.labels_label.setText(f"Labels: {', '.join(s.labels)} ({s.label_source})")

    def _on_clip_failed(self, message: str) -> None:
        """The open clip did not open: the previous clip's answer goes (a failing file
        outside the dataset leaves the previous clip open, and its answer with it)."""
        if self.session.audio is not None:
            return
        self._clear()
        self.last = None
        self.latency_label.setText("")
        self.show_error(f"No prediction: the clip did not open ({message})")

    def _on_model_failed(self, message: str) -> None:
        if self.session.model is None:
            self._headline(f"No model loaded ({message})", error=True)

    def _on_analysing(self) -> None:
        if self.session.model is not None:
            self._headline(f"Model {self.session.model_spec}: analysing the clip…")
        self._grey(True)

    def _grey(self, on: bool) -> None:
        self.plot.setEnabled(not on)
        self.table.setEnabled(not on)

    def _on_model(self) -> None:
        s = self.session
        if s.model is None:
            self._headline("No model loaded")
            self._clear()
        elif s.audio is None:
            self._headline(f"Model {s.model_spec}: open a clip to see its prediction")
        elif not self.has_error:
            self._headline(f"Model {s.model_spec}: scoring the clip…")

    def _on_busy(self, busy: bool) -> None:
        if busy:
            self.latency_label.setText(
                self.latency_label.text().split(" · updating")[0] + " · updating…"
            )

    @property
    def pins(self) -> list[PredictionUpdate]:
        """The pinned answers, A first (the workbench's; at most one per letter)."""
        return self.session.wb.pins

    @property
    def pinned(self) -> PredictionUpdate | None:
        """The answer pinned as A (None: nothing pinned)."""
        return self.session.wb.pinned

    def toggle_pin(self) -> None:
        """Pin the shown answer as the next letter (A, B, C): the table adds its columns.

        With every letter in use the button unpins them all. The workbench unpins them
        itself once A's clip, region or model is no longer the one shown.
        """
        if len(self.pins) >= len(PIN_LETTERS):
            self._unpin()
        elif self.last is not None:
            self.session.wb.pin(self.last)
            self.show_update(self.last)

    def pin_text(self, letter: str) -> str:
        """The token text pinned as ``letter`` ('' when that letter is free)."""
        return self.session.wb.pin_text(letter)

    def _show_pins(self) -> None:
        full = [f"{letter}: {pin.token_text or '(no tokens: audio only)'}"
                for letter, pin in zip(PIN_LETTERS, self.pins)]  # fmt: skip
        # B and C say only what differs from A: three full token texts would hide the plot.
        lines = full[:1] + [
            f"{letter}: {_differs(self.pins[0].token_text, pin.token_text)}"
            for letter, pin in zip(PIN_LETTERS[1:], self.pins[1:])
        ]
        self.pin_label.setText("\n".join(lines))
        self.pin_label.setToolTip("\n".join(full))
        header = self.table.horizontalHeader()
        mode = QHeaderView.ResizeMode
        header.setSectionResizeMode(mode.ResizeToContents if self.pins else mode.Stretch)
        self.pin_label.setVisible(bool(self.pins))
        n = len(self.pins)
        self.pin_button.setText(f"Pin as {PIN_LETTERS[n]}" if n < len(PIN_LETTERS) else "Unpin all")
        self.unpin_button.setVisible(0 < n < len(PIN_LETTERS))
        for k in range(len(PIN_LETTERS)):
            for j in (4 + 2 * k, 5 + 2 * k):
                self.table.setColumnHidden(j, k >= n)

    def _unpin(self) -> None:
        self.session.wb.unpin_all()

    def _clear(self) -> None:
        self.pin_button.setEnabled(False)
        self.table.setRowCount(0)
        self.audio_bars.setOpts(x=[], height=[])
        self.token_bars.setOpts(x=[], height=[])

    def show_update(self, update: PredictionUpdate) -> None:
        """Draw one :class:`PredictionUpdate`."""
        self.last = update
        self.update_count += 1
        self._grey(False)
        labels = list(update.labels)
        pa = np.array([update.audio_only[lab] for lab in labels])
        pt = np.array([update.with_tokens[lab] for lab in labels]) if update.with_tokens else None
        x = np.arange(len(labels), dtype=float)
        self.audio_bars.setOpts(x=x - 0.2, height=pa)
        self.token_bars.setOpts(x=x + 0.2, height=pt if pt is not None else np.zeros_like(pa))
        self.plot.getAxis("bottom").setTicks([list(zip(x, labels))])
        self.plot.setXRange(-0.6, len(labels) - 0.4, padding=0)

        self.pin_button.setEnabled(True)
        pins = [p for p in self.pins if p.labels == update.labels]
        self.table.setRowCount(len(labels))
        rows_h = 22 * len(labels)  # the rows' fixed height
        frame = 2 * self.table.frameWidth()
        # with pins the columns keep their width and the table scrolls sideways
        bar = self.table.horizontalScrollBar().sizeHint().height() if self.pins else 0
        self.table.setMaximumHeight(
            self.table.horizontalHeader().height() + rows_h + frame + 2 + bar
        )
        for i, lab in enumerate(labels):
            current = pt[i] if pt is not None else pa[i]
            delta = _tidy(pt[i] - pa[i]) if pt is not None else 0.0
            cells: list[tuple[str, float | None]] = [
                (lab, None),
                (f"{pa[i]:.3f}", None),
                (f"{pt[i]:.3f}" if pt is not None else "—", None),
                (f"{delta:+.3f}", delta),
            ]
            for pin in pins:
                a = pin.shown[lab]
                cells += [(f"{a:.3f}", None), (f"{_tidy(current - a):+.3f}", _tidy(current - a))]
            for j, (text, signed) in enumerate(cells):
                item = QTableWidgetItem(text)
                if j:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                if signed is not None and abs(signed) >= 0.005:
                    item.setForeground(QBrush(QColor("#00802b" if signed > 0 else "#c00000")))
                self.table.setItem(i, j, item)

        top_a = update.top_audio
        text = f"Top, audio only: {top_a} ({update.audio_only[top_a]:.2f})"
        if update.with_tokens:
            top_t = update.top_tokens or ""
            flip = "  ⇄ changed" if top_t != top_a else ""
            text += f"   ·   with tokens: {top_t} ({update.with_tokens[top_t]:.2f}){flip}"
        else:
            text += "   ·   no tokens sent"
        self._headline(text)
        self.latency_label.setText(
            f"Last update {update.latency_s * 1000:.0f} ms after the edit "
            f"(model {update.model_s * 1000:.0f} ms)"
        )


def _tidy(x: float) -> float:
    """No '-0.000': differences below display precision are 0."""
    return 0.0 if abs(x) < 5e-4 else float(x)


def _differs(a: str, b: str) -> str:
    """Token text ``b`` as what differs from ``a`` ("as A" when nothing does)."""
    if a == b:
        return "as A"
    old = set(a.split())
    changed = [item for item in b.split() if item not in old]
    dropped = [item.split("=")[0] for item in a.split() if item.split("=")[0] not in b]
    parts = changed + [f"no {name}" for name in dropped]
    return (" ".join(parts) + " (rest as A)") if parts else b
