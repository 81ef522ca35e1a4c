"""The batch panel: a run in the background, cancel and resume, results, export."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QFileDialog, QScrollArea

from cuelab.core.datasets.annotations import save_annotation
from cuelab.core.runs import run_eval
from tests.helpers import read_csv as read_rows
from tests.ui.conftest import DEMO

RUN_TIMEOUT_MS = 120_000


class GapMeter(QObject):
    """A 10 ms timer on the GUI thread; the largest gap between ticks is a stall."""

    def __init__(self) -> None:
        super().__init__()
        self.max_gap_ms = 0.0
        self.ticks = 0
        self._last = time.perf_counter()
        self._timer = QTimer(self)
        self._timer.setInterval(10)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.max_gap_ms = max(self.max_gap_ms, (now - self._last) * 1000)
        self._last = now
        self.ticks += 1

    def stop(self) -> None:
        self._timer.stop()


def window_on(make_window, qtbot, manifest: Path):
    """A window on ``manifest`` with the reference model loaded."""
    win = make_window()
    s = win.session
    s.open_manifest(manifest)
    s.load_model("reference")
    qtbot.waitUntil(lambda: s.model is not None and s.manifest is not None, timeout=60_000)
    return win


def configure(panel, out: Path, conditions: tuple[str, ...], limit: int = 0) -> None:
    from cuelab.ui.batch_panel import ALL_SPLITS

    panel.split_combo.setCurrentText(ALL_SPLITS)  # the default is the held-out split
    for name, box in panel.condition_boxes.items():
        box.setChecked(name in conditions)
    panel.limit_spin.setValue(limit)
    panel.bootstrap_spin.setValue(100)
    panel.out_edit.setText(str(out))


def test_batch_run_shows_results_without_stalling_the_window(make_window, qtbot, tmp_path):
    win = window_on(make_window, qtbot, DEMO / "manifest.csv")
    qtbot.waitUntil(lambda: win.is_ready, timeout=60_000)  # measure the run, not the first draw
    panel = win.batch_panel
    assert panel.model_edit.text() == "reference"  # the loaded model is the default
    configure(panel, tmp_path / "run", ("audio-only", "correct"), limit=8)
    progress = []
    meter = GapMeter()
    ticks_seen = []  # the GUI timer's tick count at each progress report

    def on_progress(p) -> None:
        progress.append(p)
        ticks_seen.append(meter.ticks)

    panel.progressed.connect(on_progress)
    with qtbot.waitSignal(panel.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        panel.start_button.click()
        assert panel.state == "running" and panel.cancel_button.isEnabled()
    meter.stop()
    # The window's event loop ran while the run scored: its timer fired between the
    # first and the last progress report. (How long it may stall is measured in
    # benchmarks/gui_stalls.py, batch start, not asserted here.)
    assert len(ticks_seen) >= 2 and ticks_seen[-1] > ticks_seen[0]

    result = blocker.args[0]
    assert panel.state == "finished" and panel.export_button.isEnabled()
    assert not panel.resume_button.isEnabled()
    assert {p.message for p in progress} >= {"features", "scoring"}
    last = progress[-1]
    assert last.done == last.total == 8  # one scoring item per clip
    # summary.csv in the table, the plots in the gallery.
    summary = read_rows(tmp_path / "run" / "summary.csv")
    model = panel.summary_model
    assert model.rowCount() == len(summary) == 2
    header = [model.headerData(j, Qt.Orientation.Horizontal) for j in range(model.columnCount())]
    assert header == list(summary[0])
    assert [model.item(i, 1).text() for i in range(2)] == ["audio-only", "correct"]
    assert model.item(1, 4).text() == summary[1]["uar"]
    assert len(panel.plot_labels) == len(result.plots) >= 2
    assert all(not label.pixmap().isNull() for label in panel.plot_labels)
    # The dataset panel shows each clip's prediction under ``correct``.
    preds = {
        r["utt_id"]: r["prediction"]
        for r in read_rows(tmp_path / "run" / "predictions.csv")
        if r["condition"] == "correct"
    }
    table, rows = win.dataset_panel.table, win.session.manifest.rows
    assert len(preds) == 8
    for i, row in enumerate(rows[:8]):
        assert table.item(i, 3).text() == preds[row.utt_id]
        assert "batch run" in table.item(i, 3).toolTip()


def test_cancel_then_resume_gives_the_uninterrupted_predictions(make_window, qtbot, tmp_path):
    win = window_on(make_window, qtbot, DEMO / "manifest.csv")
    panel = win.batch_panel
    configure(panel, tmp_path / "run", ("audio-only", "correct", "shuffle"), limit=8)
    reached, proceed = threading.Event(), threading.Event()

    def hold_after_third_clip(_run_id, info):  # runs in the relay's thread
        if info.message != "features" and info.done == 3 and not reached.is_set():
            reached.set()
            proceed.wait(30)

    panel.relay.progress.connect(hold_after_third_clip, Qt.ConnectionType.DirectConnection)
    panel.start_button.click()
    qtbot.waitUntil(reached.is_set, timeout=RUN_TIMEOUT_MS)
    panel.cancel_button.click()
    proceed.set()
    qtbot.waitUntil(lambda: panel.state == "cancelled", timeout=RUN_TIMEOUT_MS)
    panel.relay.progress.disconnect(hold_after_third_clip)

    run = tmp_path / "run"
    assert json.loads((run / "run.json").read_text())["status"] == "cancelled"
    # The run is a child process that keeps scoring while this thread holds the relay, so
    # the cancel lands after the third clip or a little later: whole clips, never all eight.
    written = len(read_rows(run / "predictions.csv"))
    assert written % 3 == 0 and 3 * 3 <= written < 8 * 3, written
    assert panel.resume_button.isEnabled() and not panel.export_button.isEnabled()

    with qtbot.waitSignal(panel.run_finished, timeout=RUN_TIMEOUT_MS):
        panel.resume_button.click()
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "complete" and len(record["sessions"]) == 2

    whole = tmp_path / "whole"
    run_eval(replace(panel.last_config, out=str(whole)))

    def keyed(folder: Path) -> dict[tuple[str, str, str], dict[str, str]]:
        rows = read_rows(folder / "predictions.csv")
        return {(r["utt_id"], r["condition"], r["seed"]): r for r in rows}

    resumed, uninterrupted = keyed(run), keyed(whole)
    assert len(resumed) == len(read_rows(run / "predictions.csv")) == 8 * 3
    assert resumed == uninterrupted


def test_export_copies_the_report_with_annotations(
    make_window, qtbot, tmp_path, monkeypatch, small_manifest
):
    manifest = small_manifest
    save_annotation(manifest, "spk01_f_angry_01.flac", "angry", "clearly angry")
    win = window_on(make_window, qtbot, manifest)
    panel = win.batch_panel
    configure(panel, tmp_path / "run", ("audio-only", "correct"))
    with qtbot.waitSignal(panel.run_finished, timeout=RUN_TIMEOUT_MS):
        panel.start_button.click()
    # An annotation made after the run still reaches the export (the report is rebuilt).
    save_annotation(manifest, "spk04_m_happy_01.flac", "neutral", "")
    dest = tmp_path / "exported"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(dest))
    with qtbot.waitSignal(panel.exported, timeout=RUN_TIMEOUT_MS) as blocker:
        panel.export_button.click()
    names = sorted(p.name for p in dest.iterdir())
    assert sorted(p.name for p in blocker.args[0]) == names
    for name in (
        "summary.csv",
        "tests.csv",
        "confusion.csv",
        "spearman.csv",
        "predictions.csv",
        "run.json",
    ):
        assert name in names
    assert "annotations.csv" in names and "annotations_summary.csv" in names
    assert any(n.endswith(".png") for n in names)
    annotated = read_rows(dest / "annotations.csv")
    assert [r["utt_id"] for r in annotated] == ["spk01_f_angry_01", "spk04_m_happy_01"]
    assert annotated[0]["note"] == "clearly angry"
    assert (dest / "summary.csv").read_bytes() == (tmp_path / "run" / "summary.csv").read_bytes()


def test_a_bad_configuration_is_reported_once(make_window, qtbot, tmp_path):
    win = window_on(make_window, qtbot, DEMO / "manifest.csv")
    panel = win.batch_panel
    errors = []
    win.notifier.posted.connect(lambda level, msg: errors.append(msg) if level == "error" else None)
    assert panel.split_combo.currentText() == "test"  # held out by default (train/test manifest)
    configure(panel, tmp_path / "run", ())
    panel.start_button.click()
    assert errors == ["batch run: tick at least one condition"]
    panel.condition_boxes["corrupt"].setChecked(True)
    panel.corrupt_edit.setText("0.2, lots")
    panel.start_button.click()
    assert len(errors) == 2 and "corruption grid" in errors[1]
    assert panel.state == "idle" and not (tmp_path / "run").exists()
    assert not any("--" in e for e in errors)  # the panel's words, not the command line's


def test_core_errors_are_worded_for_the_panel_from_their_remedies():
    import pytest

    from cuelab.core import errors
    from cuelab.core.runs import RunConfig, RunConfigError
    from cuelab.ui.remedies import window_text

    core = RunConfigError(
        "/x/run already holds a run", remedy=(errors.RESUME, errors.NEW_OUTPUT_FOLDER)
    )
    worded = window_text(core)
    assert worded == (
        "/x/run already holds a run; press Resume to continue it, or choose another run folder"
    )
    with pytest.raises(RunConfigError) as info:
        RunConfig(manifest="m.csv", models=("reference",), conditions=(), out="o")
    assert window_text(info.value) == "run configuration: no condition given; tick a condition"


def test_cancel_pressed_as_the_run_completes_still_shows_the_result(
    make_window, qtbot, tmp_path, small_manifest
):
    win = window_on(make_window, qtbot, small_manifest)
    panel = win.batch_panel
    configure(panel, tmp_path / "run", ("audio-only", "correct"))
    reached, proceed = threading.Event(), threading.Event()

    def hold_after_last_clip(_run_id, info):  # runs in the worker: the last clip is on disk
        if info.message != "features" and info.done == info.total and not reached.is_set():
            reached.set()
            proceed.wait(30)

    panel.relay.progress.connect(hold_after_last_clip, Qt.ConnectionType.DirectConnection)
    finished = []
    panel.run_finished.connect(finished.append)
    panel.start_button.click()
    qtbot.waitUntil(reached.is_set, timeout=RUN_TIMEOUT_MS)
    panel.cancel_button.click()  # too late: no clip is left to stop before
    proceed.set()
    qtbot.waitUntil(
        lambda: panel.state != "running" and not panel.slot.busy, timeout=RUN_TIMEOUT_MS
    )
    panel.relay.progress.disconnect(hold_after_last_clip)

    run = tmp_path / "run"
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    assert panel.state == "finished" and len(finished) == 1
    assert finished[0].folder == run and panel.result is finished[0]
    assert panel.summary_model.rowCount() == 2
    assert panel.export_button.isEnabled() and not panel.resume_button.isEnabled()
    assert panel.eta_label.text().startswith("Finished")


def test_a_cancelled_run_shows_and_exports_nothing_of_the_previous_run(
    make_window, qtbot, tmp_path, small_manifest
):
    win = window_on(make_window, qtbot, small_manifest)
    panel = win.batch_panel
    configure(panel, tmp_path / "first", ("audio-only", "correct"))
    progress = []
    panel.progressed.connect(progress.append)
    with qtbot.waitSignal(panel.run_finished, timeout=RUN_TIMEOUT_MS):
        panel.start_button.click()
    assert panel.summary_model.rowCount() == 2 and panel.export_button.isEnabled()
    # Feature extraction reports each clip, not one jump at the end of the stage.
    features = [p.done for p in progress if p.message == "features"]
    assert features == [0, 1, 2, 3, 4]

    configure(panel, tmp_path / "second", ("audio-only", "correct", "conflict"))
    reached, proceed = threading.Event(), threading.Event()

    def hold_after_first_clip(_run_id, info):
        if info.message != "features" and info.done == 1 and not reached.is_set():
            reached.set()
            proceed.wait(30)

    panel.relay.progress.connect(hold_after_first_clip, Qt.ConnectionType.DirectConnection)
    panel.start_button.click()
    # From the start of the new run, the old results are gone from the panel.
    assert panel.result is None and panel.summary_model.rowCount() == 0
    assert not panel.plot_labels and not panel.export_button.isEnabled()
    qtbot.waitUntil(reached.is_set, timeout=RUN_TIMEOUT_MS)
    panel.cancel_button.click()
    proceed.set()
    qtbot.waitUntil(lambda: panel.state == "cancelled", timeout=RUN_TIMEOUT_MS)
    panel.relay.progress.disconnect(hold_after_first_clip)
    assert panel.result is None and panel.summary_model.rowCount() == 0
    assert not panel.export_button.isEnabled() and panel.resume_button.isEnabled()


def test_reopening_a_run_folder_shows_it_or_offers_resume(
    make_window, qtbot, tmp_path, small_manifest
):
    from cuelab.core.runs import RunConfig

    folder = tmp_path / "past"
    run_eval(
        RunConfig(
            manifest=str(small_manifest),
            models=("reference",),
            conditions=("audio-only", "correct"),
            out=str(folder),
            bootstrap=50,
        )
    )
    win = window_on(make_window, qtbot, small_manifest)
    panel = win.batch_panel
    with qtbot.waitSignal(panel.run_finished, timeout=RUN_TIMEOUT_MS):
        win.open_path(folder)  # File ▸ Open run… or a dropped folder
    assert panel.state == "finished" and panel.summary_model.rowCount() == 2
    assert panel.export_button.isEnabled() and panel.folder_button.isEnabled()
    assert win.tabs.currentIndex() == win.tabs.count() - 1
    # A plot opens large from its thumbnail.
    from cuelab.ui.batch_panel import PLOT_WIDTH

    thumb = panel.plot_labels[0]
    qtbot.mouseClick(thumb, Qt.MouseButton.LeftButton)
    dialog = panel.plot_dialogs[-1]
    assert dialog.isVisible() and dialog.windowTitle() == thumb.path.name
    big = dialog.findChild(QScrollArea).widget().pixmap()
    assert big.width() > PLOT_WIDTH >= thumb.pixmap().width()
    dialog.close()
    # A run that did not complete can be resumed, even from a new window.
    record = json.loads((folder / "run.json").read_text())
    record["status"] = "cancelled"
    (folder / "run.json").write_text(json.dumps(record))
    win.open_path(folder)
    assert panel.state == "cancelled" and panel.resume_button.isEnabled()
    assert panel.result is None and not panel.export_button.isEnabled()


def test_a_confusion_cell_drills_down_to_its_clips(make_window, qtbot, tmp_path, small_manifest):
    win = window_on(make_window, qtbot, small_manifest)
    panel = win.batch_panel
    configure(panel, tmp_path / "run", ("audio-only", "conflict"))
    with qtbot.waitSignal(panel.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        panel.start_button.click()
    result = blocker.args[0]
    rows = [
        r for r in read_rows(tmp_path / "run" / "predictions.csv") if r["condition"] == "conflict"
    ]
    table = panel.confusion_table
    assert panel.confusion_combo.currentText() in ("audio-only", "conflict")
    panel.confusion_combo.setCurrentText("conflict")
    labels = [table.verticalHeaderItem(i).text() for i in range(table.rowCount())]
    preds = [table.horizontalHeaderItem(j).text() for j in range(table.columnCount())]
    assert labels == sorted({r["label"] for r in rows})
    total = sum(int(table.item(i, j).text()) for i in range(len(labels)) for j in range(len(preds)))
    assert total == len(rows) == 4
    # Click the cell of the first clip's (label, prediction).
    first = rows[0]
    i, j = labels.index(first["label"]), preds.index(first["prediction"] or "unparsed")
    with qtbot.waitSignal(panel.drill_down, timeout=5000):
        rect = table.visualItemRect(table.item(i, j))
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    expected = {
        r["utt_id"]
        for r in rows
        if (r["label"], r["prediction"]) == (first["label"], first["prediction"])
    }
    shown = {
        win.dataset_panel.table.item(v, 0).text()
        for v in range(win.dataset_panel.table.rowCount())
        if not win.dataset_panel.table.isRowHidden(v)
    }
    assert shown == expected and win.tabs.currentIndex() == 0
    assert f"{len(expected)} clips: {first['label']} → " in win.dataset_panel.subset_label.text()
    win.dataset_panel.subset_clear.click()
    assert not any(win.dataset_panel.table.isRowHidden(v) for v in range(4))
    assert result.cells["conflict"]


def test_a_reopened_run_does_not_bring_back_pickle_or_remote_code(make_window, qtbot, tmp_path):
    """run.json records that a run allowed pickles; resuming it from the window allows them
    only if the model panel has them ticked for that model now."""
    from cuelab.core.runs import config_from_mapping

    out = tmp_path / "run"
    run_eval(config_from_mapping({
        "manifest": str(DEMO / "manifest.csv"), "models": ["reference"], "limit": 12,
        "conditions": ["audio-only"], "out": str(out), "bootstrap": 10, "workers": 1,
        "allow_pickle": True, "trust_remote_code": True,
    }, base_dir=None))  # fmt: skip
    win = make_window()
    panel = win.batch_panel
    panel.open_run(out)
    qtbot.waitUntil(lambda: panel.state == "finished", timeout=60_000)
    assert panel.last_config is not None
    assert not panel.last_config.allow_pickle and not panel.last_config.trust_remote_code
    win.session.model_spec, win.session.model_trust = "reference", {"allow_pickle": True}
    panel.open_run(out)
    qtbot.waitUntil(lambda: panel.state == "finished", timeout=60_000)
    assert panel.last_config.allow_pickle and not panel.last_config.trust_remote_code


def test_the_confusion_on_screen_is_the_exported_one(make_window, qtbot, tmp_path):
    """Every cell of the panel's matrix equals confusion.csv (first seed, first model)."""
    from cuelab.core.runs import config_from_mapping

    out = tmp_path / "run"
    run_eval(config_from_mapping({
        "manifest": str(DEMO / "manifest.csv"), "models": ["reference"], "limit": 16,
        "conditions": ["audio-only", "conflict"], "out": str(out), "bootstrap": 10,
        "workers": 1,
    }, base_dir=None))  # fmt: skip
    win = make_window()
    panel = win.batch_panel
    panel.open_run(out)
    qtbot.waitUntil(lambda: panel.state == "finished", timeout=60_000)
    view = panel.results
    exported = {(r["condition"], r["label"], r["prediction"]): int(r["count"])
                for r in read_rows(out / "confusion.csv")}  # fmt: skip
    for condition in ("audio-only", "conflict"):
        view.confusion_combo.setCurrentText(condition)
        table = view.confusion_table
        columns = [table.horizontalHeaderItem(j).text() for j in range(table.columnCount())]
        assert columns[-1] == "unparsed"
        for i in range(table.rowCount()):
            label = table.verticalHeaderItem(i).text()
            for j, pred in enumerate(columns):
                assert int(table.item(i, j).text()) == exported[(condition, label, pred)]
