"""The emotion report of a run folder, rebuilt from predictions.csv + run.json.

:func:`cuelab.core.reports.build.build_report` (``cuelab report DIR`` and the
end of every run) calls :func:`build_emotion_report` for an emotion run,
which writes

* ``summary.csv``: one row per model × condition × seed (``n, uar,
  uar_ci_low, uar_ci_high, wa, unparsed``, per-class recall), plus a
  ``seed=mean`` row (t-interval over seeds) for multi-seed conditions;
* ``tests.csv``: exact McNemar of each condition against audio-only and
  against correct, per model and seed and pooled over seeds, with its
  ``family`` and Holm's correction within each (model, family)
  (:mod:`cuelab.core.reports.analysis`); summary.csv's ``delta_*`` columns too;
* ``confusion.csv``: long-form confusion counts;
* ``spearman.csv``: Spearman's rho of UAR over the corruption grid (``variant``
  ``level-means`` and ``per-seed``);
* ``reliance.csv``, ``reliance_index.csv``, ``calibration.csv`` and
  ``reliability.png`` (:mod:`cuelab.core.reports.reliance`); ``tables/`` when
  asked (:mod:`cuelab.core.reports.tables`);
* PNG plots (confusion matrices, UAR over corruption, token gain);
* ``annotations.csv`` and ``annotations_summary.csv`` when the run's manifest
  has an annotator sidecar (:mod:`cuelab.core.reports.agreement`).

Every CSV goes through :func:`cuelab.core.runs.csvio.write_csv` (atomic,
spreadsheet-safe).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cuelab.core.errors import ReportError
from cuelab.core.reports import analysis, stats
from cuelab.core.reports import plots as pl
from cuelab.core.reports.agreement import write_annotation_report
from cuelab.core.reports.reliance import write_reliance_and_calibration
from cuelab.core.runs import record as rec
from cuelab.core.runs.csvio import read_complete_rows, write_csv
from cuelab.core.runs.folder import RunFolder

SUMMARY_CSV = "summary.csv"
TESTS_CSV = "tests.csv"
CONFUSION_CSV = "confusion.csv"
SPEARMAN_CSV = "spearman.csv"

__all__ = ["ReportError", "ReportFiles", "build_emotion_report", "load_predictions"]


@dataclass
class ReportFiles:
    """The files a report wrote, and its summary rows (for printing)."""

    summary: Path
    tests: Path
    confusion: Path
    spearman: Path
    plots: list[Path] = field(default_factory=list)
    rows: list[stats.SummaryRow] = field(default_factory=list)
    annotations: list[Path] = field(default_factory=list)
    analysis: list[Path] = field(default_factory=list)
    channels: Path | None = None


def _num(x: float, digits: int = 6) -> str:
    return "" if x is None or not math.isfinite(x) else format(float(x), f".{digits}g")


def load_predictions(
    folder: str | Path, record: rec.RunRecord | None = None
) -> list[tuple[str, str, str, str, str, str, str]]:
    """(utt_id, speaker, label, model, condition, seed, prediction) of every complete row.

    With the run's ``record``, rows it cannot have written are refused
    (:func:`cuelab.core.runs.record.row_check`).
    """
    path = RunFolder(folder).predictions
    if not path.is_file():
        raise ReportError(f"{folder}: no {rec.PREDICTIONS_CSV}")
    check = rec.row_check(record) if record is not None else None
    header, rows, _ = read_complete_rows(path, check)
    missing = [c for c in rec.BASE_COLUMNS if c not in header]
    if missing:
        raise ReportError(f"{path}: missing columns {', '.join(missing)}")
    idx = [header.index(c) for c in rec.BASE_COLUMNS]
    if "edit" in header:  # an edit run: these tables are of the original audio and tokens
        e = header.index("edit")
        rows = [r for r in rows if r[e] == "none"]
    out = []
    for r in rows:
        u, s, lab, m, c, sd, p = (r[i] for i in idx)
        out.append((u, s, lab, m, c, sd, p))
    return out


def build_emotion_report(
    folder: Path,
    record: rec.RunRecord,
    *,
    plots: bool = True,
    holm: str | None = None,
    calibrate: Sequence[str] | None = None,
    tables: bool = False,
    analysis_plots: bool | None = None,
) -> ReportFiles:
    """Compute the statistics of an emotion run folder and write its tables (and plots).

    ``holm`` (``family`` or ``all``) and ``calibrate`` (``contextual``, ``batch``)
    default to the choices run.json recorded last time, else ``family`` and none;
    the choices used are written back under run.json's ``analysis``. ``tables``
    also writes ``tables/`` in the papers' shape (:mod:`cuelab.core.reports.tables`).

    Raises:
        ReportError: no predictions, or no row with a reference label.
    """
    # the analysis figures (reliability diagram, token distribution) are drawn with the
    # plots, or whenever the analysis that owns them was asked for by name
    figures = plots if analysis_plots is None else analysis_plots
    labels: list[str] = list(record.labels)
    config = record.config
    models: list[str] = list(config["models"])
    conditions: list[str] = list(config["conditions"])
    groups = stats.group_rows(load_predictions(folder, record))
    if not groups:
        raise ReportError(f"{folder}: no scored rows with a reference label")
    keys = stats.ordered_keys(groups, models, conditions)
    summary = stats.summarise(
        groups, keys, labels, int(config["bootstrap"]), int(config["bootstrap_seed"])
    )
    before = record.analysis
    before = before if isinstance(before, dict) else {}
    holm = holm or str(before.get("holm") or "family")
    if holm not in analysis.HOLM_CHOICES:
        raise ReportError(f"--holm must be one of {', '.join(analysis.HOLM_CHOICES)}, not {holm!r}")
    if calibrate is None:
        earlier = before.get("calibrate")
        calibrate = [str(c) for c in earlier] if isinstance(earlier, list) else []
    tests = analysis.family_tests(groups, keys, holm)
    deltas = analysis.delta_cells(
        groups, keys, int(config["bootstrap"]), int(config["bootstrap_seed"])
    )
    present = [m for m in models if any(k[0] == m for k in keys)]
    files = ReportFiles(
        summary=_write_summary(folder, summary, labels, record.interventions, deltas),
        tests=write_csv(
            folder / TESTS_CSV,
            [
                "model",
                "condition_a",
                "condition_b",
                "seed",
                "n",
                "n01",
                "n10",
                "p_mcnemar",
                "p_holm",
                "family",
            ],
            [
                [
                    t.model,
                    t.condition_a,
                    t.condition_b,
                    t.seed,
                    t.n,
                    t.n01,
                    t.n10,
                    _num(t.p_mcnemar),
                    _num(t.p_holm),
                    t.family,
                ]
                for t in tests
            ],
        ),
        confusion=write_csv(
            folder / CONFUSION_CSV,
            ["model", "condition", "seed", "label", "prediction", "count"],
            [row for k in keys for row in stats.confusion_long(groups[k], labels)],
        ),
        spearman=write_csv(
            folder / SPEARMAN_CSV,
            ["model", "n_points", "levels", "rho", "p", "variant", "p_exact"],
            [
                [s.model, s.n_points, s.levels, _num(s.rho), _num(s.p), variant, _num(s.p_exact)]
                for variant, s in analysis.spearman_variants(summary, present)
            ],
        ),
        rows=summary,
    )
    if plots:
        files.plots = _plots(folder, groups, keys, summary, present, labels)
    files.annotations = write_annotation_report(folder, record)
    files.analysis = write_reliance_and_calibration(
        folder, record, groups, keys, labels, present, calibrate, figures
    )
    record.analysis = analysis.analysis_choices(holm, calibrate)  # the tables' caption reads it
    if tables:
        from cuelab.core.reports.tables import write_emotion_tables

        files.analysis.extend(write_emotion_tables(folder, record, plots=figures))
    rec.write_record(folder, record)

    if config.get("edits"):
        from cuelab.core.reports.channels import write_channels

        # the 2×2 figure belongs to the edit analysis, which the run asked for by name
        files.channels = write_channels(folder, record, plots=True)
    return files


def _write_summary(
    folder: Path,
    summary: Sequence[stats.SummaryRow],
    labels: Sequence[str],
    interventions: dict[str, dict[str, dict[str, float]]],
    deltas: dict[tuple[str, str, str], Any],
) -> Path:
    header = [
        "model", "condition", "seed", "n", "uar", "uar_ci_low", "uar_ci_high", "wa", "unparsed",
        *(f"recall_{lab}" for lab in labels), "ci_method", "n_speakers", "ci_note",
        "change_rate", "same_tokens", "delta_uar", "delta_ci_low", "delta_ci_high",
    ]  # fmt: skip
    none = (math.nan, math.nan, math.nan)
    rows = [
        [
            r.model, r.condition, r.seed, r.n, _num(r.uar), _num(r.uar_ci_low),
            _num(r.uar_ci_high), _num(r.wa), _num(r.unparsed),
            *(_num(r.recalls.get(lab, math.nan)) for lab in labels), r.ci_method,
            r.n_speakers, r.ci_note, *_effect(interventions, r.condition, r.seed),
            *(_num(x) for x in deltas.get((r.model, r.condition, r.seed), none)),
        ]
        for r in summary
    ]  # fmt: skip
    return write_csv(folder / SUMMARY_CSV, header, rows)


def _effect(
    interventions: dict[str, dict[str, dict[str, float]]], condition: str, seed: str
) -> tuple[str, str]:
    """(change_rate, same_tokens) of a condition and seed from run.json ("" when unknown).

    The ``seed=mean`` row gets the mean over the seeds.
    """
    per_seed = interventions.get(condition)
    if not per_seed:
        return "", ""
    entries = list(per_seed.values()) if seed == stats.MEAN_SEED else [per_seed.get(seed, {})]
    if not all(entries):
        return "", ""
    rate = float(np.mean([e["change_rate"] for e in entries]))
    same = float(np.mean([e["same_tokens"] for e in entries]))
    return _num(rate), _num(same)


def _plots(
    folder: Path,
    groups: dict[tuple[str, str, str], stats.Group],
    keys: Sequence[tuple[str, str, str]],
    summary: Sequence[stats.SummaryRow],
    models: Sequence[str],
    labels: Sequence[str],
) -> list[Path]:
    slugs = pl.model_slugs(models)
    out = []
    for model in models:
        counts: dict[str, np.ndarray] = {}
        for key in keys:
            if key[0] != model:
                continue
            mat = np.zeros((len(labels), len(labels) + 1), dtype=np.int64)
            for _, _, _, lab, pred, n in stats.confusion_long(groups[key], labels):
                cols = [*labels, "unparsed"]
                mat[labels.index(lab), cols.index(pred)] = n
            name = key[1] if not key[2] else f"{key[1]} (seeds summed)"
            counts[name] = counts.get(name, 0) + mat
        out.append(
            pl.confusion_figure(folder / f"confusion_{slugs[model]}.png", model, counts, labels)
        )
    if any(r.condition.startswith("corrupt:") for r in summary):
        out.append(pl.corruption_figure(folder / "uar_vs_corruption.png", summary, models))
    if (
        any(r.condition == stats.AUDIO_ONLY for r in summary)
        and len({r.condition for r in summary}) > 1
    ):
        out.append(pl.gain_figure(folder / "token_gain.png", summary, models))
    return out
