"""Annotator labels and notes, kept in a sidecar CSV next to a manifest.

The sidecar ``<manifest stem>.annotations.csv`` has one row per annotated clip
(``path, annotator_label, note, updated``), ``path`` as written in the
manifest. It is rewritten atomically on every edit, so a crash never leaves a
half-written file and the window can save after each keystroke pause. No Qt
here: reports read the same file.

:func:`write_annotation_report` puts them into a run's report: when the
run's manifest has a sidecar, ``annotations.csv`` lists each annotated clip
of the run with the models' ``correct`` and ``audio-only`` answers beside the
annotator's, and ``annotations_summary.csv`` gives how often the annotator
agrees with the reference label and with each model.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cuelab.core.safeio import atomic_write_text, neutralise, restore

COLUMNS = ("path", "annotator_label", "note", "updated")


@dataclass(frozen=True)
class Annotation:
    """One clip's annotation.

    Attributes:
        path: the clip's path as written in the manifest (relative to it).
        annotator_label: the annotator's own label ("" when only a note was left).
        note: free text.
        updated: ISO 8601 time of the last edit (UTC).
    """

    path: str
    annotator_label: str = ""
    note: str = ""
    updated: str = ""

    @property
    def empty(self) -> bool:
        """True when neither a label nor a note is set (the row is then removed)."""
        return not self.annotator_label.strip() and not self.note.strip()


def sidecar_path(manifest_path: str | Path) -> Path:
    """``<folder>/<manifest stem>.annotations.csv`` for a manifest."""
    p = Path(manifest_path)
    return p.with_name(f"{p.stem}.annotations.csv")


def load_annotations(manifest_path: str | Path) -> dict[str, Annotation]:
    """Read a manifest's sidecar; an absent file means no annotations yet.

    Rows without a path are ignored; unknown columns are ignored too, so a
    file touched by a spreadsheet still loads.
    """
    side = sidecar_path(manifest_path)
    if not side.exists():
        return {}
    out: dict[str, Annotation] = {}
    with side.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            row = {k: restore(v) if isinstance(v, str) else v for k, v in row.items()}
            path = (row.get("path") or "").strip()
            if not path:
                continue
            out[path] = Annotation(
                path=path,
                annotator_label=(row.get("annotator_label") or "").strip(),
                note=row.get("note") or "",
                updated=(row.get("updated") or "").strip(),
            )
    return out


def write_annotations(manifest_path: str | Path, annotations: dict[str, Annotation]) -> Path:
    """Write all annotations atomically (temporary file, then ``os.replace``).

    Cells are neutralised like every CSV CueLab writes: a note typed as
    ``=HYPERLINK(...)`` must not run when the sidecar is opened in a spreadsheet.
    :func:`load_annotations` undoes it.
    """
    side = sidecar_path(manifest_path)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    for key in sorted(annotations):
        a = annotations[key]
        if not a.empty:
            cells = [a.path, a.annotator_label, a.note, a.updated]
            writer.writerow([neutralise(c) for c in cells])
    atomic_write_text(side, buf.getvalue(), fsync=True)
    return side


def save_annotation(
    manifest_path: str | Path, path: str, annotator_label: str, note: str
) -> Annotation:
    """Record one clip's label and note and rewrite the sidecar at once.

    The file is re-read first, so edits made by another program since the
    manifest was opened are kept. An empty label and note remove the row.
    """
    current = load_annotations(manifest_path)
    stamp = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    ann = Annotation(path=path, annotator_label=annotator_label.strip(), note=note, updated=stamp)
    if ann.empty:
        current.pop(path, None)
    else:
        current[path] = ann
    write_annotations(manifest_path, current)
    return ann


# --- annotations in run reports ---------------------------------------------------

ANNOTATIONS_CSV = "annotations.csv"
ANNOTATIONS_SUMMARY_CSV = "annotations_summary.csv"
#: Conditions whose answers are set beside the annotator's (seed-free ones only).
COMPARED_CONDITIONS = ("correct", "audio-only")
_SUMMARY_HEADER = ("compared_with", "model", "condition", "n", "agree", "agreement", "kappa")


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


def write_annotation_report(folder: str | Path, record: Mapping[str, Any]) -> list[Path]:
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
    manifest_path = (record.get("manifest") or {}).get("path") or record["config"]["manifest"]
    stale = [folder / ANNOTATIONS_CSV, folder / ANNOTATIONS_SUMMARY_CSV]
    notes = load_annotations(manifest_path) if sidecar_path(manifest_path).exists() else {}
    clips = _annotated_clips(manifest_path, notes) if notes else []
    answers = _seed_free_answers(folder) if clips else {}
    in_run = {u for u, _m, _c in answers}
    clips = [c for c in clips if c[0] in in_run]
    if not clips:
        for path in stale:
            path.unlink(missing_ok=True)
        return []
    return _write_tables(folder, record, clips, answers)


def _annotated_clips(
    manifest_path: str | Path, notes: Mapping[str, Annotation]
) -> list[tuple[str, str, str, Annotation]]:
    """(utt_id, path, label, annotation) of each annotated manifest row, in manifest order."""
    from cuelab.core.datasets.manifest import read_manifest

    manifest = read_manifest(manifest_path, check_files=False)
    return [
        (row.utt_id, row.rel_path, row.get("label"), notes[row.rel_path])
        for row in manifest.rows
        if row.rel_path in notes
    ]


def _seed_free_answers(folder: Path) -> dict[tuple[str, str, str], str]:
    """(utt_id, model, condition) -> answer for the compared conditions ("" = unparsed)."""
    from cuelab.core.runs import record as rec
    from cuelab.core.runs.csvio import read_complete_rows

    path = folder / rec.PREDICTIONS_CSV
    if not path.is_file():
        return {}
    header, rows, _ = read_complete_rows(path)
    if any(c not in header for c in rec.BASE_COLUMNS):
        return {}
    iu, im, ic, ip = (header.index(c) for c in ("utt_id", "model", "condition", "prediction"))
    return {(r[iu], r[im], r[ic]): r[ip] for r in rows if r[ic] in COMPARED_CONDITIONS}


def _write_tables(
    folder: Path,
    record: Mapping[str, Any],
    clips: Sequence[tuple[str, str, str, Annotation]],
    answers: Mapping[tuple[str, str, str], str],
) -> list[Path]:
    from cuelab.core.runs.csvio import write_csv
    from cuelab.core.runs.plots import model_slugs

    models = [str(m) for m in record["config"]["models"]]
    slugs = model_slugs(models)
    present = {(m, c) for _u, m, c in answers}
    pairs = [(m, c) for m in models for c in COMPARED_CONDITIONS if (m, c) in present]
    header = [
        "utt_id", "path", "label", "annotator_label", "note", "updated",
        *(f"pred_{slugs[m]}_{c}" for m, c in pairs),
    ]  # fmt: skip
    table = [
        [u, path, label, a.annotator_label, a.note, a.updated,
         *(answers.get((u, m, c), "") for m, c in pairs)]
        for u, path, label, a in clips
    ]  # fmt: skip
    labelled = [(u, label, a.annotator_label) for u, _p, label, a in clips if a.annotator_label]
    summary = [_summary_row("label", "", "", [(a, lab) for _u, lab, a in labelled if lab])]
    for m, c in pairs:
        got = [(a, answers[(u, m, c)]) for u, _lab, a in labelled if (u, m, c) in answers]
        summary.append(_summary_row("model", m, c, got))
    return [
        write_csv(folder / ANNOTATIONS_CSV, header, table),
        write_csv(folder / ANNOTATIONS_SUMMARY_CSV, _SUMMARY_HEADER, summary),
    ]


def _summary_row(
    compared_with: str, model: str, condition: str, pairs: Sequence[tuple[str, str]]
) -> list[object]:
    agree, po, kappa = agreement(pairs)
    return [compared_with, model, condition, len(pairs), agree, _num(po), _num(kappa)]


def _num(x: float) -> str:
    return format(x, ".6g") if math.isfinite(x) else ""
