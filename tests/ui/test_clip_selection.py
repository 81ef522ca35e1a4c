"""Praat-style selection: drag to select, zoom to it, readouts of F0 and intensity."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

SR = 16000


def tone(seconds: float = 3.0, hz: float = 180.0) -> np.ndarray:
    """A voiced-like harmonic tone with a loud middle second (intensity varies)."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * hz * k * t) / k for k in range(1, 6))
    gain = np.where((t > 1.0) & (t < 2.0), 0.5, 0.05)
    return (gain * x / 2).astype(np.float32)


def send(widget, kind: QEvent.Type, pos: QPoint, buttons, modifiers=Qt.KeyboardModifier.NoModifier):
    button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
    local = QPointF(pos)
    glob = QPointF(widget.mapToGlobal(pos))
    event = QMouseEvent(kind, local, local, glob, button, buttons, modifiers)
    QApplication.sendEvent(widget, event)


def drag(plot, x0: int, x1: int, y: int, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """Press at x0, move in steps to x1 with the left button held, release there."""
    vp = plot.viewport()
    held = Qt.MouseButton.LeftButton
    send(vp, QEvent.Type.MouseButtonPress, QPoint(x0, y), held, modifiers)
    for x in np.linspace(x0, x1, 8).astype(int)[1:]:
        send(vp, QEvent.Type.MouseMove, QPoint(int(x), y), held, modifiers)
    send(vp, QEvent.Type.MouseButtonRelease, QPoint(x1, y), Qt.MouseButton.NoButton, modifiers)


def seconds_at(plot, x: int, y: int) -> float:
    """Where a viewport pixel lies on the time axis, through the plot's own mapping."""
    return plot.getViewBox().mapSceneToView(plot.mapToScene(QPoint(x, y))).x()


def test_dragging_on_the_spectrogram_selects_and_analyses_that_span(make_window, qtbot):
    win = make_window()
    view, session = win.clip_view, win.session
    session.set_audio(tone(), SR, "tone")
    qtbot.waitUntil(lambda: session.features is not None, timeout=30_000)
    qtbot.wait(100)
    for plot in (view.spec_plot, view.wave_plot):
        rect = plot.mapFromScene(plot.getViewBox().sceneBoundingRect()).boundingRect()
        y = rect.center().y()
        x0, x1 = rect.left() + int(rect.width() * 0.6), rect.left() + int(rect.width() * 0.2)
        expected = sorted((seconds_at(plot, x0, y), seconds_at(plot, x1, y)))
        drag(plot, x0, x1, y)  # right to left: the span is the same
        got = sorted(view.region.getRegion())
        assert got == expected or np.allclose(got, expected, atol=1e-9)
        assert view.selection_box.isChecked() and view.region.isVisible()
        assert np.allclose(view.spec_region.getRegion(), got)
        assert session.region == (max(0.0, got[0]), got[1])  # analysed alone
        assert "selection" in view.readout.text()
        # The concepts are of the selection alone: openSMILE ran on just that span.
        qtbot.waitUntil(lambda: session.features is not None, timeout=30_000)
        assert abs(session.features.duration_s - (got[1] - max(0.0, got[0]))) < 0.02
        view.selection_box.setChecked(False)  # the next plot starts from no selection

    # Shift+drag pans as before: the view moves, the selection does not change.
    view.set_selection(1.0, 2.0)
    view.wave_plot.setXRange(0.5, 2.5, padding=0)
    qtbot.wait(50)
    before = view.wave_plot.getViewBox().viewRange()[0]
    plot = view.wave_plot
    rect = plot.mapFromScene(plot.getViewBox().sceneBoundingRect()).boundingRect()
    x = rect.left() + rect.width() // 10  # left of the selection (inside, a drag moves it)
    drag(plot, x, x - 60, rect.center().y(), Qt.KeyboardModifier.ShiftModifier)
    after = view.wave_plot.getViewBox().viewRange()[0]
    assert after[0] > before[0] + 0.05, (before, after, view.region.getRegion())
    assert sorted(view.region.getRegion()) == [1.0, 2.0]

    # Zoom to selection shows exactly the selection (button, and the plots' context menu).
    view.zoom_selection_button.click()
    assert np.allclose(view.wave_plot.getViewBox().viewRange()[0], [1.0, 2.0])
    view.fit_button.click()
    menu = view.spec_plot.getViewBox().menu
    [zoom] = [a for a in menu.actions() if a.text() == "Zoom to selection"]
    zoom.trigger()
    assert np.allclose(view.wave_plot.getViewBox().viewRange()[0], [1.0, 2.0])


def test_readouts_give_f0_and_intensity_at_the_cursor(make_window, qtbot):
    from cuelab.ui.dsp import intensity_db

    win = make_window()
    view, session = win.clip_view, win.session
    x = tone()
    session.set_audio(x, SR, "tone")
    qtbot.waitUntil(lambda: session.features is not None, timeout=30_000)
    qtbot.waitUntil(lambda: view.tools.intensity is not None, timeout=10_000)
    _t_db, db = intensity_db(x, SR)
    _t, drawn = view.tools.intensity_curve.getData()
    assert np.allclose(drawn, db)
    assert db[150] - db[50] > 15  # the loud middle second is louder (20 dB by design)
    assert abs(view.tools.intensity_at(1.5) - db[150]) < 1e-9
    f0 = view.tools.f0_at(1.5)
    assert f0 is not None and abs(f0 - 180.0) < 10  # openSMILE finds the tone's pitch

    plot = view.spec_plot
    box = plot.getViewBox()
    centre = plot.mapFromScene(box.sceneBoundingRect().center())
    t = seconds_at(plot, centre.x(), centre.y())
    qtbot.mouseMove(plot.viewport(), centre)
    expected = view.tools.readout(t)
    assert "F0" in expected and "dB" in expected
    qtbot.waitUntil(lambda: view.readout.text().split("   ")[0].endswith(expected), timeout=5000)


def test_play_after_a_drag_plays_the_dragged_span(make_window, qtbot, monkeypatch):
    import cuelab.ui.playback as playback
    from tests.ui.test_clip_view import LoopingDevice

    device = LoopingDevice()
    monkeypatch.setattr(playback, "probe_output", lambda: (device, ""))
    win = make_window(playback=True)
    view = win.clip_view
    win.session.set_audio(tone(), SR, "tone")
    qtbot.wait(100)
    plot = view.wave_plot
    rect = plot.mapFromScene(plot.getViewBox().sceneBoundingRect()).boundingRect()
    y = rect.center().y()
    x0, x1 = rect.left() + rect.width() // 4, rect.left() + rect.width() // 2
    t0, t1 = seconds_at(plot, x0, y), seconds_at(plot, x1, y)
    drag(plot, x0, x1, y)
    view.loop_box.setChecked(True)
    view.play_button.click()
    assert len(device.calls) == 1
    size, loop = device.calls[0]
    assert loop and abs(size - (t1 - t0) * SR) <= 2  # the span, to a sample or two
    view.play_button.click()
