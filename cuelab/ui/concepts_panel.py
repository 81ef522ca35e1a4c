"""Concept scores against the norms' bin edges, and one editable chip per concept.

Each binned concept shows its continuous score as a marker on a scale cut by
the profile's four quantile edges (the five bins are the five tokens); the
chip beside it holds the token and a menu of its vocabulary. Chips that
differ from the clip's own tokens are marked, and a score that is undefined
(PITCH of a clip with no voiced frame) is marked at its chip with the token
actually sent. Below: reset, shuffle, conflict, corrupt(p) and ablate, which
act on the clip's own tokens exactly as the batch conditions of the same name
do, and the token text exactly as sent. While a new clip or region is
analysed, bars and chips are greyed ("analysing…") and edits are refused, so
an edit can never be made to the previous clip's tokens and then dropped.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPainter, QPen, QPolygonF
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

from cuelab.core.cues import (
    BINNED_CONCEPTS,
    CONCEPTS,
    VOCAB,
    NormsProfile,
    ablate,
    conflict,
    corrupt,
)
from cuelab.core.errors import CueLabError
from cuelab.ui.remedies import window_text
from cuelab.ui.session import Session
from cuelab.ui.widgets import ElidedLabel

DROPPED = "(dropped)"
_BIN_COLOURS = ("#dbe8f5", "#b7d1ea", "#f2f2f2", "#f6d5b0", "#eeb27a")


class ScoreBar(QWidget):
    """A score marker on a scale cut into five bins by four edges."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.score = math.nan
        self.edges: list[float] = []
        self.active_bin = -1
        self.setMinimumSize(100, 22)

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
        if not self.isEnabled():  # stale: the previous clip's score while a new one is analysed
            p.setOpacity(0.3)
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
        self.undefined = False  # the clip's score is undefined: the token is a fallback
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.setMinimumWidth(120)
        from PySide6.QtWidgets import QMenu

        menu = QMenu(self)
        self.token_actions = {}
        for token in VOCAB[concept]:
            action = menu.addAction(token)
            action.triggered.connect(lambda _=False, t=token: panel.choose(concept, t))
            self.token_actions[token] = action
        menu.addSeparator()
        drop = menu.addAction("drop this concept")
        drop.triggered.connect(lambda: panel.choose(concept, None))
        self.sweep_action = menu.addAction(f"sweep {concept} across models…")
        self.sweep_action.triggered.connect(lambda: panel.sweep_requested.emit(concept))
        self.setMenu(menu)

    def show_token(self, token: str | None, aligned: str | None, undefined: bool = False) -> None:
        """Display ``token``; mark the chip when it differs from the clip's own.

        ``undefined``: the clip's score for this concept could not be computed,
        so its own token is a fallback (MID); the chip says so with a "?".
        """
        self.token = token
        self.edited = aligned is not None and token != aligned
        self.undefined = undefined
        text = token if token is not None else DROPPED
        if self.edited:
            text += " ✎"
        elif undefined:
            text += " ?"
        self.setText(text)
        font = self.font()
        font.setBold(self.edited)
        self.setFont(font)
        if self.edited:
            style = "background: #ffe08a; border: 1px solid #c08000;"
        elif undefined:
            style = "background: #eeeeee; border: 1px dashed #888; color: #555;"
        else:
            style = "border: 1px solid #9aa;"
        self.setStyleSheet(f"QToolButton {{ {style} border-radius: 4px; }}")
        tips = []
        if undefined:
            tips.append(
                f"{self.concept} is undefined for this clip (no voiced frames or too short): "
                f"{aligned} is sent as a fallback"
            )
        if self.edited:
            tips.append(f"{self.concept}: the clip's own token is {aligned}")
        self.setToolTip("\n".join(tips))
        for name, action in self.token_actions.items():  # the menu marks the clip's own token
            action.setText(f"{name}   (clip's own)" if name == aligned else name)


class ConceptsPanel(QGroupBox):
    """Concept scores, bins and editable token chips.

    Signals:
        sweep_requested(str): a chip's menu asked to sweep its concept across its levels.
    """

    sweep_requested = Signal(str)

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__("Concepts and tokens", parent)
        self.session = session
        self.bars: dict[str, ScoreBar] = {}
        self.chips: dict[str, TokenChip] = {}
        self.rng = np.random.default_rng()
        self._build()
        session.analysis_changed.connect(self._show_scores)
        session.analysis_started.connect(self._on_analysing)
        session.analysis_failed.connect(self._on_analysis_failed)
        session.clip_failed.connect(self._on_clip_failed)
        session.tokens_changed.connect(self._show_tokens)
        session.norms_changed.connect(self._show_norms)
        self._show_norms()

    def _build(self) -> None:
        self.norms_label = QLabel()
        norms_button = QPushButton("Norms…")
        norms_button.setToolTip("Choose a norms profile (JSON from `cuelab norms`)")
        norms_button.clicked.connect(self._choose_norms)
        self.state_label = QLabel("")
        self.state_label.setStyleSheet("color: #a05000; font-style: italic;")
        top = QHBoxLayout()
        top.addWidget(self.norms_label, 1)
        top.addWidget(self.state_label)
        top.addWidget(norms_button)

        grid = QGridLayout()
        grid.setColumnStretch(1, 1)
        self.notes: dict[str, ElidedLabel] = {}
        for i, concept in enumerate(CONCEPTS):
            grid.addWidget(QLabel(concept), i, 0)
            if concept in BINNED_CONCEPTS:
                bar = ScoreBar(self)
                self.bars[concept] = bar
                grid.addWidget(bar, i, 1)
            else:
                note = ElidedLabel("")
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
            "As conflict in a batch run: the clip's own tokens, every concept inverted "
            "(VERY_LOW↔VERY_HIGH, BREATHY↔PRESSED …); earlier edits are replaced"
        )
        self.conflict_button.clicked.connect(self.apply_conflict)
        self.p_slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, value=30)
        self.p_slider.setMaximumWidth(110)
        self.p_label = QLabel()
        self.p_slider.valueChanged.connect(lambda v: self.p_label.setText(f"p={v / 100:.2f}"))
        self.p_label.setText("p=0.30")
        self.corrupt_button = QPushButton("Corrupt")
        self.corrupt_button.setToolTip(
            "As corrupt:p in a batch run: the clip's own tokens, each redrawn with probability "
            "p from its whole vocabulary (it may come back the same); earlier edits are replaced"
        )
        self.corrupt_button.clicked.connect(self.apply_corrupt)
        self.ablate_combo = QComboBox()
        self.ablate_combo.addItems(list(CONCEPTS))
        self.ablate_button = QPushButton("Ablate")
        self.ablate_button.setToolTip(
            "As ablate:CONCEPT in a batch run: the clip's own tokens without the chosen "
            "concept; earlier edits are replaced"
        )
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
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #b00020;")
        self.error_label.setVisible(False)

        self.edit_widgets = [
            *self.chips.values(),
            self.reset_button,
            self.shuffle_button,
            self.conflict_button,
            self.corrupt_button,
            self.ablate_button,
        ]
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.error_label)
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

    def _set_analysing(self, on: bool) -> None:
        """Grey bars and chips (and refuse edits) while they belong to the previous clip."""
        self.state_label.setText("analysing…" if on else "")
        for w in self.edit_widgets:
            w.setEnabled(not on)
        for bar in self.bars.values():
            bar.setEnabled(not on)
            bar.update()

    def _on_analysing(self) -> None:
        self.error_label.setVisible(False)
        self._set_analysing(True)

    def _on_analysis_failed(self, message: str) -> None:
        """Say at the panel that this clip has no tokens (until another analysis starts)."""
        self.state_label.setText("")
        self.error_label.setText(f"No tokens for this clip: {message}")
        self.error_label.setVisible(True)

    def _on_clip_failed(self, message: str) -> None:
        """The open clip did not open: nothing of the previous clip stays on show.

        A failing file outside the dataset leaves the previous clip open (and these
        panels with it); a failing dataset row becomes the open, empty clip.
        """
        if self.session.audio is not None:
            return
        self._set_analysing(False)
        for w in self.edit_widgets:
            w.setEnabled(False)
        for chip in self.chips.values():
            chip.show_token(None, None)
        for bar in self.bars.values():
            bar.set_data(math.nan, [], -1)
            bar.setToolTip("")
            bar.setEnabled(False)
        for note in self.notes.values():
            note.setText("")
        self.text_edit.setText("")
        self.text_edit.setToolTip("")
        self.error_label.setText(f"No tokens: the clip did not open ({message})")
        self.error_label.setVisible(True)

    @property
    def analysing(self) -> bool:
        """True while the panel shows "analysing…"."""
        return self.state_label.text() == "analysing…"

    def _show_scores(self) -> None:
        result = self.session.concepts
        if result is None:
            return
        self._set_analysing(False)
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
        scores = s.concepts.scores if s.concepts is not None else {}
        for concept, chip in self.chips.items():
            score = scores.get(concept)
            chip.show_token(
                tokens.get(concept) if tokens is not None else None,
                aligned.get(concept) if aligned is not None else None,
                undefined=score is not None and not math.isfinite(score),
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
        """The clip's own tokens with every concept inverted (the batch ``conflict``)."""
        if self.session.aligned is not None:
            self.session.set_tokens(conflict(self.session.aligned))

    def apply_corrupt(self) -> None:
        """Corrupt the clip's own tokens with the slider's p."""
        base = self.session.aligned
        if base is not None:
            self.session.set_tokens(corrupt(base, self.p_slider.value() / 100, self.rng).tokens)

    def apply_ablate(self) -> None:
        """The clip's own tokens without the chosen concept (the batch ``ablate:C``)."""
        if self.session.aligned is not None:
            self.session.set_tokens(ablate(self.session.aligned, self.ablate_combo.currentText()))

    # --- undo, copy ----------------------------------------------------------------

    def undo(self) -> None:
        """Back to the token set before the last edit (the workbench keeps the history:
        a new clip, region or norms profile starts a new one)."""
        self.session.undo()

    def redo(self) -> None:
        """Re-apply the edit undone last."""
        self.session.redo()

    def copy_tokens(self) -> None:
        """Copy the token text exactly as sent."""
        QGuiApplication.clipboard().setText(self.text_edit.text())
        self.session.message.emit("Token text copied")

    def copy_prompt(self) -> None:
        """Copy the full instruction with the tokens, as rendered for the model."""
        s = self.session
        if s.tokens is None:
            return
        QGuiApplication.clipboard().setText(s.task.render(s.labels, s.tokens.text() or None))
        self.session.message.emit("Prompt copied")

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
            self.session.error.emit(window_text(exc))
            return
        self.session.set_norms(profile, path)
