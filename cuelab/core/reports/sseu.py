"""The report of an SSEU run: WER / mACC / mAP per model × mode × SNR, and their plots.

``summary.csv`` has one row per model × mode × ``snr_db`` (the layout of
SSEU-Bench's Tables 1 and 2): ``wer``, ``macc`` and ``map`` in percent, each
with its std over seeds (empty with one seed or where a metric was not
asked or has no scorable clip: WER at ``-inf`` dB, no speech; mACC and mAP at
``+inf`` dB, no background; WER for CLAP). ``summary_by_seed.csv`` has the
per-seed values behind the means; ``wer_vs_snr.png``, ``macc_vs_snr.png``
and ``map_vs_snr.png`` plot each metric against SNR.

The numbers come from :func:`cuelab.core.tasks.sseu.score.score_sseu`, the same
function a script would call: the run stored each answer's matched scene and
event confidences, and the report replays those stored decisions through a
matcher that looks them up by row, so the scoring conventions (which clips
count, unparsed answers, NaN, mean ± std over seeds) live in one place and the
report needs neither the model nor the text encoder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cuelab.core.errors import ReportError
from cuelab.core.runs import record as rec
from cuelab.core.runs.csvio import read_complete_rows, write_csv
from cuelab.core.runs.folder import RunFolder
from cuelab.core.runs.sseu import (
    BASE_COLUMNS,
    EVENT_PREFIX,
    MODES,
    REFERENCE_COLUMNS,
    SCENE_PREFIX,
    fields_of,
)
from cuelab.core.tasks.sseu.answers import FIELDS, ParsedAnswer
from cuelab.core.tasks.sseu.matching import Match
from cuelab.core.tasks.sseu.score import METRICS, SseuRecord, reference_from_row, score_sseu

SUMMARY_CSV = "summary.csv"
BY_SEED_CSV = "summary_by_seed.csv"
COUNTS = (*(f"unparsed_{f}" for f in FIELDS), "unmatched_scene")
METRIC_NAMES = {"wer": "WER (%)", "macc": "mACC (%)", "map": "mAP (%)"}
#: Metrics that get a plot (the raw WER is a column only).
PLOTTED = tuple(METRIC_NAMES)

GroupKey = tuple[str, str, str]  # model, mode, snr_db


@dataclass(frozen=True)
class SseuSummaryRow:
    """One row of an SSEU summary.csv (metrics in percent; NaN = empty cell)."""

    model: str
    mode: str
    snr_db: str
    n: int
    n_seeds: int
    metrics: dict[str, float]
    counts: dict[str, int]

    def value(self, name: str) -> float:
        """A metric or std column (``wer``, ``wer_std``...), NaN when absent."""
        return self.metrics.get(name, math.nan)


@dataclass
class SseuReportFiles:
    """The files an SSEU report wrote, and its summary rows (for printing)."""

    summary: Path
    by_seed: Path
    plots: list[Path] = field(default_factory=list)
    rows: list[SseuSummaryRow] = field(default_factory=list)


class _StoredDecisions:
    """The matcher protocol over decisions the run stored; a "text" is a row token.

    ``match(token)`` gives the scene class the run's matcher (or CLAP) chose for
    that row, ``confidences([token])`` the event confidences it wrote.
    """

    def __init__(self, classes: Sequence[str]) -> None:
        self.classes = tuple(classes)
        self.scene: dict[str, str | None] = {}
        self.conf: dict[str, dict[str, float]] = {}

    def match(self, text: str) -> Match:
        label = self.scene.get(text)
        return Match(label, 1.0 if label else 0.0, {})

    def confidences(self, texts: Sequence[str]) -> dict[str, float]:
        out = dict.fromkeys(self.classes, 0.0)
        for t in texts:
            for c, v in self.conf[t].items():
                out[c] = max(out[c], v)
        return out


def snr_order(snr: str) -> float:
    """Numeric value of an ``snr_db`` cell for sorting (blank or unreadable: -inf)."""
    try:
        value = float(snr)
    except ValueError:
        return -math.inf
    return -math.inf if math.isnan(value) else value


def _cell(value: str) -> float:
    return float(value) if value else 0.0


@dataclass
class _Table:
    """Records of a run grouped by (model, mode, snr), with the stored decisions."""

    scenes: _StoredDecisions
    events: _StoredDecisions
    groups: dict[GroupKey, list[tuple[str, SseuRecord]]] = field(default_factory=dict)


def read_sseu_table(folder: Path, record: rec.RunRecord) -> _Table:
    """Rebuild the scored records of every complete predictions row."""
    path = RunFolder(folder).predictions
    if not path.is_file():
        raise ReportError(f"{folder}: no {rec.PREDICTIONS_CSV}")
    header, rows, _ = read_complete_rows(path, rec.row_check(record))
    missing = [c for c in (*BASE_COLUMNS, *REFERENCE_COLUMNS) if c not in header]
    if missing:
        raise ReportError(f"{path}: missing columns {', '.join(missing)}")
    scenes = [c[len(SCENE_PREFIX) :] for c in header if c.startswith(SCENE_PREFIX)]
    events = [c[len(EVENT_PREFIX) :] for c in header if c.startswith(EVENT_PREFIX)]
    table = _Table(_StoredDecisions(scenes), _StoredDecisions(events))
    col = {c: i for i, c in enumerate(header)}
    for n, cells in enumerate(rows):
        row = dict(zip(header, cells))
        token = str(n)
        asked = fields_of(row["tasks"].split(";"))
        unparsed = set(row["unparsed"].split(";")) - {""}
        table.scenes.scene[token] = row["pred_scene"] or None
        table.events.conf[token] = {e: _cell(cells[col[EVENT_PREFIX + e]]) for e in events}
        answer = ParsedAnswer(
            asked,
            transcript=None if "transcript" in unparsed else row["pred_transcript"],
            scene=None if "scene" in unparsed else token,
            events=None if "events" in unparsed else (token,),
            source="stored",
        )
        reference = reference_from_row({c: row[c] for c in REFERENCE_COLUMNS})
        key = (row["model"], row["mode"], row["snr_db"])
        seed = int(row["seed"]) if row["seed"] else 0
        table.groups.setdefault(key, []).append(
            (row["utt_id"], SseuRecord(reference, answer, seed))
        )
    return table


def ordered(keys: Sequence[GroupKey], models: Sequence[str]) -> list[GroupKey]:
    """Models in configuration order, modes in :data:`MODES` order, SNR high to low."""

    def rank(key: GroupKey) -> tuple[int, int, float, str]:
        m, mode, snr = key
        mi = models.index(m) if m in models else len(models)
        return mi, MODES.index(mode) if mode in MODES else len(MODES), -snr_order(snr), m

    return sorted(keys, key=rank)


def _scores(result: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for metric in METRICS:
        if metric in result:
            out[metric] = float(result[metric])
            out[f"{metric}_std"] = float(result[f"{metric}_std"])
    return out


def summarise_sseu(
    table: _Table, models: Sequence[str]
) -> tuple[list[SseuSummaryRow], list[list[object]]]:
    """Summary rows and per-seed rows, in report order."""
    summary: list[SseuSummaryRow] = []
    by_seed: list[list[object]] = []
    for key in ordered(list(table.groups), models):
        items = table.groups[key]
        result: dict[str, Any] = score_sseu(
            [r for _, r in items],
            table.scenes.classes,
            table.events.classes,
            scene_matcher=table.scenes,
            event_matcher=table.events,
        )
        counts = {c: int(result[c]) for c in COUNTS if c in result}
        n = len({u for u, _ in items})
        summary.append(SseuSummaryRow(*key, n, int(result["n_seeds"]), _scores(result), counts))
        per_seed: dict[int, dict[str, float]] = result["per_seed"]
        for seed, values in per_seed.items():
            by_seed.append([
                *key, seed, int(values["n"]),
                *(_num(values.get(m, math.nan)) for m in METRICS),
                *(_count(values.get(c)) for c in COUNTS),
            ])  # fmt: skip
    return summary, by_seed


def _num(x: float) -> str:
    return "" if x is None or not math.isfinite(x) else format(float(x), ".6g")


def _count(x: float | None) -> str:
    return "" if x is None else str(int(x))


def build_sseu_report(
    folder: str | Path, record: rec.RunRecord | None = None, *, plots: bool = True
) -> SseuReportFiles:
    """Compute an SSEU run's summary tables (and plots) from its predictions.

    Raises:
        ReportError: no predictions, or missing columns.
    """
    folder = Path(folder)
    record = record if record is not None else rec.load_record(folder)
    models = list(record.config["models"])
    table = read_sseu_table(folder, record)
    if not table.groups:
        raise ReportError(f"{folder}: no scored rows")
    summary, by_seed = summarise_sseu(table, models)
    header = [
        "model", "mode", "snr_db", "n", "n_seeds",
        *(c for m in METRICS for c in (m, f"{m}_std")), *COUNTS,
    ]  # fmt: skip
    rows = [
        [
            r.model, r.mode, r.snr_db, r.n, r.n_seeds,
            *(_num(r.value(c)) for m in METRICS for c in (m, f"{m}_std")),
            *(_count(r.counts.get(c)) for c in COUNTS),
        ]
        for r in summary
    ]  # fmt: skip
    files = SseuReportFiles(
        summary=write_csv(folder / SUMMARY_CSV, header, rows),
        by_seed=write_csv(
            folder / BY_SEED_CSV,
            ["model", "mode", "snr_db", "seed", "n", *METRICS, *COUNTS],
            by_seed,
        ),
        rows=summary,
    )
    if plots:
        files.plots = [
            metric_figure(folder / f"{m}_vs_snr.png", m, summary)
            for m in PLOTTED
            if any(math.isfinite(r.value(m)) for r in summary)
        ]
    return files


def metric_figure(path: Path, metric: str, summary: Sequence[SseuSummaryRow]) -> Path:
    """One metric against SNR: a line per model × mode, error bars = std over seeds.

    SNR is a category axis (``-inf``: background only, ``inf``: speech only), low to
    high; points where the metric is undefined are left out.
    """
    from cuelab.core.reports.plots import _figure

    snrs = sorted({r.snr_db for r in summary}, key=snr_order)
    x = {s: i for i, s in enumerate(snrs)}
    fig = _figure(6.0, 3.8)
    ax = fig.add_subplot()
    lines: dict[tuple[str, str], list[SseuSummaryRow]] = {}
    for r in summary:
        lines.setdefault((r.model, r.mode), []).append(r)
    for (model, mode), rs in lines.items():
        pts = sorted((r for r in rs if math.isfinite(r.value(metric))), key=lambda r: x[r.snr_db])
        if not pts:
            continue
        std = [r.value(f"{metric}_std") for r in pts]
        ax.errorbar(
            [x[r.snr_db] for r in pts],
            [r.value(metric) for r in pts],
            yerr=[s if math.isfinite(s) else 0.0 for s in std],
            marker="o",
            capsize=3,
            label=f"{model} ({mode})",
        )
    ax.set_xticks(range(len(snrs)), [s or "?" for s in snrs])
    ax.set_xlabel("SNR (dB); -inf = background only, inf = speech only")
    ax.set_ylabel(METRIC_NAMES[metric])
    ax.set_ylim(0, 102 if metric != "wer" else None)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.savefig(path)
    return path
