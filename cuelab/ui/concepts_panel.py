"""Concept scores against the norms' bin edges, and one editable chip per concept.

Each binned concept shows its continuous score as a marker on a scale cut by
the profile's four quantile edges (the five bins are the five tokens); the
chip beside it holds the token and a menu of its vocabulary. Chips that
differ from the clip's own tokens are marked. Below: reset, shuffle,
conflict, corrupt(p) and ablate, and the token text exactly as sent.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cuelab.core.cues.concepts import BINNED_CONCEPTS
from cuelab.core.cues.interventions import ablate, conflict, corrupt
from cuelab.core.cues.norms import NormsProfile
from cuelab.core.cues.tokens import CONCEPTS, VOCAB
from cuelab.core.errors import CueLabError
from cuelab.ui.session import Session

DROPPED = "(dropped)"
_BIN_COLOURS = ("#dbe8f5", "#b7d1ea", "#f2f2f2", "#f6d5b0", "#eeb27a")


class ScoreBar(QWidget):
    """A score marker on a scale cut into five bins by four edges."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.score = math.nan
        self.edges: list[float] = []
        self.active_bin = -1
        self.setMinimumSize(160, 22)

    def set_data(self, score: float, edges: list[float], active_bin: int) -> None:
        """Show ``score`` against ``edges``; ``active_bin`` is the bin of the token."""
        self.score, self.edges, self.active_bin = score, list(edges), active_bin
        text = "undefined" if not math.isfinite(score) else f"{score:+.2f}"
        self.setToolTip(f"score {text}; edges {', '.join(f'{e:+.2f}' for e in edges)}")
        self.update()

    def _span(self) -> tuple[float, float]:
        lo, hi = (self.edges[0], self.edges[-1]) if self.edges else (-1.0, 1.0)
        pad = max(0.5, 0.6 * (hi - lo))
        lo, hi = lo - pad, hi + pad
        if math.isfinite(self.score):
            lo, hi = min(lo, self.score - 0.2), max(hi, self.score + 0.2)
        return lo, hi

    def paintEvent(self, _event) -> None:
        """Bins as coloured bands, edges as ticks, the score as a triangle."""
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h = self.width(), self.height()
        lo, hi = self._span()

        def xpos(v: float) -> float:
            return 2 + (w - 4) * (v - lo) / (hi - lo)

        bounds = [lo, *self.edges, hi] if self.edges else [lo, hi]
        for i in range(len(bounds) - 1):
            colour = QColor(_BIN_COLOURS[i % len(_BIN_COLOURS)])
            if i == self.active_bin:
                colour = colour.darker(125)
            x0, x1 = xpos(bounds[i]), xpos(bounds[i + 1])
            p.fillRect(QRectF(x0, 4, x1 - x0, h - 8), colour)
        p.setPen(QPen(QColor("#555555"), 1))
        for e in self.edges:
            p.drawLine(QPointF(xpos(e), 2), QPointF(xpos(e), h - 2))
        if math.isfinite(self.score):
            x = xpos(self.score)
            p.setPen(QPen(QColor("#000000"), 2))
            p.drawLine(QPointF(x, 2), QPointF(x, h - 2))
            p.setBrush(QColor("#c00000"))
            p.setPen(Qt.PenStyle.NoPen)
            p.drawPolygon(QPolygonF([QPointF(x - 5, 0), QPointF(x + 5, 0), QPointF(x, 7)]))
        else:
            p.setPen(QColor("#777777"))
            p.drawText(QRectF(0, 0, w, h), Qt.AlignmentFlag.AlignCenter, "undefined")
        p.end()


class TokenChip(QToolButton):
    """One concept's token, with a menu of its vocabulary (and "drop")."""

    def __init__(self, concept: str, panel: ConceptsPanel) -> None:
        super().__init__(panel)
        self.concept = concept
        self.panel = panel
        self.token: str | None = None
        self.edited = False
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.setMinimumWidth(150)
        from PySide6.QtWidgets import QMenu

        menu = QMenu(self)
        for token in VOCAB[concept]:
            action = menu.addAction(token)
            action.triggered.connect(lambda _=False, t=token: panel.choose(concept, t))
        menu.addSeparator()
        drop = menu.addAction("drop this concept")
        drop.triggered.connect(lambda: panel.choose(concept, None))
        self.setMenu(menu)

    def show_token(self, token: str | None, aligned: str | None) -> None:
        """Display ``token``; mark the chip when it differs from the clip's own."""
        self.token = token
        self.edited = aligned is not None and token != aligned
        text = token if token is not None else DROPPED
        self.setText(f"{text} ✎" if self.edited else text)
        font = self.font()
        font.setBold(self.edited)
        self.setFont(font)
        self.setStyleSheet(
            "QToolButton { background: #ffe08a; border: 1px solid #c08000; border-radius: 4px; }"
            if self.edited
            else "QToolButton { border: 1px solid #9aa; border-radius: 4px; }"
        )
        self.setToolTip(f"{self.concept}: the clip's own token is {aligned}" if self.edited else "")


class ConceptsPanel(QGroupBox):
    """Concept scores, bins and editable token chips."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__("Concepts and tokens", parent)
        self.session = session
        self.bars: dict[str, ScoreBar] = {}
        self.chips: dict[str, TokenChip] = {}
        self.rng = np.random.default_rng()
        self._build()
        session.analysis_changed.connect(self._show_scores)
        session.tokens_changed.connect(self._show_tokens)
        session.norms_changed.connect(self._show_norms)
        self._show_norms()

    def _build(self) -> None:
        self.norms_label = QLabel()
        norms_button = QPushButton("Norms…")
        norms_button.setToolTip("Choose a norms profile (JSON from `cuelab norms`)")
        norms_button.clicked.connect(self._choose_norms)
        top = QHBoxLayout()
        top.addWidget(self.norms_label, 1)
        top.addWidget(norms_button)

        grid = QGridLayout()
        grid.setColumnStretch(1, 1)
        self.notes: dict[str, QLabel] = {}
        for i, concept in enumerate(CONCEPTS):
            grid.addWidget(QLabel(concept), i, 0)
            if concept in BINNED_CONCEPTS:
                bar = ScoreBar(self)
                self.bars[concept] = bar
                grid.addWidget(bar, i, 1)
            else:
                note = QLabel("")
                note.setStyleSheet("color: #555;")
                self.notes[concept] = note
                grid.addWidget(note, i, 1)
            chip = TokenChip(concept, self)
            self.chips[concept] = chip
            grid.addWidget(chip, i, 2)

        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Back to the clip's own tokens")
        self.reset_button.clicked.connect(self.session.reset_tokens)
        self.shuffle_button = QPushButton("Shuffle")
        self.shuffle_button.setToolTip("Use the tokens of another clip of the open dataset")
        self.shuffle_button.clicked.connect(lambda: self.session.shuffle_tokens())
        self.conflict_button = QPushButton("Conflict")
        self.conflict_button.setToolTip(
            "Invert every concept (VERY_LOW↔VERY_HIGH, BREATHY↔PRESSED …)"
        )
        self.conflict_button.clicked.connect(self.apply_conflict)
        self.p_slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, value=30)
        self.p_slider.setMaximumWidth(110)
        self.p_label = QLabel()
        self.p_slider.valueChanged.connect(lambda v: self.p_label.setText(f"p={v / 100:.2f}"))
        self.p_label.setText("p=0.30")
        self.corrupt_button = QPushButton("Corrupt")
        self.corrupt_button.setToolTip(
            "As corrupt:p in a batch run: redraw each token with probability p from its whole "
            "vocabulary (it may come back the same)"
        )
        self.corrupt_button.clicked.connect(self.apply_corrupt)
        self.ablate_combo = QComboBox()
        self.ablate_combo.addItems(list(CONCEPTS))
        self.ablate_button = QPushButton("Ablate")
        self.ablate_button.setToolTip("Drop the chosen concept from the token text")
        self.ablate_button.clicked.connect(self.apply_ablate)
        row1 = QHBoxLayout()
        for w in (self.reset_button, self.shuffle_button, self.conflict_button):
            row1.addWidget(w)
        row1.addStretch(1)
        row2 = QHBoxLayout()
        for w in (
            self.corrupt_button,
            self.p_slider,
            self.p_label,
            self.ablate_combo,
            self.ablate_button,
        ):
            row2.addWidget(w)
        row2.addStretch(1)

        self.text_edit = QLabel()
        self.text_edit.setWordWrap(True)
        self.text_edit.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text_edit.setTextFormat(Qt.TextFormat.PlainText)
        self.text_edit.setFont(QFont("monospace"))
        self.text_edit.setStyleSheet(
            "QLabel { background: white; border: 1px solid #bbb; padding: 4px; }"
        )
        self.text_edit.setToolTip("The token text exactly as appended to the prompt")

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(grid)
        layout.addLayout(row1)
        layout.addLayout(row2)
        layout.addWidget(QLabel("Token text sent to the model:"))
        layout.addWidget(self.text_edit)
        layout.addStretch(1)

    # --- display -----------------------------------------------------------------

    def _show_norms(self) -> None:
        s = self.session
        name = s.norms_path.name if s.norms_path else "demo-norms.json (default)"
        self.norms_label.setText(f"Norms: {name} · {s.norms.n_clips} clips")

    def _show_scores(self) -> None:
        result = self.session.concepts
        if result is None:
            return
        norms = self.session.norms
        for concept, bar in self.bars.items():
            edges = norms.edges[concept][result.edges_used.get(concept, "global")]
            token = result.tokens.get(concept)
            active = VOCAB[concept].index(token) if token in VOCAB[concept] else -1
            bar.set_data(result.scores.get(concept, math.nan), edges, active)
            bar.setToolTip(bar.toolTip() + f" ({result.edges_used.get(concept, 'global')} edges)")
        for note in self.notes.values():
            note.setText(result.vq_reason or "")
            note.setToolTip(result.vq_reason)

    def _show_tokens(self) -> None:
        s = self.session
        tokens, aligned = s.tokens, s.aligned
        for concept, chip in self.chips.items():
            chip.show_token(
                tokens.get(concept) if tokens is not None else None,
                aligned.get(concept) if aligned is not None else None,
            )
        self.text_edit.setText(tokens.text() if tokens is not None else "")
        if tokens is not None:
            self.text_edit.setToolTip(s.task.render(s.labels, tokens.text() or None))

    # --- edits -------------------------------------------------------------------

    def choose(self, concept: str, token: str | None) -> None:
        """Set one concept's token (None drops the concept)."""
        tokens = self.session.tokens
        if tokens is None:
            return
        if token is None:
            self.session.set_tokens(tokens.without(concept))
        else:
            self.session.set_tokens(tokens.replace(**{concept: token}))

    def apply_conflict(self) -> None:
        """Invert every concept of the current tokens."""
        if self.session.tokens is not None:
            self.session.set_tokens(conflict(self.session.tokens))

    def apply_corrupt(self) -> None:
        """Corrupt the clip's own tokens with the slider's p."""
        base = self.session.aligned
        if base is not None:
            self.session.set_tokens(corrupt(base, self.p_slider.value() / 100, self.rng).tokens)

    def apply_ablate(self) -> None:
        """Drop the chosen concept."""
        if self.session.tokens is not None:
            self.session.set_tokens(ablate(self.session.tokens, self.ablate_combo.currentText()))

    def _choose_norms(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Norms profile", str(Path.cwd()), "Norms profile (*.json)"
        )
        if path:
            self.load_norms(Path(path))

    def load_norms(self, path: Path) -> None:
        """Load a profile (small JSON; read on the GUI thread) and re-derive the tokens."""
        try:
            profile = NormsProfile.load(path)
        except CueLabError as exc:
            self.session.error.emit(str(exc))
            return
        self.session.set_norms(profile, path)
