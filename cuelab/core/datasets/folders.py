"""A folder per class to a CueLab manifest: ``ROOT/<class>/**/*.{wav,flac,ogg,mp3}``.

The simplest layout people build by hand: the label is the name of the
top-level folder a file sits under (at any depth below it). Files directly in
ROOT have no class and are counted as dropped; hidden files and folders
(``.name``) are skipped. The speaker is empty unless a regular expression
with a named group ``speaker`` is given; it is searched in the path relative
to ROOT (``/``-separated), so it can pick the speaker from a sub-folder or
from the file name. An optional named group ``gender`` (m/f/male/female)
fills the gender column the same way.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from cuelab.core.datasets.writer import ImportReport, finish_import, write_manifest
from cuelab.core.errors import ManifestError
from cuelab.core.safeio import read_input

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".mp3"})
_GENDERS = {"m": "m", "male": "m", "f": "f", "female": "f"}


def _compile(speaker_regex: str | None) -> re.Pattern[str] | None:
    if speaker_regex is None:
        return None
    try:
        pattern = re.compile(speaker_regex)
    except re.error as exc:
        raise ManifestError(f"speaker regex {speaker_regex!r}: {exc}") from None
    if "speaker" not in pattern.groupindex:
        raise ManifestError(
            f"speaker regex {speaker_regex!r}: needs a named group (?P<speaker>...)"
        )
    return pattern


def _audio_files(root: Path) -> list[Path]:
    files = []
    for p in root.rglob("*"):
        rel = p.relative_to(root).parts
        if any(part.startswith(".") for part in rel):
            continue
        if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file():
            files.append(p)
    return sorted(files)


def import_folders(
    root: str | Path, out_manifest: str | Path, *, speaker_regex: str | None = None
) -> ImportReport:
    """Write a manifest with one row per audio file, labelled by its class folder.

    Columns: ``path, label, speaker, gender, split`` (split empty).

    Raises:
        ManifestError: ``root`` missing, a bad ``speaker_regex``, or no audio
            file inside a class folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise ManifestError(f"{root}: folder not found")
    pattern = _compile(speaker_regex)
    report = ImportReport(dataset="folders", manifest=Path(out_manifest))
    rows = []
    unmatched: list[str] = []
    for path in _audio_files(root):
        rel = path.relative_to(root)
        if len(rel.parts) < 2:
            report.drop("not in a class folder")
            continue
        row = {"path": str(path), "label": rel.parts[0], "speaker": "", "gender": "", "split": ""}
        if pattern is not None:
            m = pattern.search(rel.as_posix())
            if m is None or not m.group("speaker"):
                unmatched.append(rel.as_posix())
            else:
                row["speaker"] = m.group("speaker")
                if "gender" in pattern.groupindex:
                    row["gender"] = _GENDERS.get((m.group("gender") or "").lower(), "")
        rows.append(row)
    if unmatched:
        report.warnings.append(
            f"speaker regex matched no speaker in {len(unmatched)} path(s) (first: {unmatched[0]})"
        )
    if not rows and not report.dropped:
        raise ManifestError(
            f"{root}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) in class folders"
        )
    return finish_import(report, rows, (), root)


#: The manifest CueLab writes for a dropped folder of audio (beside the clips).
FOLDER_MANIFEST = "cuelab-manifest.csv"


@dataclass
class FolderManifest:
    """The manifest a dropped folder opens with, and the files left out (one line each)."""

    path: Path
    skipped: list[str] = field(default_factory=list)


def manifest_for_folder(root: str | Path) -> Path:
    """A manifest for a folder the user opened (dropped on the window): found or written.

    See :func:`open_folder`; the files it leaves out are logged as warnings.
    """
    opened = open_folder(root)
    for note in opened.skipped:
        log.warning("%s: %s", root, note)
    return opened.path


def open_folder(root: str | Path) -> FolderManifest:
    """A manifest for a folder the user opened (dropped on the window): found or written.

    A folder that holds one manifest (a CSV with a ``path`` column) opens it.
    Otherwise every audio file below ``root`` becomes a row, labelled by its
    class folder when it sits in one (files directly in ``root`` get no label),
    and :data:`FOLDER_MANIFEST` is written in ``root``, so the annotation
    sidecar lies beside the clips. Running it again rewrites that manifest
    from the files there now; annotations are kept (they are keyed by path).

    A CSV is read through the same safe reader as ``--manifest``, and only its
    first 64 KiB: a FIFO or a link to a device (``notes.csv`` -> ``/dev/zero``)
    never blocks nor fills memory. Such a file, and a name with a line break or
    bytes that are not UTF-8 (no manifest can hold it), is skipped and reported;
    the rest opens.

    Raises:
        ManifestError: no audio in the folder, or the folder cannot be written.
    """
    import csv
    import io

    root = Path(root)
    if not root.is_dir():
        raise ManifestError(f"{root}: folder not found")
    skipped: list[str] = []
    manifests = []
    for candidate in sorted(root.glob("*.csv")):
        if candidate.name == FOLDER_MANIFEST or ".annotations" in candidate.name:
            continue
        odd = _odd_name(candidate.name)
        if odd:
            skipped.append(f"{candidate.name!r}: {odd} is left out")
            continue
        try:
            data = read_input(candidate, "CSV file", ManifestError, head=_HEADER_BYTES)
        except ManifestError as exc:
            skipped.append(f"{candidate.name} is left out: {exc}")
            continue
        first = data.decode("utf-8-sig", errors="replace").splitlines()[:1]
        try:
            header = next(csv.reader(io.StringIO(first[0] if first else "")), [])
        except csv.Error:
            continue
        if "path" in [h.strip() for h in header]:
            manifests.append(candidate)
    if len(manifests) == 1:
        return FolderManifest(manifests[0], skipped)
    files = []
    for path in _audio_files(root):
        rel = path.relative_to(root)
        odd = _odd_name(str(rel))
        if odd:
            skipped.append(f"{str(rel)!r}: {odd} is left out")
        else:
            files.append(path)
    if not files:
        raise ManifestError(
            f"{root}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) and no manifest"
        )
    rows = []
    for path in files:
        rel = path.relative_to(root)
        label = rel.parts[0] if len(rel.parts) > 1 else ""
        rows.append({"path": str(path), "label": label, "speaker": "", "gender": "", "split": ""})
    out = root / FOLDER_MANIFEST
    try:
        return FolderManifest(write_manifest(out, rows), skipped)
    except OSError as exc:
        raise ManifestError(f"{out}: cannot write the folder's manifest ({exc.strerror})") from exc


#: How much of a CSV beside the clips is read to see whether it is a manifest.
_HEADER_BYTES = 1 << 16


def _odd_name(name: str) -> str:
    """Why ``name`` cannot go in a manifest ("" when it can)."""
    if "\n" in name or "\r" in name:
        return "a file name with a line break"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "a file name that is not UTF-8"
    return ""
