"""Annotators' labels and notes, one sidecar CSV per annotator next to a manifest.

Each annotator writes ``<manifest stem>.annotations.<annotator>.csv`` with the
columns ``path, label, note, start, end, updated``: ``path`` as written in the
manifest, ``start``/``end`` in seconds for a region (both empty for the whole
clip). One file per annotator is what lets a team label copies of a dataset
and merge them later (:mod:`cuelab.core.datasets.annotation_merge`): two
annotators never write the same file, so they can never overwrite each other.
The annotator's name is the file's, so it travels with every label and note.

The single sidecar of earlier versions, ``<manifest stem>.annotations.csv``
(``path, annotator_label, note, updated``), is still read, as the annotator
``default``, until ``default`` saves for the first time: that save writes
every legacy row into ``<stem>.annotations.default.csv``, which is read from
then on (so a row removed later stays removed).

Files are rewritten atomically on every edit, so a crash never leaves a
half-written file. No Qt here: reports and the command line read the same files.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cuelab.core.errors import ManifestError
from cuelab.core.safeio import atomic_write_text, neutralise, read_input_text, restore

COLUMNS = ("path", "label", "note", "start", "end", "updated")
LEGACY_COLUMNS = ("path", "annotator_label", "note", "updated")
DEFAULT_ANNOTATOR = "default"
# A name becomes part of a file name: letters, digits, "_", "-" and inner dots only.
_NAME = re.compile(r"^[^\W][\w.-]{0,63}$")

#: A unit of annotation: (clip path, start, end); start and end are None for the whole clip.
Unit = tuple[str, float | None, float | None]


@dataclass(frozen=True)
class Annotation:
    """One annotator's label and note on a clip or a region of it.

    Attributes:
        path: the clip's path as written in the manifest (relative to it).
        label: the annotator's label ("" when only a note was left).
        note: free text.
        start: region start in seconds, None for the whole clip.
        end: region end in seconds, None for the whole clip.
        updated: ISO 8601 time of the last edit (UTC).
        annotator: who wrote it (the sidecar's name).
    """

    path: str
    label: str = ""
    note: str = ""
    start: float | None = None
    end: float | None = None
    updated: str = ""
    annotator: str = DEFAULT_ANNOTATOR

    @property
    def annotator_label(self) -> str:
        """The label (the name the single-sidecar versions used)."""
        return self.label

    @property
    def empty(self) -> bool:
        """True when neither a label nor a note is set (the row is then removed)."""
        return not self.label.strip() and not self.note.strip()

    @property
    def unit(self) -> Unit:
        """What was annotated: the clip, or one region of it."""
        return (self.path, self.start, self.end)

    @property
    def is_region(self) -> bool:
        """True for a region, False for the whole clip."""
        return self.start is not None


def check_annotator(name: str) -> str:
    """Return ``name`` stripped, or raise when it cannot name a sidecar file.

    Raises:
        ManifestError: empty, too long, or holding characters other than
            letters, digits, ``_``, ``-`` and inner dots.
    """
    clean = name.strip()
    if not _NAME.match(clean) or clean.endswith("."):
        raise ManifestError(
            f"annotator name {name!r}: use letters, digits, '_', '-' or '.' (1-64 characters)"
        )
    return clean


def legacy_sidecar_path(manifest_path: str | Path) -> Path:
    """``<folder>/<manifest stem>.annotations.csv``: the single sidecar of earlier versions."""
    p = Path(manifest_path)
    return p.with_name(f"{p.stem}.annotations.csv")


def sidecar_path(manifest_path: str | Path, annotator: str | None = None) -> Path:
    """``<folder>/<manifest stem>.annotations.<annotator>.csv``.

    Without ``annotator``, the legacy single sidecar (kept for old callers).
    """
    if annotator is None:
        return legacy_sidecar_path(manifest_path)
    p = Path(manifest_path)
    return p.with_name(f"{p.stem}.annotations.{check_annotator(annotator)}.csv")


def annotator_of(sidecar: str | Path) -> str:
    """The annotator a sidecar file belongs to, from its name (legacy file: ``default``)."""
    name = Path(sidecar).name
    m = re.match(r"^.*?\.annotations\.(.+)\.csv$", name)
    return m.group(1) if m else DEFAULT_ANNOTATOR


def annotators(manifest_path: str | Path) -> list[str]:
    """Every annotator with a sidecar beside the manifest, sorted (legacy file: ``default``)."""
    p = Path(manifest_path)
    found = set()
    prefix = f"{p.stem}.annotations."
    for side in p.parent.glob(f"{glob_escape(p.stem)}.annotations.*.csv"):
        name = side.name[len(prefix) : -len(".csv")]
        if _NAME.match(name):
            found.add(name)
    if legacy_sidecar_path(p).exists():
        found.add(DEFAULT_ANNOTATOR)
    return sorted(found)


def glob_escape(text: str) -> str:
    """``text`` with glob's special characters taken literally."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def parse_time(text: str, where: str) -> float | None:
    """A ``start``/``end`` cell: seconds, or None when empty.

    Raises:
        ManifestError: not a finite, non-negative number.
    """
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ManifestError(f"{where}: {text!r} is not a time in seconds") from None
    if not math.isfinite(value) or value < 0:
        raise ManifestError(f"{where}: {text!r} is not a time in seconds")
    return value


def format_time(value: float | None) -> str:
    """Seconds as written in a sidecar (microsecond precision, no trailing zeros)."""
    if value is None:
        return ""
    return repr(round(float(value), 6))


def check_region(start: float | None, end: float | None, where: str) -> None:
    """Both times or neither, and ``start < end``.

    Raises:
        ManifestError: naming ``where``.
    """
    if (start is None) != (end is None):
        raise ManifestError(f"{where}: a region needs both start and end")
    if start is not None and end is not None and not start < end:
        raise ManifestError(f"{where}: start {start} is not before end {end}")


def read_sidecar(sidecar: str | Path, annotator: str | None = None) -> list[Annotation]:
    """Read one sidecar file (new or legacy columns); rows without a path are ignored.

    Unknown columns are ignored too, so a file touched by a spreadsheet still
    loads. ``annotator`` defaults to the one the file name gives.

    Raises:
        ManifestError: unreadable file, or a bad start/end (naming the line).
    """
    side = Path(sidecar)
    who = annotator or annotator_of(side)
    text = read_input_text(side, "annotation sidecar", ManifestError)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise ManifestError(f"{side}: line {reader.line_num}: {exc}") from None
    out: list[Annotation] = []
    for line, row in enumerate(rows, start=2):
        row = {k: restore(v) if isinstance(v, str) else v for k, v in row.items() if k}
        path = (row.get("path") or "").strip()
        if not path:
            continue
        where = f"{side.name} line {line}"
        start = parse_time(row.get("start") or "", f"{where}, column 'start'")
        end = parse_time(row.get("end") or "", f"{where}, column 'end'")
        check_region(start, end, where)
        label = row.get("label")
        if label is None:
            label = row.get("annotator_label") or ""
        out.append(
            Annotation(
                path=path,
                label=label.strip(),
                note=row.get("note") or "",
                start=start,
                end=end,
                updated=(row.get("updated") or "").strip(),
                annotator=who,
            )
        )
    return out


def load_annotator(manifest_path: str | Path, annotator: str) -> list[Annotation]:
    """One annotator's annotations (clips and regions); none yet is an empty list."""
    side = sidecar_path(manifest_path, annotator)
    if side.exists():
        return read_sidecar(side, annotator)
    legacy = legacy_sidecar_path(manifest_path)
    if annotator == DEFAULT_ANNOTATOR and legacy.exists():
        return read_sidecar(legacy, DEFAULT_ANNOTATOR)
    return []


def load_all(manifest_path: str | Path) -> dict[str, list[Annotation]]:
    """Every annotator's annotations: annotator -> list, annotators sorted."""
    return {who: load_annotator(manifest_path, who) for who in annotators(manifest_path)}


def load_annotations(
    manifest_path: str | Path, annotator: str = DEFAULT_ANNOTATOR
) -> dict[str, Annotation]:
    """One annotator's whole-clip annotations, by clip path (regions left out)."""
    return {a.path: a for a in load_annotator(manifest_path, annotator) if not a.is_region}


def write_sidecar(
    manifest_path: str | Path, annotator: str, annotations: Iterable[Annotation]
) -> Path:
    """Write one annotator's sidecar atomically (temporary file, then ``os.replace``).

    Rows are sorted by clip and time; empty ones are dropped. Cells are
    neutralised like every CSV CueLab writes: a note typed as
    ``=HYPERLINK(...)`` must not run when the sidecar is opened in a
    spreadsheet. :func:`read_sidecar` undoes it.
    """
    side = sidecar_path(manifest_path, annotator)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    for a in sorted(annotations, key=unit_sort_key):
        if a.empty:
            continue
        cells = [a.path, a.label, a.note, format_time(a.start), format_time(a.end), a.updated]
        writer.writerow([neutralise(c) for c in cells])
    atomic_write_text(side, buf.getvalue(), fsync=True)
    return side


def unit_sort_key(a: Annotation | Unit) -> tuple[str, float, float]:
    """Sort by clip, whole clip first, then regions by time."""
    path, start, end = a.unit if isinstance(a, Annotation) else a
    return (path, -1.0 if start is None else start, -1.0 if end is None else end)


def now_stamp() -> str:
    """The current UTC time as the sidecars write it."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def save_annotation(
    manifest_path: str | Path,
    path: str,
    label: str,
    note: str,
    *,
    annotator: str = DEFAULT_ANNOTATOR,
    start: float | None = None,
    end: float | None = None,
) -> Annotation:
    """Record one label and note (a clip, or a region of it) and rewrite the sidecar at once.

    The file is re-read first, so edits made by another program since the
    manifest was opened are kept. An empty label and note remove the row.

    Raises:
        ManifestError: a bad annotator name or region.
    """
    who = check_annotator(annotator)
    check_region(start, end, f"annotation of {path}")
    current = {a.unit: a for a in load_annotator(manifest_path, who)}
    ann = Annotation(
        path=path,
        label=label.strip(),
        note=note,
        start=start,
        end=end,
        updated=now_stamp(),
        annotator=who,
    )
    if ann.empty:
        current.pop(ann.unit, None)
    else:
        current[ann.unit] = ann
    write_sidecar(manifest_path, who, current.values())
    return ann
