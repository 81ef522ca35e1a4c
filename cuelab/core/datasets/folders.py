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

import re
from pathlib import Path

from cuelab.core.datasets.writer import ImportReport, finish_import, write_manifest
from cuelab.core.errors import ManifestError

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


def manifest_for_folder(root: str | Path) -> Path:
    """A manifest for a folder the user opened (dropped on the window): found or written.

    A folder that holds one manifest (a CSV with a ``path`` column) opens it.
    Otherwise every audio file below ``root`` becomes a row, labelled by its
    class folder when it sits in one (files directly in ``root`` get no label),
    and :data:`FOLDER_MANIFEST` is written in ``root``, so the annotation
    sidecar lies beside the clips. Running it again rewrites that manifest
    from the files there now; annotations are kept (they are keyed by path).

    Raises:
        ManifestError: no audio in the folder, or the folder cannot be written.
    """
    import csv

    root = Path(root)
    if not root.is_dir():
        raise ManifestError(f"{root}: folder not found")
    manifests = []
    for candidate in sorted(root.glob("*.csv")):
        if candidate.name == FOLDER_MANIFEST or ".annotations" in candidate.name:
            continue
        try:
            with open(candidate, encoding="utf-8-sig", newline="") as fh:
                header = next(csv.reader(fh), [])
        except (OSError, UnicodeDecodeError, csv.Error):
            continue
        if "path" in [h.strip() for h in header]:
            manifests.append(candidate)
    if len(manifests) == 1:
        return manifests[0]
    files = _audio_files(root)
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
        return write_manifest(out, rows)
    except OSError as exc:
        raise ManifestError(f"{out}: cannot write the folder's manifest ({exc.strerror})") from exc
