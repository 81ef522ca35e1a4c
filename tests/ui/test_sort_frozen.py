"""A sorted dataset table keeps its order while you annotate (issue 26, must-fix 3)."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt

from cuelab.ui.dataset_panel import _ANN


def _order(table) -> list[str]:
    return [table.item(i, 0).text() for i in range(table.rowCount())]


def test_labelling_in_a_table_sorted_by_yours_does_not_move_rows(
    make_window, qtbot, small_manifest
):
    win = make_window()
    s, panel = win.session, win.dataset_panel
    table = panel.table
    with qtbot.waitSignal(s.clip_changed, timeout=30_000):
        s.open_manifest(small_manifest)
    header = table.horizontalHeader()
    x = header.sectionViewportPosition(_ANN) + header.sectionSize(_ANN) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, 5))
    assert header.sortIndicatorSection() == _ANN  # a click on "yours" sorts by it
    before = _order(table)
    panel._on_click(0)
    qtbot.waitUntil(lambda: s.row is not None and s.row.utt_id == before[0], timeout=30_000)
    table.setFocus()
    qtbot.keyClick(table, Qt.Key.Key_4)  # "sad": the labelled row would sort after the others
    assert table.item(0, _ANN).text() == "sad"
    assert _order(table) == before and table.currentRow() == 0
    with qtbot.waitSignal(s.clip_changed, timeout=30_000):
        qtbot.keyClick(table, Qt.Key.Key_Down)
    qtbot.waitUntil(lambda: s.row is not None and s.row.utt_id == before[1], timeout=30_000)
    assert table.currentRow() == 1  # the next clip, none skipped
    # Re-sorting is on demand (Annotate ▸ Re-sort the table): now "sad" sorts last.
    panel.resort()
    assert _order(table)[-1] == before[0]
    assert table.item(table.currentRow(), 0).text() == before[1]  # the highlight follows its clip
