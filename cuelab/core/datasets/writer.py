"""Writing manifest CSVs safely, and the report every importer returns.

Every importer ends the same way: rows of strings become a manifest whose
paths are relative to the manifest's own folder (so the folder can be moved
with its audio), written atomically (a crash never leaves half a manifest that
a later run would trust) and safe to open in a spreadsheet: a cell that a
spreadsheet would run as a formula gets a leading single quote (DESIGN.md,
"Data contracts").
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cuelab.core.errors import ManifestError
from cuelab.core.safeio import CONTROL_START, FORMULA_START, atomic_write_text, neutralise

# The columns every importer writes first, in this order (DESIGN.md).
BASE_COLUMNS = ("path", "label", "speaker", "gender", "split")

# Line breaks of any kind are replaced in cells so that every row stays on
# one line (readable in an editor, greppable, diffable).
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def manifest_path_cell(path: Path, manifest_dir: Path) -> str:
    """The ``path`` cell for ``path``: relative to ``manifest_dir``, ``/``-separated.

    A path that would need neutralising gets a ``./`` prefix instead of a
    quote, so it still resolves to the same file when read back. Falls back
    to the absolute path when no relative path exists (another drive).

    Raises:
        ManifestError: the path contains a line break (it could not be read back).
    """
    absolute = path.resolve()
    try:
        rel = Path(os.path.relpath(absolute, manifest_dir.resolve())).as_posix()
    except ValueError:  # different drive on Windows
        rel = absolute.as_posix()
    if _LINE_BREAKS.search(rel):
        raise ManifestError(f"{absolute}: a file name with a line break cannot go in a manifest")
    if rel.startswith(FORMULA_START + CONTROL_START + ("'",)):
        rel = "./" + rel
    return rel


def _clean(value: object) -> str:
    text = "" if value is None else str(value)
    return neutralise(_LINE_BREAKS.sub(" ", text))


def render_manifest(rows: Iterable[Mapping[str, object]], columns: Sequence[str]) -> str:
    """The CSV text of ``rows`` (cells cleaned and neutralised; ``path`` left as given)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([_clean(c) for c in columns])
    for row in rows:
        cells = []
        for col in columns:
            value = row.get(col, "")
            cells.append(str(value) if col == "path" else _clean(value))
        writer.writerow(cells)
    return buf.getvalue()


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` as UTF-8 to ``path`` via a temporary file, fsync and a rename.

    Raises:
        ManifestError: the folder cannot be created or written.
    """
    try:
        atomic_write_text(path, text, fsync=True)
    except OSError as exc:
        raise ManifestError(f"{path}: cannot write manifest ({exc.strerror or exc})") from exc


def write_manifest(
    out: str | Path,
    rows: Sequence[Mapping[str, object]],
    extra_columns: Sequence[str] = (),
) -> Path:
    """Write a manifest: :data:`BASE_COLUMNS` then ``extra_columns``, rows sorted by path.

    Each row's ``"path"`` must be the absolute (or cwd-relative) audio path;
    it is made relative to the manifest's folder here.

    Returns:
        The manifest path.

    Raises:
        ManifestError: no rows, or the file cannot be written.
    """
    out = Path(out)
    if not rows:
        raise ManifestError(f"{out}: nothing to write (no rows)")
    columns = list(BASE_COLUMNS) + [c for c in extra_columns if c not in BASE_COLUMNS]
    folder = out.resolve().parent
    prepared = [{**row, "path": manifest_path_cell(Path(str(row["path"])), folder)} for row in rows]
    prepared.sort(key=lambda r: str(r["path"]))
    write_text_atomic(out, render_manifest(prepared, columns))
    return out


@dataclass
class ImportReport:
    """What an importer did: rows written, what it dropped and why, and warnings."""

    dataset: str
    manifest: Path
    rows: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str, n: int = 1) -> None:
        """Count ``n`` items left out for ``reason``."""
        self.dropped[reason] = self.dropped.get(reason, 0) + n

    def count(self, rows: Iterable[Mapping[str, object]]) -> None:
        """Fill :attr:`rows`, :attr:`labels` and :attr:`splits` from the written rows."""
        self.rows = 0
        self.labels, self.splits = {}, {}
        for row in rows:
            self.rows += 1
            for key, tally in (("label", self.labels), ("split", self.splits)):
                value = str(row.get(key, "") or "")
                if value:
                    tally[value] = tally.get(value, 0) + 1
        self.labels = dict(sorted(self.labels.items()))
        self.splits = dict(sorted(self.splits.items()))

    def summary(self) -> str:
        """One line: rows, splits, drops by reason, number of warnings."""

        def tally(d: Mapping[str, int]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(d.items()))

        text = f"{self.dataset}: wrote {self.rows} rows to {self.manifest}"
        if self.splits:
            text += f" ({tally(self.splits)})"
        n_dropped = sum(self.dropped.values())
        text += f"; dropped {n_dropped}"
        if n_dropped:
            text += f" ({tally(self.dropped)})"
        if self.warnings:
            text += f"; {len(self.warnings)} warning{'s' if len(self.warnings) != 1 else ''}"
        return text

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "dataset": self.dataset,
            "manifest": str(self.manifest),
            "rows": self.rows,
            "labels": self.labels,
            "splits": self.splits,
            "dropped": dict(sorted(self.dropped.items())),
            "warnings": list(self.warnings),
        }


def finish_import(
    report: ImportReport,
    rows: list[dict[str, str]],
    extra_columns: Sequence[str],
    source: Path,
) -> ImportReport:
    """Write ``rows`` to ``report.manifest`` and fill in the counts.

    Raises:
        ManifestError: no row survived (the message names ``source`` and the drops).
    """
    if not rows:
        why = ", ".join(f"{k} {v}" for k, v in sorted(report.dropped.items()))
        raise ManifestError(
            f"{source}: no usable {report.dataset} clips found"
            + (f" (dropped: {why})" if why else "")
        )
    write_manifest(report.manifest, rows, extra_columns)
    report.count(rows)
    return report
