"""Annotator agreement in a run's report.

When the run's manifest has annotator sidecars
(:mod:`cuelab.core.datasets.annotations`), ``annotations.csv`` lists each
annotated clip of the run, once per annotator, with the models' ``correct``
and ``audio-only`` answers beside the annotator's, and
``annotations_summary.csv`` gives how often each annotator agrees with the
reference label and with each model (count, proportion, Cohen's kappa).
Whole-clip labels only: regions are scored by ``cuelab annotations agreement``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from cuelab.core.datasets.annotations import Annotation, annotators, load_annotations
from cuelab.core.datasets.manifest import read_manifest
from cuelab.core.reports.plots import model_slugs
from cuelab.core.runs import record as rec
from cuelab.core.runs.csvio import read_complete_rows, write_csv
from cuelab.core.runs.folder import RunFolder

ANNOTATIONS_CSV = "annotations.csv"
ANNOTATIONS_SUMMARY_CSV = "annotations_summary.csv"
#: Conditions whose answers are set beside the annotator's (seed-free ones only).
COMPARED_CONDITIONS = ("correct", "audio-only")
_SUMMARY_HEADER = (
    "annotator",
    "compared_with",
    "model",
    "condition",
    "n",
    "agree",
    "agreement",
    "kappa",
)


def agreement(pairs: Sequence[tuple[str, str]]) -> tuple[int, float, float]:
    """Agreement count, proportion and Cohen's kappa of (annotator, other) label pairs.

    Labels compare case-insensitively, since annotators type them. An empty
    ``other`` (an unparsed model answer) counts as a disagreement: it is kept
    in ``n``, never dropped or guessed. Kappa is NaN when it is undefined
    (every pair on one and the same label).
    """
    n = len(pairs)
    if n == 0:
        return 0, math.nan, math.nan
    norm = [(a.strip().casefold(), b.strip().casefold()) for a, b in pairs]
    agree = sum(1 for a, b in norm if a == b and b)
    po = agree / n
    cats = {a for a, _ in norm} | {b for _, b in norm}
    pe = sum(
        (sum(1 for a, _ in norm if a == c) / n) * (sum(1 for _, b in norm if b == c) / n)
        for c in cats
        if c
    )
    kappa = (po - pe) / (1 - pe) if pe < 1 else math.nan
    return agree, po, kappa


def write_annotation_report(folder: str | Path, record: rec.RunRecord) -> list[Path]:
    """Write ``annotations.csv`` and ``annotations_summary.csv`` into a run folder.

    The sidecar is looked up next to the manifest named in run.json, so the
    report always reflects the annotations as they are now (a report can be
    rebuilt after more clips were annotated). Without a sidecar, or with no
    annotated clip in the run, the two files are removed: a report never
    shows annotations that are no longer there.

    Returns:
        The files written (empty when there was nothing to write).
    """
    folder = Path(folder)
    manifest_path = (record.manifest or {}).get("path") or record.config["manifest"]
    stale = [folder / ANNOTATIONS_CSV, folder / ANNOTATIONS_SUMMARY_CSV]
    notes = {who: load_annotations(manifest_path, who) for who in annotators(manifest_path)}
    clips = _annotated_clips(manifest_path, notes) if any(notes.values()) else []
    answers = _seed_free_answers(folder) if clips else {}
    in_run = {u for u, _m, _c in answers}
    clips = [c for c in clips if c[0] in in_run]
    if not clips:
        for path in stale:
            path.unlink(missing_ok=True)
        return []
    return _write_tables(folder, record, clips, answers)


def _annotated_clips(
    manifest_path: str | Path, notes: Mapping[str, Mapping[str, Annotation]]
) -> list[tuple[str, str, str, Annotation]]:
    """(utt_id, path, label, annotation) of each annotated manifest row and annotator,
    in manifest order (annotators sorted within a row)."""
    manifest = read_manifest(manifest_path, check_files=False)
    return [
        (row.utt_id, row.rel_path, row.get("label"), notes[who][row.rel_path])
        for row in manifest.rows
        for who in sorted(notes)
        if row.rel_path in notes[who]
    ]


def _seed_free_answers(folder: Path) -> dict[tuple[str, str, str], str]:
    """(utt_id, model, condition) -> answer for the compared conditions ("" = unparsed)."""
    path = RunFolder(folder).predictions
    if not path.is_file():
        return {}
    header, rows, _ = read_complete_rows(path)
    if any(c not in header for c in rec.BASE_COLUMNS):
        return {}
    iu, im, ic, ip = (header.index(c) for c in ("utt_id", "model", "condition", "prediction"))
    return {(r[iu], r[im], r[ic]): r[ip] for r in rows if r[ic] in COMPARED_CONDITIONS}


def _write_tables(
    folder: Path,
    record: rec.RunRecord,
    clips: Sequence[tuple[str, str, str, Annotation]],
    answers: Mapping[tuple[str, str, str], str],
) -> list[Path]:
    models = [str(m) for m in record.config["models"]]
    slugs = model_slugs(models)
    present = {(m, c) for _u, m, c in answers}
    pairs = [(m, c) for m in models for c in COMPARED_CONDITIONS if (m, c) in present]
    header = [
        "utt_id", "path", "annotator", "label", "annotator_label", "note", "updated",
        *(f"pred_{slugs[m]}_{c}" for m, c in pairs),
    ]  # fmt: skip
    table = [
        [u, path, a.annotator, label, a.annotator_label, a.note, a.updated,
         *(answers.get((u, m, c), "") for m, c in pairs)]
        for u, path, label, a in clips
    ]  # fmt: skip
    summary: list[list[object]] = []
    for who in sorted({a.annotator for *_r, a in clips}):
        labelled = [(u, lab, a.label) for u, _p, lab, a in clips if a.label and a.annotator == who]
        summary.append(_summary_row(who, "label", "", "", [(a, x) for _u, x, a in labelled if x]))
        for m, c in pairs:
            got = [(a, answers[(u, m, c)]) for u, _lab, a in labelled if (u, m, c) in answers]
            summary.append(_summary_row(who, "model", m, c, got))
    return [
        write_csv(folder / ANNOTATIONS_CSV, header, table),
        write_csv(folder / ANNOTATIONS_SUMMARY_CSV, _SUMMARY_HEADER, summary),
    ]


def _summary_row(
    annotator: str,
    compared_with: str,
    model: str,
    condition: str,
    pairs: Sequence[tuple[str, str]],
) -> list[object]:
    agree, po, kappa = agreement(pairs)
    return [annotator, compared_with, model, condition, len(pairs), agree, _num(po), _num(kappa)]


def _num(x: float) -> str:
    return format(x, ".6g") if math.isfinite(x) else ""
