"""Export a manifest's annotations to TextGrid / EAF / Label Studio, and import them back.

This is the manifest-level glue over the codecs in
:mod:`cuelab.core.datasets.annotation_formats` and
:mod:`cuelab.core.datasets.labelstudio`: it finds the clips' durations (the
audio layer), names one TextGrid or EAF file per clip after the clip
(``OUT/<clip path without suffix>.TextGrid``, subfolders kept), and on import
matches files back to clips by that name and writes each annotator's sidecar.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cuelab.core.audio.io import audio_duration
from cuelab.core.datasets.annotation_formats import (
    read_eaf,
    read_textgrid,
    write_eaf,
    write_textgrid,
)
from cuelab.core.datasets.annotations import (
    Annotation,
    check_annotator,
    load_all,
    load_annotator,
    now_stamp,
    write_sidecar,
)
from cuelab.core.datasets.labelstudio import export_tasks, import_tasks, label_config
from cuelab.core.datasets.manifest import Manifest, ManifestRow, read_manifest
from cuelab.core.errors import CueLabError, ManifestError
from cuelab.core.safeio import atomic_write_text, read_input_text

SUFFIX = {"textgrid": ".TextGrid", "eaf": ".eaf"}


@dataclass
class ImportResult:
    """What an import did: annotations read, sidecars written, notes on what was skipped."""

    annotations: list[Annotation] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    replaced: int = 0
    skipped: list[str] = field(default_factory=list)


def clip_duration(row: ManifestRow, annotations: list[Annotation]) -> float:
    """The clip's duration; without readable audio, the last region's end (at least 1 s)."""
    try:
        return audio_duration(row.path)
    except CueLabError:
        ends = [a.end for a in annotations if a.end is not None]
        return max([1.0, *ends])


def export_annotations(
    manifest_path: str | Path,
    fmt: str,
    out: str | Path,
    *,
    predictions: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Path]:
    """Write every annotator's annotations in ``fmt`` (textgrid, eaf or labelstudio).

    TextGrid and EAF: one file per annotated clip in the folder ``out``.
    Label Studio: the tasks in the file ``out`` and its labeling configuration
    beside it (``<out stem>.label_config.xml``).

    Raises:
        ManifestError: an unknown format or an unreadable manifest or sidecar.
    """
    manifest = read_manifest(manifest_path, check_files=False)
    by_path: dict[str, list[Annotation]] = defaultdict(list)
    for anns in load_all(manifest_path).values():
        for a in anns:
            by_path[a.path].append(a)
    out = Path(out)
    if fmt == "labelstudio":
        clips = [(r.rel_path, str(r.path), r.get("label")) for r in manifest.rows]
        tasks = export_tasks(clips, by_path, predictions)
        labels = sorted({a.label for anns in by_path.values() for a in anns if a.label}
                        | {r.get("label") for r in manifest.rows if r.get("label")})  # fmt: skip
        text = json.dumps(tasks, ensure_ascii=False, indent=1)
        written = [atomic_write_text(out, text + "\n")]
        config = out.with_name(f"{out.stem}.label_config.xml")
        written.append(atomic_write_text(config, label_config(labels)))
        return written
    if fmt not in SUFFIX:
        raise ManifestError(f"format {fmt!r}: use textgrid, eaf or labelstudio")
    written = []
    for row in manifest.rows:
        mine = by_path.get(row.rel_path)
        if not mine:
            continue
        duration = clip_duration(row, mine)
        target = out / Path(row.rel_path).with_suffix(SUFFIX[fmt])
        if fmt == "textgrid":
            written.append(write_textgrid(target, mine, duration))
        else:
            written.append(write_eaf(target, mine, duration, media=row.path))
    return written


def _match(manifest: Manifest, name: Path) -> ManifestRow | None:
    """The clip a file named after it belongs to (by relative name, else by unique stem)."""
    stem = str(name.with_suffix(""))
    for row in manifest.rows:
        if str(Path(row.rel_path).with_suffix("")) == stem:
            return row
    hits = [r for r in manifest.rows if Path(r.rel_path).stem == name.stem]
    return hits[0] if len(hits) == 1 else None


def import_annotations(source: str | Path, manifest_path: str | Path) -> ImportResult:
    """Read a TextGrid, EAF, Label Studio JSON, or a folder of TextGrid/EAF files,
    into the annotators' sidecars beside the manifest.

    An imported label or note replaces the same annotator's annotation of the
    same clip or region (counted in ``replaced`` when it differed); everything
    else in the sidecars stays.

    Raises:
        ManifestError: an unreadable file, or nothing that belongs to the manifest.
    """
    source = Path(source)
    manifest = read_manifest(manifest_path, check_files=False)
    result = ImportResult()
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() in (".textgrid", ".eaf"))
        pairs = [(p, p.relative_to(source)) for p in files]
    elif source.is_file():
        pairs = [(source, Path(source.name))]
    else:
        raise ManifestError(f"{source}: no such file or folder")
    for path, name in pairs:
        suffix = path.suffix.lower()
        if suffix == ".json":
            known: dict[str, str] = {}
            for r in manifest.rows:
                known.update({r.rel_path: r.rel_path, str(r.path): r.rel_path,
                              Path(r.rel_path).name: r.rel_path})  # fmt: skip
            data = json.loads(read_input_text(path, "Label Studio JSON", ManifestError))
            anns, notes = import_tasks(data, known)
            result.annotations.extend(anns)
            result.skipped.extend(notes)
            continue
        row = _match(manifest, name)
        if row is None:
            result.skipped.append(f"{name}: no clip of the manifest has this name")
            continue
        if suffix == ".textgrid":
            got = read_textgrid(path, row.rel_path)
        elif suffix == ".eaf":
            try:
                duration: float | None = audio_duration(row.path)
            except CueLabError:
                duration = None
            got = read_eaf(path, row.rel_path, duration)
        else:
            raise ManifestError(f"{path}: not a .TextGrid, .eaf or Label Studio .json file")
        result.annotations.extend(got.annotations)
        result.skipped.extend(got.skipped)
    if not result.annotations and not result.skipped:
        raise ManifestError(f"{source}: no annotations found")
    _write(manifest_path, result)
    return result


def _write(manifest_path: str | Path, result: ImportResult) -> None:
    stamp = now_stamp()
    by_who: dict[str, list[Annotation]] = defaultdict(list)
    for a in result.annotations:
        by_who[check_annotator(a.annotator)].append(a)
    for who, anns in sorted(by_who.items()):
        current = {a.unit: a for a in load_annotator(manifest_path, who)}
        for a in anns:
            old = current.get(a.unit)
            if old is not None and (old.label, old.note) == (a.label, a.note):
                continue
            if old is not None:
                result.replaced += 1
            current[a.unit] = Annotation(a.path, a.label, a.note, a.start, a.end,
                                         a.updated or stamp, who)  # fmt: skip
        result.written.append(write_sidecar(manifest_path, who, current.values()))
