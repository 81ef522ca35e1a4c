"""Configure, run, cancel, resume and export a batch evaluation of the open dataset.

The run is :func:`cuelab.core.runs.run_eval` in a worker of the session's
pool (a ``batch`` job slot), with a :class:`~cuelab.core.jobs.JobControl`
whose progress callback emits a queued signal, so the GUI thread only ever
moves a progress bar. Cancel stops between clips; everything scored so far
is on disk and Resume continues the same run folder. When a run ends its
report is built in the same worker, and the panel shows ``summary.csv`` and
the PNG plots. Export rebuilds the report (so annotations made since are
included) and copies its files to a chosen folder.

Starting a run clears the previous run's results from the panel (a cancelled
or failed run shows and exports nothing of an older one). A run folder can be
reopened later (File ▸ Open run…): its report is shown, and a run that did not
complete can be resumed, across restarts of the window. Errors from the core
carry typed remedies, which the panel words as its own buttons
(:mod:`cuelab.ui.remedies`); a folder that already holds a run offers Resume.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import (
    QDesktopServices,
    QGuiApplication,
    QStandardItemModel,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cuelab.core import errors
from cuelab.core.cues import CONCEPTS
from cuelab.core.errors import CueLabError
from cuelab.core.jobs import ProgressInfo
from cuelab.core.runs import RunConfig, RunConfigError, RunFolder
from cuelab.ui.batch_jobs import (
    PLOT_WIDTH,
    RUNS_HOME,
    BatchResult,
    RunControl,
    SharedAdapter,
    build_report_isolated,
    copy_report,
    default_out,
    format_duration,
    load_result,
    parse_numbers,
)
from cuelab.ui.batch_results import ResultsView
from cuelab.ui.remedies import offered, window_text
from cuelab.ui.results_view import DetachHost
from cuelab.ui.session import Session
from cuelab.ui.widgets import ElidedLabel, scrolled
from cuelab.ui.workers import Job, JobSlot

# The run/report helpers moved to batch_jobs; they stay importable from here.
__all__ = [
    "ALL_SPLITS",
    "PLOT_WIDTH",
    "RUNS_HOME",
    "SIMPLE_CONDITIONS",
    "BatchPanel",
    "BatchResult",
    "build_report_isolated",
    "default_out",
    "parse_numbers",
]

SIMPLE_CONDITIONS = ("audio-only", "correct", "conflict", "shuffle")
ALL_SPLITS = "(all rows)"
HELD_OUT_SPLITS = ("test", "eval", "dev", "val", "validation", "heldout", "held-out")


class _Relay(QObject):
    """Carries progress from the worker thread to the GUI thread.

    ``progress`` is emitted in the worker; the panel's connection is queued.
    A DirectConnection runs in the worker, between clips (instrumentation, tests).
    """

    progress = Signal(int, object)


class BatchPanel(QWidget):
    """Batch runs of the open dataset: configuration, progress, results, export.

    Signals:
        state_changed(str): ``idle``, ``running``, ``cancelled``, ``failed`` or ``finished``.
        progressed(object): a :class:`~cuelab.core.jobs.ProgressInfo` (GUI thread).
        run_finished(object): a :class:`BatchResult`.
        exported(object): the list of files written by Export.
        drill_down(object, str): a confusion cell was clicked: its clips' ids
            and a description (``angry → happy · correct``).
    """

    state_changed = Signal(str)
    progressed = Signal(object)
    run_finished = Signal(object)
    exported = Signal(object)
    drill_down = Signal(object, str)  # utt_ids of a confusion cell, and what they are

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.state = "idle"
        self.error_text = ""
        self.result: BatchResult | None = None
        self.last_config: RunConfig | None = None
        self._run_id = 0
        self._cancel_requested = False
        self._model_edited = False
        self.slot = self._slot("batch")
        self.export_slot = self._slot("export")
        self.slot.busy_changed.connect(self._on_busy)
        self.slot.progress.connect(lambda m: self.eta_label.setText(m))
        self.relay = _Relay(self)
        self.relay.progress.connect(self._on_progress)
        self._build()
        session.model_changed.connect(self._on_model)
        session.manifest_changed.connect(self._on_manifest)
        session.labels_changed.connect(self._show_labels)
        self._set_state("idle")

    def _slot(self, name: str) -> JobSlot:
        slot = JobSlot(name, self.session.pool, self.session)
        slot.failed.connect(self._on_failed)
        self.session.slots[name] = slot  # the window's shutdown cancels and awaits it
        return slot

    def _on_failed(self, message: str) -> None:
        """A run or export failed: one line, in the panel's words, kept in the panel."""
        self.error_text = message
        self.session.error.emit(message)

    # --- widgets ------------------------------------------------------------------

    def _build(self) -> None:
        self.manifest_label = ElidedLabel("Open a dataset first")
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("model spec, e.g. reference")
        self.model_edit.textEdited.connect(lambda _t: setattr(self, "_model_edited", True))
        self.condition_boxes: dict[str, QCheckBox] = {}
        grid = QGridLayout()
        for i, name in enumerate(SIMPLE_CONDITIONS):
            box = QCheckBox(name)
            box.setChecked(name in ("audio-only", "correct"))
            self.condition_boxes[name] = box
            grid.addWidget(box, i // 2, i % 2)
        self.condition_boxes["corrupt"] = QCheckBox("corrupt, p =")
        self.corrupt_edit = QLineEdit("0.2, 0.5, 1")
        self.condition_boxes["ablate"] = QCheckBox("ablate")
        self.ablate_combo = QComboBox()
        self.ablate_combo.addItems(list(CONCEPTS))
        grid.addWidget(self.condition_boxes["corrupt"], 2, 0)
        grid.addWidget(self.corrupt_edit, 2, 1)
        grid.addWidget(self.condition_boxes["ablate"], 3, 0)
        grid.addWidget(self.ablate_combo, 3, 1)
        self.seeds_edit = QLineEdit("0")
        self.split_combo = QComboBox()
        self.split_combo.addItem(ALL_SPLITS)
        self.limit_spin = QSpinBox()
        self.limit_spin.setRange(0, 10_000_000)
        self.limit_spin.setSpecialValueText("all clips")
        self.bootstrap_spin = QSpinBox()
        self.bootstrap_spin.setRange(1, 1_000_000)
        self.bootstrap_spin.setValue(1000)
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText(f"{RUNS_HOME}/<date-time> (new for each run)")
        browse = QToolButton()
        browse.setText("…")
        browse.setToolTip("Choose the run folder")
        browse.clicked.connect(self._browse_out)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Dataset", self.manifest_label)
        self.labels_label = ElidedLabel("")
        form.addRow("Labels", self.labels_label)
        form.addRow("Model", self.model_edit)
        form.addRow("Conditions", grid)
        form.addRow("Seeds", self.seeds_edit)
        form.addRow("Split", self.split_combo)
        form.addRow("Limit", self.limit_spin)
        form.addRow("Bootstrap", self.bootstrap_spin)
        form.addRow("Run folder", out_row)

        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button = QPushButton("Resume")
        self.resume_button.clicked.connect(self.resume)
        self.export_button = QPushButton("Export report…")
        self.export_button.clicked.connect(self.export)
        self.folder_button = QPushButton("Open folder")
        self.folder_button.setToolTip("Show the run folder in the file manager")
        self.folder_button.clicked.connect(self.open_folder)
        buttons = QHBoxLayout()
        for b in (
            self.start_button,
            self.cancel_button,
            self.resume_button,
            self.export_button,
            self.folder_button,
        ):
            buttons.addWidget(b)
        self.progress_bar = QProgressBar()
        self.eta_label = QLabel("")
        self.eta_label.setWordWrap(True)
        self.eta_label.setStyleSheet("color: #555;")

        self.results = ResultsView()
        self.results.drill_down.connect(self.drill_down)
        # The results fill the tab: the setup above them collapses (drag the splitter up),
        # or they move into a window of their own.
        self.results_host = DetachHost(self.results, "CueLab — batch results")
        self.results.detach_button.clicked.connect(self.results_host.toggle)
        self.results_host.attached_changed.connect(
            lambda attached: self.results.detach_button.setText(
                "Own window" if attached else "Back to the tab"
            )
        )
        setup = QWidget()
        setup_layout = QVBoxLayout(setup)
        setup_layout.setContentsMargins(0, 0, 0, 0)
        setup_layout.addLayout(form)
        setup_layout.addLayout(buttons)
        setup_layout.addWidget(self.progress_bar)
        setup_layout.addWidget(self.eta_label)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(scrolled(setup, horizontal=True))  # its height binds nothing
        self.splitter.addWidget(self.results_host)
        self.splitter.setStretchFactor(1, 3)

        layout = QVBoxLayout(self)
        layout.addWidget(self.splitter)

    # The results view's parts, as the panel's own (tests, the window).
    @property
    def summary_model(self) -> QStandardItemModel:
        return self.results.summary_model

    @property
    def confusion_table(self) -> QTableWidget:
        return self.results.confusion_table

    @property
    def confusion_combo(self) -> QComboBox:
        return self.results.confusion_combo

    @property
    def plot_labels(self) -> list[QLabel]:
        return self.results.plot_labels

    @property
    def plot_dialogs(self) -> list[QDialog]:
        return self.results.plot_dialogs

    def open_plot(self, path: Path) -> QDialog:
        """Show one plot at full size."""
        return self.results.open_plot(path)

    def _browse_out(self) -> None:
        start = self.out_edit.text().strip() or str(RUNS_HOME)
        path = QFileDialog.getExistingDirectory(self, "Run folder", start)
        if path:
            self.out_edit.setText(path)

    def _on_model(self) -> None:
        if not self._model_edited and self.session.model_spec:
            self.model_edit.setText(self.session.model_spec)

    def _show_labels(self) -> None:
        """Say which label set a run scores (the same as the live prediction's)."""
        s = self.session
        self.labels_label.setText(f"{', '.join(s.labels)} — {s.label_source}")
        self.labels_label.setToolTip(
            "A run scores the open dataset's labels, as the live prediction does"
        )

    def _on_manifest(self) -> None:
        manifest = self.session.manifest
        if manifest is None:
            return
        self.manifest_label.setText(f"{manifest.path.name} · {len(manifest)} clips")
        self.manifest_label.setToolTip(str(manifest.path))
        self._show_labels()
        splits = sorted({r.get("split") for r in manifest.rows if r.get("split")})
        self.split_combo.clear()
        self.split_combo.addItems([ALL_SPLITS, *splits])
        held_out = [sp for sp in splits if sp.lower() in HELD_OUT_SPLITS]
        if held_out:  # report on held-out clips by default, as a paper would
            self.split_combo.setCurrentText(held_out[0])

    # --- configuration ------------------------------------------------------------

    def conditions(self) -> list[str]:
        """The ticked conditions as run condition names."""
        out = [c for c in SIMPLE_CONDITIONS if self.condition_boxes[c].isChecked()]
        if self.condition_boxes["corrupt"].isChecked():
            grid = parse_numbers(self.corrupt_edit.text(), float, "corruption grid")
            if not grid:
                raise RunConfigError("batch run: corrupt is ticked but the p grid is empty")
            out += [f"corrupt:{p:g}" for p in grid]
        if self.condition_boxes["ablate"].isChecked():
            out.append(f"ablate:{self.ablate_combo.currentText()}")
        if not out:
            raise RunConfigError("batch run: tick at least one condition")
        return out

    def config(self) -> RunConfig:
        """The run the form describes (raises :class:`CueLabError` with one line)."""
        manifest = self.session.manifest
        if manifest is None:
            raise RunConfigError("batch run: open a dataset first")
        spec = self.model_edit.text().strip() or self.session.model_spec
        if not spec:
            raise RunConfigError("batch run: no model (load one or type its spec)")
        quant, device = "auto", "auto"
        remote: dict[str, str] = {}
        trust: dict[str, bool] = {}
        if spec == self.session.model_spec:
            quant, device = self.session.model_options
            remote = self.session.model_remote
            trust = self.session.model_trust
        split = self.split_combo.currentText()
        # The live prediction's label set (the dataset's), even when a split lacks a class.
        dataset_set = self.session.label_source.startswith("the dataset's")
        return RunConfig(
            labels=self.session.labels if dataset_set else None,
            manifest=str(manifest.path),
            models=(spec,),
            conditions=tuple(self.conditions()),
            out=self.out_edit.text().strip() or str(default_out()),
            split=None if split == ALL_SPLITS else split,
            seeds=tuple(parse_numbers(self.seeds_edit.text(), int, "seeds")),
            quant=quant,
            device=device,
            limit=self.limit_spin.value() or None,
            bootstrap=self.bootstrap_spin.value(),
            workers=max(1, (os.cpu_count() or 2) - 1),  # leave a core to the window
            scoring=remote.get("scoring", "auto"),
            prompt_family=remote.get("prompt_family"),
            allow_pickle=trust.get("allow_pickle", False),
            trust_remote_code=trust.get("trust_remote_code", False),
        )

    # --- run ----------------------------------------------------------------------

    def start(self) -> None:
        """Start a new run from the form."""
        try:
            config = self.config()
        except CueLabError as exc:
            self._on_failed(window_text(exc))
            return
        if RunFolder(config.out).has_record():
            self._offer(
                RunConfigError(
                    f"batch run: {config.out} already holds a run",
                    subject=Path(config.out),
                    remedy=(errors.RESUME, errors.NEW_OUTPUT_FOLDER),
                ),
                config,
            )
            return
        self._launch(config, resume=False)

    def _offer(self, exc: CueLabError, config: RunConfig) -> None:
        """Show ``exc`` and, when its remedy is to resume ``config``'s run, enable Resume for it."""
        self._on_failed(window_text(exc))
        if offered(exc, {errors.RemedyKind.RESUME}) is not None and self.state != "running":
            self.last_config = config
            self.resume_button.setEnabled(True)

    def resume(self) -> None:
        """Continue the last cancelled or failed run in its folder."""
        if self.last_config is not None:
            self._launch(self.last_config, resume=True)

    def cancel(self) -> None:
        """Stop the run between clips; what was scored stays on disk.

        A run that completes anyway (Cancel came after its last clip) is
        shown as finished: its result is complete on disk.
        """
        if self.state == "running":
            self._cancel_requested = True
            self.slot.interrupt()
            self.eta_label.setText("Cancelling after the current clip…")

    def _launch(self, config: RunConfig, resume: bool) -> None:
        from cuelab.core.runs import run_eval

        self._run_id += 1
        run_id, relay = self._run_id, self.relay
        self.last_config = config
        self._cancel_requested = False
        loader = self._loader()

        def work(job: Job) -> BatchResult:
            control = RunControl(job, lambda info: relay.progress.emit(run_id, info))
            outcome = run_eval(
                config, resume=resume, control=control, loader=loader, command=["cuelab-gui"]
            )
            job.report("Building the report…")
            return load_result(outcome.folder, config, build_report_isolated(outcome.folder))

        self.progress_bar.setValue(0)
        self.error_text = ""
        self._clear_result()  # nothing of an older run is shown or exported from now on
        self._set_state("running")
        self.slot.start(work, self._on_result)

    def _clear_result(self) -> None:
        self.result = None
        self.results.clear()

    def open_run(self, folder: Path) -> None:
        """Show a run folder's report (built in a worker); an unfinished run can be resumed."""
        if self.state == "running":  # the panel shows, cancels and resumes the live run
            self._on_failed(
                f"{folder}: a batch run is in progress; cancel it before opening another"
            )
            return

        try:
            record = RunFolder(folder).read_record()
            config = record.run_config()
        except (CueLabError, KeyError, TypeError, ValueError) as exc:
            self._on_failed(f"{folder}: cannot open the run ({exc})")
            return
        # The folder may have moved. What a checkpoint may run is the user's choice now, not
        # the record's: only what is ticked for this very model in the model panel.
        trust = self.session.model_trust if config.models == (self.session.model_spec,) else {}
        config = dataclasses.replace(
            config,
            out=str(folder),
            allow_pickle=config.allow_pickle and trust.get("allow_pickle", False),
            trust_remote_code=config.trust_remote_code and trust.get("trust_remote_code", False),
        )
        self.last_config = config
        self.out_edit.setText(str(folder))
        complete = record.status == "complete"
        self._clear_result()
        if not complete:
            self._set_state("cancelled")
            self.eta_label.setText(
                f"{folder}: the run is {record.status or 'unfinished'}; Resume continues it"
            )
            return

        def work(job: Job) -> BatchResult:
            job.report("Building the report…")
            return load_result(folder, config, build_report_isolated(folder))

        def done(result: BatchResult, _s: float) -> None:
            self.result = result
            self._show_results(result)
            self._set_state("finished")
            self.eta_label.setText(f"Opened {result.folder}")
            self.run_finished.emit(result)

        self.eta_label.setText(f"Opening {folder}…")
        self.export_slot.start(work, done)

    def _loader(self) -> Any:
        """Lend the window's model to the run when the spec matches (no second copy)."""
        session = self.session
        adapter, spec = session.model, session.model_spec

        def load(wanted: str, options: Any) -> Any:
            if adapter is not None and wanted == spec:
                return SharedAdapter(session, adapter)
            from cuelab.core.models import load_model

            return load_model(wanted, options)

        return load

    def _on_progress(self, run_id: int, info: ProgressInfo) -> None:
        if run_id != self._run_id or self.state != "running":
            return
        stage = "features" if info.message == "features" else "scoring"
        self.progress_bar.setMaximum(max(1, info.total))
        self.progress_bar.setValue(info.done)
        eta = "" if info.eta_s is None else f" · ETA {format_duration(info.eta_s)}"
        self.eta_label.setText(
            f"{stage}: {info.done}/{info.total} · {info.rate:.1f}/s{eta}"
            + (f" · {info.message}" if stage == "scoring" and info.message != "scoring" else "")
        )
        self.progressed.emit(info)

    def _show_results(self, result: BatchResult) -> None:
        """Show ``result``, giving the results most of the tab (the setup stays a drag away)."""
        self.results.show_result(result)
        total = sum(self.splitter.sizes())
        if total > 0 and not self.results_host.detached:
            self.splitter.setSizes([total // 4, total - total // 4])

    def _on_result(self, result: BatchResult, seconds: float) -> None:
        self.result = result
        self._show_results(result)
        self._set_state("finished")
        self.eta_label.setText(f"Finished in {format_duration(seconds)} · {result.folder}")
        self.session.message.emit(f"Batch run finished: {result.folder}")
        self.run_finished.emit(result)

    def _on_busy(self, busy: bool) -> None:
        if busy or self.state != "running":
            return
        if self._cancel_requested:
            self._set_state("cancelled")
            self.eta_label.setText("Cancelled; the partial run is on disk (Resume continues it)")
        else:
            self._set_state("failed")
            why = self.error_text or "see Messages"
            self.eta_label.setText(f"The run stopped: {why}. Resume continues it.")

    def _set_state(self, state: str) -> None:
        self.state = state
        running = state == "running"
        resumable = (
            state in ("cancelled", "failed")
            and self.last_config is not None
            and RunFolder(self.last_config.out).has_record()
        )
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.resume_button.setEnabled(resumable)
        self.export_button.setEnabled(not running and self.result is not None)
        self.folder_button.setEnabled(
            self.last_config is not None and Path(self.last_config.out).exists()
        )
        self.state_changed.emit(state)

    # --- results ------------------------------------------------------------------

    def open_folder(self) -> None:
        """Open the run folder in the system's file manager."""
        folder = self.result.folder if self.result is not None else None
        if folder is None and self.last_config is not None:
            folder = Path(self.last_config.out)
        if folder is None or not folder.exists():
            return
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            # No file manager (a server, a bare desktop): the path itself, copied, so that
            # the button never just does nothing.
            QGuiApplication.clipboard().setText(str(folder))
            self.eta_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.eta_label.setText(f"No file manager here. The run folder is {folder} (copied)")
            self.session.message.emit(f"Run folder {folder} (path copied)")

    def export(self) -> None:
        """Rebuild the report and copy its CSVs and plots into a chosen folder."""
        if self.result is None:
            return
        folder = self.result.folder
        dest = QFileDialog.getExistingDirectory(self, "Export the report to", str(Path.home()))
        if not dest:
            return
        target = Path(dest)

        def work(job: Job) -> list[Path]:
            job.report("Rebuilding the report…")
            return copy_report(folder, build_report_isolated(folder), target)

        def done(copied: list[Path], _s: float) -> None:
            self.session.message.emit(f"Exported {len(copied)} report files to {target}")
            self.exported.emit(copied)

        self.export_slot.start(work, done)
