"""Merge annotators' sidecars: every label kept, every conflict listed.

A team labels copies of a dataset; each annotator's sidecar
(``<stem>.annotations.<annotator>.csv``) comes back and is merged into the
folder of the manifest. Two kinds of conflict can show up, and neither is
resolved silently:

- ``labels``: annotators gave the same clip (or region) different labels.
  That is disagreement, the very thing agreement measures: every label stays
  in its annotator's sidecar.
- ``versions``: two copies of one annotator's sidecar hold different labels or
  notes for the same unit. The sidecar beside the manifest keeps the newest
  (by ``updated``); the merged table keeps every version, marked.

The merged table ``<stem>.annotations-merged.csv`` (a name that is no
annotator's sidecar) holds one row per unit, annotator and distinct version,
with its source file and a ``conflict`` column.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cuelab.core.datasets.annotations import (
    Annotation,
    Unit,
    annotator_of,
    annotators,
    check_annotator,
    format_time,
    load_annotator,
    read_sidecar,
    sidecar_path,
    unit_sort_key,
    write_sidecar,
)
from cuelab.core.errors import ManifestError
from cuelab.core.safeio import atomic_write_text, neutralise

MERGED_COLUMNS = (
    "path", "start", "end", "annotator", "label", "note", "updated", "source", "conflict",
)  # fmt: skip


@dataclass(frozen=True)
class Conflict:
    """A unit on which labels (or one annotator's copies) differ.

    Attributes:
        unit: (path, start, end) of the clip or region.
        kind: ``"labels"`` (annotators disagree) or ``"versions"`` (copies of
            one annotator's sidecar differ).
        entries: every annotation involved.
    """

    unit: Unit
    kind: str
    entries: tuple[Annotation, ...]

    def describe(self) -> str:
        """One line: ``path [start-end] (kind): alice=angry, bob=sad``."""
        path, start, end = self.unit
        where = path if start is None else f"{path} [{format_time(start)}-{format_time(end)}]"
        said = ", ".join(f"{a.annotator}={a.label or '(note only)'}" for a in self.entries)
        return f"{where} ({self.kind}): {said}"


@dataclass
class MergeResult:
    """What a merge did.

    Attributes:
        entries: every (source, annotation) read, duplicates of one version once.
        conflicts: the units where labels or versions differ.
        written: the annotators' sidecars written beside the manifest.
        table: the merged table.
    """

    entries: list[tuple[str, Annotation]] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    table: Path | None = None


def merged_table_path(manifest_path: str | Path) -> Path:
    """``<folder>/<manifest stem>.annotations-merged.csv``."""
    p = Path(manifest_path)
    return p.with_name(f"{p.stem}.annotations-merged.csv")


def merge_annotations(
    manifest_path: str | Path,
    sources: Sequence[str | Path] = (),
    *,
    out: str | Path | None = None,
) -> MergeResult:
    """Bring ``sources`` (sidecars from copies) beside the manifest and merge everything.

    Each source's annotator comes from its file name (a legacy
    ``<stem>.annotations.csv`` is ``default``). Sidecars already beside the
    manifest take part too, so calling it with no sources lists the
    disagreements of the annotators already there.

    Raises:
        ManifestError: an unreadable source or a file name without an annotator.
    """
    manifest_path = Path(manifest_path)
    result = MergeResult()
    seen_files: set[Path] = set()
    by_key: dict[tuple[str, Unit], list[tuple[str, Annotation]]] = defaultdict(list)

    def take(source: str, anns: list[Annotation]) -> None:
        for a in anns:
            versions = by_key[(a.annotator, a.unit)]
            if any(_same(a, b) for _s, b in versions):
                continue
            versions.append((source, a))
            result.entries.append((source, a))

    for who in annotators(manifest_path):
        side = sidecar_path(manifest_path, who)
        seen_files.add(side.resolve())
        take(side.name if side.exists() else f"{manifest_path.stem}.annotations.csv",
             load_annotator(manifest_path, who))  # fmt: skip
    touched: set[str] = set()
    for src in sources:
        path = Path(src)
        if path.resolve() in seen_files:
            continue
        seen_files.add(path.resolve())
        if not path.is_file():
            raise ManifestError(f"{path}: sidecar not found")
        who = check_annotator(annotator_of(path))
        touched.add(who)
        take(str(path), read_sidecar(path, who))

    for who in sorted(touched):
        newest: dict[Unit, Annotation] = {}
        for (annotator, unit), versions in by_key.items():
            if annotator == who:
                newest[unit] = max((a for _s, a in versions), key=lambda a: a.updated)
        result.written.append(write_sidecar(manifest_path, who, newest.values()))

    result.conflicts = _conflicts(by_key)
    result.table = _write_table(out or merged_table_path(manifest_path), result)
    return result


def _same(a: Annotation, b: Annotation) -> bool:
    return (a.label, a.note) == (b.label, b.note)


def _conflicts(by_key: dict[tuple[str, Unit], list[tuple[str, Annotation]]]) -> list[Conflict]:
    out: list[Conflict] = []
    by_unit: dict[Unit, list[Annotation]] = defaultdict(list)
    for (_who, unit), versions in by_key.items():
        if len(versions) > 1:
            out.append(Conflict(unit, "versions", tuple(a for _s, a in versions)))
        newest = max((a for _s, a in versions), key=lambda a: a.updated)
        by_unit[unit].append(newest)
    for unit, anns in by_unit.items():
        labels = {a.label.casefold() for a in anns if a.label}
        if len(labels) > 1:
            out.append(Conflict(unit, "labels", tuple(sorted(anns, key=lambda a: a.annotator))))
    out.sort(key=lambda c: (unit_sort_key(c.unit), c.kind))
    return out


def _write_table(path: str | Path, result: MergeResult) -> Path:
    marks: dict[tuple[str, Unit], set[str]] = defaultdict(set)
    for c in result.conflicts:
        for a in c.entries:
            marks[(a.annotator, c.unit)].add(c.kind)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(MERGED_COLUMNS)
    rows = sorted(result.entries, key=lambda e: (unit_sort_key(e[1]), e[1].annotator, e[0]))
    for source, a in rows:
        cells = [
            a.path, format_time(a.start), format_time(a.end), a.annotator, a.label, a.note,
            a.updated, source, ";".join(sorted(marks.get((a.annotator, a.unit), set()))),
        ]  # fmt: skip
        writer.writerow([neutralise(c) for c in cells])
    return atomic_write_text(path, buf.getvalue(), fsync=True)
