"""Taking a clip's material out of the window: its audio (the mix and its stems) as WAV,
its F0 / intensity curves and concept scores as CSV, and the full prompt the model saw.

The writing is atomic (:func:`cuelab.core.safeio.atomic_path`): a failed export never
leaves half a file over an earlier one. CSV cells go through :func:`format_row`, which
neutralises spreadsheet formulas.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cuelab.core.errors import CueLabError
from cuelab.core.safeio import atomic_path, atomic_write_text, format_row
from cuelab.ui.session import Session

log = logging.getLogger(__name__)


def write_wav(path: str | Path, x: np.ndarray, sr: int) -> Path:
    """``x`` as 32-bit float WAV (the samples exactly as analysed), atomically."""
    import soundfile as sf

    target = Path(path)
    with atomic_path(target) as tmp:
        sf.write(tmp, np.asarray(x, dtype=np.float32), int(sr), format="WAV", subtype="FLOAT")
    return target


def _safe_name(name: str) -> str:
    stem = Path(name).stem if name else "clip"
    return re.sub(r"[^\w.+@-]+", "_", stem).strip("_") or "clip"


def export_audio(session: Session, mix: Any, folder: str | Path) -> list[Path]:
    """Write the shown clip and, when the mixer holds a mix of it, the mix and its two
    stems, into ``folder``. ``mix`` is the mixer's :class:`MixState` or None.

    Returns:
        The files written.
    """
    folder = Path(folder)
    written = []
    if session.audio is not None:
        base = _safe_name(session.clip_name)
        written.append(write_wav(folder / f"{base}.wav", session.audio, session.sr))
    if mix is not None:
        r = mix.result
        base = _safe_name(mix.speech_name)
        sr = int(getattr(r, "sr", 16000))
        for what, x in (
            ("mix", r.mix),
            ("speech", r.speech_stem),
            ("background", r.background_stem),
        ):
            written.append(write_wav(folder / f"{base}_{what}.wav", x, sr))
    return written


def curve_rows(tools: Any) -> list[tuple[float, float | None, float | None]]:
    """(time s, F0 Hz or None when unvoiced, intensity dB) at each analysis frame of the
    clip view's :class:`~cuelab.ui.clip_tools.ClipTools`; empty before the analysis."""
    frames = tools.f0_frames()
    if frames is None:
        return []
    times, hz = frames
    return [
        (float(t), float(f) if math.isfinite(f) else None, tools.intensity_at(float(t)))
        for t, f in zip(times, hz, strict=True)
    ]


def _cell(v: float | None, digits: int) -> str:
    return "" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def export_curves(tools: Any, path: str | Path) -> Path:
    """F0 and intensity per analysis frame as CSV: ``time_s,f0_hz,intensity_db``
    (an empty F0 cell is an unvoiced frame)."""
    lines = [format_row(["time_s", "f0_hz", "intensity_db"])]
    for t, f0, level in curve_rows(tools):
        lines.append(format_row([f"{t:.3f}", _cell(f0, 3), _cell(level, 3)]))
    return atomic_write_text(path, "".join(lines))


def export_concepts(session: Session, path: str | Path) -> Path:
    """The analysis's concept scores and tokens as CSV:
    ``concept,score,token,edges`` (an empty score is an undefined one)."""
    c = session.concepts
    lines = [format_row(["concept", "score", "token", "edges"])]
    if c is not None:
        names = list(dict.fromkeys([*c.scores, *c.tokens]))
        for name in names:
            score = c.scores.get(name)
            token = c.tokens.get(name, "")
            lines.append(format_row([name, _cell(score, 6), token, c.edges_used.get(name, "")]))
    return atomic_write_text(path, "".join(lines))


# --- the prompt ------------------------------------------------------------------------


def prompt_variants(session: Session) -> list[tuple[str, str]]:
    """The prompts of the last prediction (audio only, then with its tokens), as the
    model got them: the adapter's own chat text where it has one (``prompt_text``),
    the task's rendered instruction otherwise. Before any prediction: the current
    tokens."""
    s = session
    pred = s.prediction
    if pred is not None and pred.clip_key == s.clip_key:
        labels, text = list(pred.labels), pred.token_text
    else:
        labels = list(s.labels)
        text = s.tokens.text() if s.tokens is not None and len(s.tokens) else ""
    variants: list[tuple[str, str | None]] = [("audio only", None)]
    if text:
        variants.append(("with tokens", text))
    out = []
    for name, tokens in variants:
        shown = None
        if s.model is not None:  # every adapter has prompt_text (None: no text prompt)
            shown = s.model.prompt_text(s.task, labels, tokens)
        out.append((name, shown if shown is not None else s.task.render(labels, tokens)))
    return out


def prompt_document(variants: list[tuple[str, str]]) -> str:
    """The variants as one copyable text, each under a ``=== name ===`` line."""
    return "\n\n".join(f"=== {name} ===\n{text}" for name, text in variants)


class PromptDialog(QDialog):
    """The full prompt the model saw, read-only and copyable (Edit ▸ Show full prompt)."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Full prompt")
        self.resize(720, 480)
        model = session.model_spec or "no model loaded"
        self.setToolTip(f"As sent to {model}")
        self.text_edit = QPlainTextEdit(prompt_document(prompt_variants(session)))
        self.text_edit.setReadOnly(True)
        self.copy_button = QPushButton("Copy")
        self.copy_button.clicked.connect(self.copy)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text_edit)
        layout.addWidget(buttons)

    def copy(self) -> None:
        """Put the whole text on the clipboard."""
        QGuiApplication.clipboard().setText(self.text_edit.toPlainText())


# --- the window's menu entries ------------------------------------------------------------


class ExportActions(QObject):
    """File ▸ Export (audio, curves, concept scores), Edit ▸ Show full prompt and
    View ▸ Zoom to selection, added to a :class:`~cuelab.ui.main_window.MainWindow`'s
    menus. The methods take a path for scripted use (and tests); without one they ask."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.session: Session = window.session
        bar = window.menuBar()
        menus = {a.text().replace("&", ""): a.menu() for a in bar.actions() if a.menu()}
        file_menu, edit, view = menus["File"], menus["Edit"], menus["View"]
        export = QMenu("&Export", file_menu)
        file_menu.insertMenu(window.close_action, export)
        file_menu.insertSeparator(window.close_action)
        window._action(export, "Clip, mix and stems as &WAV…", self.export_audio)
        window._action(export, "&F0 and intensity as CSV…", self.export_curves)
        window._action(export, "&Concept scores as CSV…", self.export_concepts)
        window._action(edit, "&Show full prompt…", self.show_prompt, "Ctrl+Alt+P")
        tools = window.clip_view.tools
        window._action(view, "Zoom to &selection", tools.zoom_to_selection, "Ctrl+E")
        self.dialog: PromptDialog | None = None
        # The same entries on the plots' right-click menus, under pyqtgraph's own.
        self.plot_actions = []
        for plot in (window.clip_view.wave_plot, window.clip_view.spec_plot):
            menu = plot.getViewBox().menu
            menu.addSeparator()
            self.plot_actions += [
                window._action(menu, "Zoom to selection", tools.zoom_to_selection),
                window._action(menu, "Export clip, mix and stems as WAV…", self.export_audio),
                window._action(menu, "Export F0 and intensity as CSV…", self.export_curves),
                window._action(menu, "Export concept scores as CSV…", self.export_concepts),
                window._action(menu, "Show full prompt…", self.show_prompt),
            ]

    def _mix(self) -> Any:
        mixer = self.window.mixer_panel
        return None if mixer is None else mixer.mix

    def _ask(self, title: str, suffix: str, what: str) -> str:
        s = self.session
        folder = s.clip_path.parent if s.clip_path is not None else Path.cwd()
        name = f"{_safe_name(s.clip_name)}_{suffix}"
        path, _ = QFileDialog.getSaveFileName(self.window, title, str(folder / name), what)
        return path

    def _written(self, paths: list[Path]) -> None:
        names = ", ".join(p.name for p in paths)
        self.session.message.emit(f"Exported {names} to {paths[0].parent}" if paths else "")

    def _failed(self, target: str | Path, exc: Exception) -> None:
        log.warning("export to %s failed", target, exc_info=True)
        self.session.error.emit(f"could not export to {target}: {exc}")

    def export_audio(self, folder: str | Path | None = None) -> list[Path]:
        """The clip (and the mixer's mix with its stems) as WAV files in a folder."""
        if self.session.audio is None:
            return []
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self.window, "Export audio to")
            if not folder:
                return []
        try:
            paths = export_audio(self.session, self._mix(), folder)
        except (OSError, RuntimeError) as exc:  # soundfile raises RuntimeError subclasses
            self._failed(folder, exc)
            return []
        self._written(paths)
        return paths

    def export_curves(self, path: str | Path | None = None) -> Path | None:
        """F0 and intensity per frame as CSV."""
        if self.session.features is None:
            self.session.warning.emit("No F0 yet: the clip is still being analysed")
            return None
        path = path or self._ask("Export F0 and intensity", "curves.csv", "CSV (*.csv)")
        if not path:
            return None
        try:
            out = export_curves(self.window.clip_view.tools, path)
        except (OSError, CueLabError) as exc:
            self._failed(path, exc)
            return None
        self._written([out])
        return out

    def export_concepts(self, path: str | Path | None = None) -> Path | None:
        """The concept scores and tokens as CSV."""
        if self.session.concepts is None:
            self.session.warning.emit("No concept scores yet: the clip is still being analysed")
            return None
        path = path or self._ask("Export concept scores", "concepts.csv", "CSV (*.csv)")
        if not path:
            return None
        try:
            out = export_concepts(self.session, path)
        except (OSError, CueLabError) as exc:
            self._failed(path, exc)
            return None
        self._written([out])
        return out

    def show_prompt(self) -> PromptDialog:
        """Edit ▸ Show full prompt…: a window with the prompt text and a Copy button."""
        if self.dialog is not None:
            self.dialog.close()
        self.dialog = PromptDialog(self.session, self.window)
        self.dialog.show()
        return self.dialog
