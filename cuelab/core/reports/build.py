"""Build the report of any run folder: the one entry point, which picks the report kind.

``cuelab report DIR``, the end of every ``cuelab eval`` and the window's Batch
panel call :func:`build_report`. An emotion run gets UAR/WA with bootstrap
intervals, paired tests, confusion and agreement tables
(:mod:`cuelab.core.reports.emotion`); a speech / scene / event run gets WER,
mACC and mAP per model × mode × SNR (:mod:`cuelab.core.reports.sseu`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cuelab.core.reports.emotion import ReportFiles, build_emotion_report
from cuelab.core.reports.sseu import SseuReportFiles, build_sseu_report
from cuelab.core.runs.folder import RunFolder


def build_report(
    folder: str | Path,
    *,
    plots: bool = True,
    holm: str | None = None,
    calibrate: Sequence[str] | None = None,
    tables: bool = False,
    analysis_plots: bool | None = None,
) -> ReportFiles | SseuReportFiles:
    """Compute the statistics of a run folder and write its tables (and plots).

    ``holm`` and ``calibrate`` are the analysis choices of an emotion run
    (README "Analysis"); ``tables`` also writes ``tables/`` in the papers' shape.
    ``analysis_plots`` draws the reliability diagram and the token-distribution figure
    even without ``plots`` (None: with the plots).

    Raises:
        ReportError: no predictions, or no row with a reference label.
    """
    folder = Path(folder)
    record = RunFolder(folder).read_record()
    if record.is_sseu:
        files = build_sseu_report(folder, record, plots=plots)
        if tables:
            from cuelab.core.reports.tables import write_sseu_tables

            write_sseu_tables(folder)
        return files
    return build_emotion_report(
        folder,
        record,
        plots=plots,
        holm=holm,
        calibrate=calibrate,
        tables=tables,
        analysis_plots=analysis_plots,
    )
