"""The Batch tab's results view: every row, a tab per file, CI warnings, Δ between runs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QScrollArea, QTabWidget

from cuelab.core.reports.build import build_report
from cuelab.core.runs import RunConfig, run_eval
from cuelab.ui.batch_jobs import BatchResult
from cuelab.ui.batch_results import ResultsView
from cuelab.ui.results_view import MAX_COLUMN_PX, DetachHost
from tests.helpers import read_csv as read_rows
from tests.ui.conftest import DEMO

LONG_SPEC = (
    "qwen2-audio:/models/checkpoints/lab-shared/2026-11/emotion-finetune/Qwen2-Audio-7B-Instruct"
)
HEADER = ["model", "condition", "seed", "n", "uar", "uar_ci_low", "uar_ci_high", "wa"]
HEADER += ["unparsed", "ci_method", "n_speakers", "ci_note"]


def write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def summary_rows(n_models: int = 10) -> list[dict[str, object]]:
    """n_models × 4 conditions; the shuffle rows of every third model carry a CI note."""
    rows: list[dict[str, object]] = []
    for m in range(n_models):
        spec = LONG_SPEC if m == 0 else f"reference:model-{m:02d}"
        for c, condition in enumerate(("audio-only", "correct", "shuffle", "conflict")):
            uar = 0.5 + 0.01 * m + 0.02 * c
            note = "only 2 seeds: a t-interval over 2 values" if condition == "shuffle" else ""
            rows.append({
                "model": spec, "condition": condition, "seed": "", "n": 96, "uar": uar,
                "uar_ci_low": uar - 0.1, "uar_ci_high": uar + 0.1, "wa": uar, "unparsed": 0,
                "ci_method": "speaker-bootstrap", "n_speakers": 6,
                "ci_note": note if m % 3 == 0 else "",
            })  # fmt: skip
    return rows


def run_folder(tmp_path: Path, rows: list[dict[str, object]]) -> Path:
    folder = tmp_path / "run"
    folder.mkdir(parents=True)
    write_csv(folder / "summary.csv", rows)
    return folder


def show(view: ResultsView, folder: Path) -> BatchResult:
    """What the panel does with a finished run (summary.csv as load_result reads it)."""
    with (folder / "summary.csv").open(newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    result = BatchResult(folder=folder, manifest=DEMO / "manifest.csv", header=header, rows=rows)
    view.show_result(result)
    return result


@pytest.fixture
def view(qtbot):
    widget = ResultsView()
    host = DetachHost(widget, "results")
    qtbot.addWidget(host)
    widget.detach_button.clicked.connect(host.toggle)
    host.resize(1366, 768)
    host.show()
    yield widget
    host.attach()


def test_every_row_of_a_40_row_summary_can_be_reached(view, qtbot, tmp_path):
    show(view, run_folder(tmp_path, summary_rows()))
    table, model = view.summary_view, view.summary_model
    assert model.rowCount() == 40
    qtbot.waitUntil(lambda: table.viewport().height() > 0)
    # At 1366×768 the table has the tab's height: far more than the old five rows.
    assert table.rowAt(table.viewport().height() - 2) in (-1, *range(20, 40))
    for i in (39, 0, 27, 13):
        index = model.index(i, 0)
        table.scrollTo(index)
        assert table.viewport().rect().contains(table.visualRect(index)), i
    # Nothing between the table and the window scrolls: one scroll bar, the table's.
    parent, areas = table.parentWidget(), []
    while parent is not None:
        if isinstance(parent, QScrollArea):
            areas.append(parent)
        parent = parent.parentWidget()
    assert areas == []


def test_summary_in_the_window_scrolls_once_and_detaches(make_window, qtbot, tmp_path):
    win = make_window()
    win.resize(1366, 768)
    panel = win.batch_panel
    folder = run_folder(tmp_path, summary_rows())
    show(panel.results, folder)
    panel._show_results(panel.results.result)
    tabs = next(t for t in win.findChildren(QTabWidget) if "Batch" in
                [t.tabText(i) for i in range(t.count())])  # fmt: skip
    tabs.setCurrentIndex([tabs.tabText(i) for i in range(tabs.count())].index("Batch"))
    outer = next(a for a in win.findChildren(QScrollArea) if a.widget() is panel)
    qtbot.waitUntil(lambda: panel.results.summary_view.viewport().height() > 0)
    assert outer.verticalScrollBar().maximum() == 0  # the tab itself does not scroll
    # Own window, and back: the same view, every row still there.
    panel.results.detach_button.click()
    window = panel.results_host.window_
    assert window is not None and panel.results.window() is window
    assert panel.results.detach_button.text() == "Back to the tab"
    window.close()
    assert panel.results_host.window_ is None and panel.results.window() is win
    assert panel.results.summary_model.rowCount() == 40


def test_a_tab_per_file_present(view, tmp_path):
    folder = run_folder(tmp_path, summary_rows(2))
    show(view, folder)
    assert view.tabs.titles() == ["Summary", "Compare"]
    write_csv(folder / "tests.csv", [
        {"model": "reference", "condition_a": "audio-only", "condition_b": "correct",
         "seed": "", "n01": 3, "n10": 9, "p_mcnemar": 0.03, "family": "reference", "p_holm": 0.04},
        {"model": "reference", "condition_a": "audio-only", "condition_b": "shuffle",
         "seed": "", "n01": 5, "n10": 6, "p_mcnemar": 0.5, "family": "reference", "p_holm": 0.5},
    ])  # fmt: skip
    write_csv(folder / "confusion.csv", [{"model": "m", "label": "a", "prediction": "a", "n": 1}])
    write_csv(folder / "reliance_index.csv", [{"model": "m", "concept": "PITCH", "index": 0.2}])
    show(view, folder)
    assert view.tabs.titles() == ["Summary", "Tests", "Confusion", "Reliance", "Compare"]
    view.tabs.setCurrentIndex(view.tabs.titles().index("Tests"))  # built when first shown
    tests = view.tabs.file_pages["Tests"].models[0]
    header = [tests.headerData(j, Qt.Orientation.Horizontal) for j in range(tests.columnCount())]
    assert header[:6] == ["model", "family", "condition_a", "condition_b", "seed", "p_holm"]
    assert {"n01", "n10", "p_mcnemar"} <= set(header)
    p_holm = header.index("p_holm")
    assert [tests.item(i, p_holm).font().bold() for i in range(2)] == [True, False]
    for name in ("reliance.csv", "calibration.csv", "channels.csv"):
        write_csv(folder / name, [{"model": "m", "value": 1}])
    (folder / "plot.png").write_bytes(b"")
    result = show(view, folder)
    result.plots.clear()
    assert view.tabs.titles() == [
        "Summary",
        "Tests",
        "Confusion",
        "Reliance",
        "Calibration",
        "Channels",
        "Compare",
    ]
    view.tabs.setCurrentIndex(view.tabs.titles().index("Reliance"))
    reliance = view.tabs.file_pages["Reliance"]
    assert [m.rowCount() for m in reliance.models] == [1, 1]  # reliance.csv and the index
    (folder / "tests.csv").unlink()
    show(view, folder)
    assert "Tests" not in view.tabs.titles()


def test_ci_notes_are_shown_inline(view, tmp_path):
    rows = summary_rows()
    result = show(view, run_folder(tmp_path, rows))
    noted = [i for i, r in enumerate(rows) if r["ci_note"]]
    assert len(noted) == 4
    assert view.ci_banner.isVisible() and "4 row(s)" in view.ci_banner.text()
    assert "only 2 seeds" in view.ci_banner.text()
    col = result.header.index("ci_note")
    header = view.summary_view.horizontalHeader()
    assert header.visualIndex(col) == header.visualIndex(result.header.index("uar_ci_high")) + 1
    for i in range(len(rows)):
        item = view.summary_model.item(i, col)
        assert item.text() == rows[i]["ci_note"]
        assert item.icon().isNull() == (i not in noted)
    show(view, run_folder(tmp_path / "b", [dict(r, ci_note="") for r in rows]))
    assert not view.ci_banner.isVisible()


def test_long_model_specs_are_elided_in_the_middle(view, qtbot, tmp_path):
    show(view, run_folder(tmp_path, summary_rows()))
    table = view.summary_view
    assert table.textElideMode() == Qt.TextElideMode.ElideMiddle
    item = view.summary_model.item(0, 0)
    assert item.text() == LONG_SPEC and item.toolTip() == LONG_SPEC
    width = table.columnWidth(0)
    assert width <= MAX_COLUMN_PX < table.fontMetrics().horizontalAdvance(LONG_SPEC)
    # What the cell draws keeps the family and the checkpoint's name.
    drawn = table.fontMetrics().elidedText(LONG_SPEC, table.textElideMode(), width - 8)
    assert drawn.startswith("qwen2-audio:") and drawn.endswith("Instruct") and "…" in drawn


def test_two_runs_side_by_side_delta_per_cell(view, tmp_path):
    manifest = str(DEMO / "manifest.csv")
    common = {"manifest": manifest, "models": ("reference",), "bootstrap": 20, "workers": 1}
    conditions = ("audio-only", "correct", "shuffle")
    a, b = tmp_path / "a", tmp_path / "b"
    run_eval(RunConfig(**common, conditions=conditions, seeds=(0, 1), limit=12, out=str(a)))
    run_eval(RunConfig(**common, conditions=conditions, seeds=(0, 1), limit=20, out=str(b)))
    for folder in (a, b):
        build_report(folder, plots=False)
    show(view, a)
    assert view.tabs.compare.compare_with(b)
    model = view.tabs.compare.model
    header = [model.headerData(j, Qt.Orientation.Horizontal) for j in range(model.columnCount())]
    rows_a, rows_b = read_rows(a / "summary.csv"), read_rows(b / "summary.csv")

    def key(r: dict[str, str]) -> tuple[str, str, str]:
        return r["model"], r["condition"], r["seed"]

    by_b = {key(r): r for r in rows_b}
    assert model.rowCount() == len(rows_a) == len(by_b) >= 4
    assert {"Δ uar", "Δ n", "Δ uar_ci_low", "Δ wa"} <= set(header)
    checked = 0
    for i in range(model.rowCount()):
        k = tuple(model.item(i, j).text() for j in range(3))
        ra = next(r for r in rows_a if key(r) == k)
        rb = by_b[k]
        for j, name in enumerate(header[3:], start=3):
            column = name.removeprefix("Δ ")
            if ra[column] == "" or rb[column] == "":
                continue
            expected = float(rb[column]) - float(ra[column])
            shown = model.item(i, j).data(Qt.ItemDataRole.UserRole)
            assert math.isclose(shown, expected, abs_tol=1e-12), (k, column)
            text = model.item(i, j).text()
            assert math.isclose(float(text), expected, abs_tol=5e-4), (text, expected)
            assert text == "0" or text[0] == ("+" if expected > 0 else "-")
            checked += 1
    assert checked >= 4 * 5
    # Side by side: each run's value beside the difference.
    view.tabs.compare.values_box.setChecked(True)
    header = [model.headerData(j, Qt.Orientation.Horizontal) for j in range(model.columnCount())]
    j = header.index("A uar")
    assert header[j : j + 3] == ["A uar", "B uar", "Δ uar"]
    for i in range(model.rowCount()):
        k = tuple(model.item(i, c).text() for c in range(3))
        ra = next(r for r in rows_a if key(r) == k)
        values = [model.item(i, j + c).data(Qt.ItemDataRole.UserRole) for c in range(3)]
        assert values == [float(ra["uar"]), float(by_b[k]["uar"]), values[1] - values[0]]
    assert not view.tabs.compare.compare_with(tmp_path / "missing")
