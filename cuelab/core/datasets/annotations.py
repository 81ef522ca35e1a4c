"""Annotator labels and notes, kept in a sidecar CSV next to a manifest.

The sidecar ``<manifest stem>.annotations.csv`` has one row per annotated clip
(``path, annotator_label, note, updated``), ``path`` as written in the
manifest. It is rewritten atomically on every edit, so a crash never leaves a
half-written file and the window can save after each keystroke pause. No Qt
here: reports read the same file (:mod:`cuelab.core.reports.agreement` sets the
annotator's labels beside the reference and the models' answers).
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
from dataclasses import dataclass
from pathlib import Path

from cuelab.core.errors import ManifestError
from cuelab.core.safeio import atomic_write_text, neutralise, read_input_text, restore

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
    text = read_input_text(side, "annotation sidecar", ManifestError)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise ManifestError(f"{side}: line {reader.line_num}: {exc}") from None
    for row in rows:
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
