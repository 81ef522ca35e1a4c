"""The window fits a laptop screen, titles never widen it, and the menu's keys work."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QApplication, QWidget

LAPTOPS = [(1280, 720), (1366, 768)]


def _inside(win, widget: QWidget, min_w: int = 40, min_h: int = 40) -> bool:
    """True when ``widget`` is shown, big enough and wholly inside the window."""
    if not widget.isVisible():
        return False
    top_left = widget.mapTo(win, QPoint(0, 0))
    rect = QRect(top_left, widget.size())
    return win.rect().contains(rect) and rect.width() >= min_w and rect.height() >= min_h


def test_minimum_size_fits_a_1280x720_laptop(make_window):
    win = make_window()
    hint = win.minimumSizeHint()
    assert hint.width() <= 1280 and hint.height() <= 720, hint
    assert win.minimumSize().width() <= 1280 and win.minimumSize().height() <= 720


@pytest.mark.parametrize("size", LAPTOPS)
def test_every_panel_is_on_screen_at_laptop_sizes(ready_window, qtbot, size):
    win = ready_window
    win.resize(*size)
    qtbot.waitUntil(lambda: (win.width(), win.height()) == size, timeout=5000)
    QApplication.processEvents()
    essentials = {
        "waveform": win.clip_view.wave_plot,
        "spectrogram": win.clip_view.spec_plot,
        "clip title": win.clip_view.title,
        "play": win.clip_view.play_button,
        "predictions plot": win.predictions_panel.plot,
        "predictions table": win.predictions_panel.table,
        "concepts": win.concepts_panel.parentWidget(),  # its scroll area's viewport
        "dataset table": win.dataset_panel.table,
        "annotation": win.dataset_panel.annotation_box,
        "model": win.model_panel.parentWidget(),
        "load": win.model_panel.load_button,
    }
    for name, widget in essentials.items():
        assert _inside(win, widget, min_h=20), f"{name} is off-screen or squashed at {size}"
    for concept, chip in win.concepts_panel.chips.items():  # reachable by scrolling
        area = win.concepts_panel.parentWidget().parentWidget()
        area.ensureWidgetVisible(chip)
        QApplication.processEvents()
        assert _inside(win, chip, min_h=15), f"{concept} chip unreachable at {size}"
    win.tabs.setCurrentWidget(win.batch_panel.parentWidget().parentWidget())
    QApplication.processEvents()
    area = win.batch_panel.parentWidget().parentWidget()
    for button in (win.batch_panel.start_button, win.batch_panel.export_button):
        area.ensureWidgetVisible(button)
        QApplication.processEvents()
        assert _inside(win, button, min_h=15), f"{button.text()} unreachable at {size}"


def test_a_300_character_clip_name_never_widens_the_window(make_window, qtbot, tmp_path):
    from cuelab.core.audio.io import write_audio

    win = make_window()
    win.resize(1280, 720)
    qtbot.waitUntil(lambda: win.width() == 1280)
    min_before = win.minimumSizeHint().width()
    name = "A" + "x" * 298 + "Z"
    assert len(name) == 300
    with qtbot.waitSignal(win.session.clip_changed, timeout=10_000):
        win.session.set_audio(np.zeros(16000, dtype=np.float32), 16000, name)
    QApplication.processEvents()
    assert win.width() == 1280 and win.minimumSizeHint().width() == min_before
    title = win.clip_view.title
    assert title.text().startswith(name) and title.toolTip() == title.text()
    shown = title.elided_text()
    assert shown.startswith("Axxx") and "…" in shown and shown.endswith("Z  (1.00 s)")
    # A real file with a name near the file system's limit (255 bytes; the atomic write's
    # temporary name needs a few more).
    long_file = tmp_path / ("B" + "y" * 230 + ".wav")
    write_audio(long_file, 0.1 * np.random.default_rng(0).standard_normal(8000), 16000)
    with qtbot.waitSignal(win.session.clip_changed, timeout=10_000):
        win.session.open_file(long_file)
    QApplication.processEvents()
    assert win.width() == 1280 and win.minimumSizeHint().width() == min_before
    assert win.clip_view.title.elided_text().endswith(".wav  (0.50 s)")


@pytest.mark.parametrize("key", [Qt.Key.Key_Q, Qt.Key.Key_W])
def test_ctrl_q_and_ctrl_w_close_the_window(make_window, qtbot, key):
    win = make_window()
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=5000)
    qtbot.keyClick(win, key, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not win.isVisible(), timeout=5000)


def test_the_legend_is_not_drawn_over_the_bars(ready_window):
    panel = ready_window.predictions_panel
    assert panel.plot.getPlotItem().legend is None  # nothing floats over a bar at p = 1
    assert "audio only" in panel.legend_label.text() and "with tokens" in panel.legend_label.text()
    assert panel.legend_label.isVisible()
