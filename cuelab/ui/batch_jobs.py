"""The Qt-light half of the batch panel: run control, report building and loading.

Everything here runs in (or is handed to) the panel's worker thread and touches no
widget: the control that ties a run to its job slot (the run itself is a child
process, :mod:`cuelab.ui.batch_process`), the report built in a child process, and
the :class:`BatchResult` read back for display (QImage, unlike QPixmap, is safe off
the GUI thread). Kept apart from
:mod:`cuelab.ui.batch_panel` so the widgets read on their own.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from cuelab.core.errors import CueLabError
from cuelab.core.jobs import JobControl, pool_worker_init
from cuelab.core.runs import RunConfig, RunConfigError, RunFolder
from cuelab.ui.workers import Job

RUNS_HOME = Path.home() / "cuelab-runs"
PLOT_WIDTH = 380


@dataclass
class BatchResult:
    """A finished run as the panel shows it (built in the worker).

    Attributes:
        folder: the run folder.
        manifest: the manifest the run scored.
        header / rows: summary.csv.
        plots: each PNG and its decoded image.
        predictions: utt_id -> answer of the first model under ``correct``
            (else ``audio-only``), for the dataset panel; "unparsed" when unparsed.
        condition: which condition ``predictions`` come from.
        report_files: every file of the report (CSVs, PNGs, annotations).
        cells: per condition of the first model (first seed where seeded), the
            clips in each confusion cell: (label, prediction) -> utt_ids.
        labels: the labels, in order (rows and columns of the confusion).
    """

    folder: Path
    manifest: Path
    header: list[str]
    rows: list[list[str]]
    plots: list[tuple[Path, QImage]] = field(default_factory=list)
    predictions: dict[str, str] = field(default_factory=dict)
    condition: str = ""
    report_files: list[Path] = field(default_factory=list)
    cells: dict[str, dict[tuple[str, str], list[str]]] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)


class RunControl(JobControl):
    """The run's control: reports progress, and is cancelled with its job slot's job."""

    def __init__(self, job: Job, on_progress: Any) -> None:
        super().__init__(on_progress)
        self._job = job

    def check(self) -> None:
        self._job.check()
        super().check()


def default_out() -> Path:
    """A new run folder under ``~/cuelab-runs``, named by the local time."""
    return RUNS_HOME / _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def parse_numbers(text: str, kind: type, what: str) -> list[Any]:
    """Numbers separated by commas or spaces (``"0.1, 0.3 0.5"``)."""
    parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
    try:
        return [kind(p) for p in parts]
    except ValueError:
        raise RunConfigError(f"batch run: {what} '{text}' is not a list of numbers") from None


def build_report_isolated(folder: Path) -> Any:
    """:func:`cuelab.core.reports.build.build_report` in a child process.

    In a worker thread, its first imports (matplotlib, scipy) and the Agg
    drawing hold the GIL for up to ~0.1 s at a time, and the window froze
    for 90-130 ms at the end of every run; a child process cannot stall it.
    ``forkserver`` (where there is one) is safe from a threaded process.
    """
    import concurrent.futures as cf

    from cuelab.core.reports import build_report
    from cuelab.ui.child_process import context

    ctx = context()
    init, args = pool_worker_init, (os.getpid(),)
    with cf.ProcessPoolExecutor(1, mp_context=ctx, initializer=init, initargs=args) as pool:
        try:
            return pool.submit(build_report, folder).result()
        except cf.process.BrokenProcessPool as exc:
            raise CueLabError(f"{folder}: the report process died ({exc})") from None


def report_files(folder: Path, files: Any) -> list[Path]:
    """Every file a report wrote, and run.json (the provenance of the numbers)."""
    out: list[Path] = []
    for f in dataclasses.fields(files):
        value = getattr(files, f.name)
        values = value if isinstance(value, list) else [value]
        out += [v for v in values if isinstance(v, Path)]
    return RunFolder(folder).report_files(out)


def copy_report(folder: Path, files: Any, target: Path) -> list[Path]:
    """Copy a built report's files into ``target``; a failure is one line naming ``target``."""
    try:
        target.mkdir(parents=True, exist_ok=True)
        return [Path(shutil.copy2(p, target / p.name)) for p in report_files(folder, files)]
    except OSError as exc:
        raise RunConfigError(f"{target}: cannot export the report ({exc.strerror})") from exc


def load_result(folder: Path, config: RunConfig, files: Any) -> BatchResult:
    """Read what the panel shows (worker thread: QImage, unlike QPixmap, is thread-safe)."""
    from cuelab.core.reports import load_predictions
    from cuelab.core.runs import read_complete_rows

    header, rows, _ = read_complete_rows(files.summary)
    plots = []
    for path in files.plots:
        image = QImage(str(path))
        if not image.isNull():
            plots.append(
                (path, image.scaledToWidth(PLOT_WIDTH, Qt.TransformationMode.SmoothTransformation))
            )
    model = config.models[0]
    condition = next((c for c in ("correct", "audio-only") if c in config.conditions), "")
    record = RunFolder(folder).read_record()
    rows_all = load_predictions(folder, record)
    # The matrix the report exports (confusion.csv): the run's labels as rows and columns,
    # and every answer outside them in one "unparsed" column.
    labels = [str(lab) for lab in record.labels]

    def column(pred: str) -> str:
        return pred if pred in labels else "unparsed"

    predictions = {
        utt: column(pred) for utt, _s, _l, m, c, _seed, pred in rows_all
        if m == model and c == condition
    }  # fmt: skip
    cells: dict[str, dict[tuple[str, str], list[str]]] = {}
    first_seed: dict[str, str] = {}
    for utt, _s, label, m, c, seed, pred in rows_all:
        if m != model or first_seed.setdefault(c, seed) != seed or label not in labels:
            continue
        cells.setdefault(c, {}).setdefault((label, column(pred)), []).append(utt)
    return BatchResult(
        folder=folder,
        manifest=Path(config.manifest),
        header=header,
        rows=rows,
        plots=plots,
        predictions=predictions,
        condition=condition,
        report_files=report_files(folder, files),
        cells=cells,
        labels=labels,
    )


def format_duration(seconds: float) -> str:
    """A duration for the status line: ``42 s``, ``3 min 05 s`` or ``1 h 07 min``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, s = divmod(round(seconds), 60)
    return (
        f"{minutes} min {s:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
    )
