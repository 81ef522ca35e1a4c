"""FAU Aibo Emotion Corpus (5-class chunk labels) to a CueLab manifest.

Supported layout: the one distributed for, and used since, the INTERSPEECH
2009 Emotion Challenge (folder often called ``IS2009EmotionChallenge``)::

    ROOT/wav/Ohm_01_001_00.wav ...                     one wav per chunk
    ROOT/labels/IS2009EmotionChallenge/chunk_labels_5cl_corpus.txt

with label lines ``Ohm_01_001_00 N 1.0`` (chunk id, class A/E/N/P/R, the
share of annotators behind it), separated by spaces. Wavs are looked up by
chunk id anywhere under ``wav/`` so a copy sorted into per-school
sub-folders also works. The label file is also accepted as
``ROOT/labels/chunk_labels_5cl_corpus.txt`` or ``ROOT/chunk_labels_5cl_corpus.txt``
(copies that flatten the tree).

How this was learned: the corpus is licensed, so there is no public copy to
inspect. The layout above is the one that public research code reading the
release assumes (label path ``labels/IS2009EmotionChallenge/chunk_labels_5cl_corpus.txt``
next to ``wav/``, space-separated ``id class confidence`` lines, chunk ids
``<school>_<child>_<turn>_<chunk>``); the 5 classes (Anger, Emphatic,
Neutral, Positive, Rest) and the school split (Ohm = train, Mont = test)
are those of the challenge paper (Schuller, Steidl, Batliner, Interspeech 2009).

Speaker = school + child number (``Ohm_01``). Gender: the release's speaker
metadata file could not be verified, so gender is read only from a file the
caller names (``speaker_info``) or, when asked (``genders=True``, ``--genders``),
``ROOT/misc/speaker_info.txt``. Gender-specific norm edges are thus off on Aibo
unless asked for, as the emotion paper ran it.

Development split: the challenge defines train (Ohm) and test (Mont) only; a
dev split is a list of chunk or speaker ids (``dev_list``, ``--dev-list``)
whose rows get ``split = dev``.
Either is read leniently: any line holding a speaker id (``Ohm_01``) and a
gender word (``m``/``f``/``male``/``female``/``boy``/``girl``, or the German
``w``/``weiblich``/``maennlich``) gives that speaker's gender; other lines are
ignored. Without such a file the gender column is empty.
"""

from __future__ import annotations

import re
from pathlib import Path

from cuelab.core.datasets.writer import ImportReport, finish_import
from cuelab.core.errors import ManifestError

LABEL_MAP = {"A": "angry", "E": "emphatic", "N": "neutral", "P": "positive", "R": "rest"}
SCHOOL_SPLIT = {"Ohm": "train", "Mont": "test"}
LABEL_FILE = "chunk_labels_5cl_corpus.txt"
LABEL_CANDIDATES = (
    Path("labels") / "IS2009EmotionChallenge" / LABEL_FILE,
    Path("labels") / LABEL_FILE,
    Path(LABEL_FILE),
)
DEFAULT_SPEAKER_INFO = Path("misc") / "speaker_info.txt"
EXTRA_COLUMNS = ("school", "confidence", "raw_label")

_CHUNK = re.compile(r"^([A-Za-z]+)_(\d+)_")
_SPEAKER = re.compile(r"^(Ohm|Mont)_(\d+)$", re.IGNORECASE)
_GENDER_WORDS = {
    "m": "m",
    "male": "m",
    "boy": "m",
    "maennlich": "m",
    "männlich": "m",
    "f": "f",
    "female": "f",
    "girl": "f",
    "w": "f",
    "weiblich": "f",
}
_NUMBER = re.compile(r"^[-+]?\d+(\.\d*)?([eE][-+]?\d+)?$")


def _label_file(root: Path) -> Path:
    if not root.is_dir():
        raise ManifestError(f"{root}: folder not found")
    for rel in LABEL_CANDIDATES:
        if (root / rel).is_file():
            return root / rel
    raise ManifestError(
        f"{root / LABEL_CANDIDATES[0]} not found: is {root} the FAU Aibo "
        "(IS2009EmotionChallenge) folder with labels/ and wav/?"
    )


def parse_labels(path: Path) -> list[tuple[str, str, str]]:
    """``(chunk_id, class letter, confidence)`` per line of a chunk label file.

    Raises:
        ManifestError: a line without an id and an A/E/N/P/R class, or with a
            non-numeric confidence (names the file and line number).
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read ({exc.strerror})") from exc
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        ok = len(parts) in (2, 3) and parts[1] in LABEL_MAP
        if ok and len(parts) == 3:
            ok = bool(_NUMBER.match(parts[2]))
        if not ok:
            raise ManifestError(
                f"{path} line {number}: expected 'CHUNK_ID A|E|N|P|R [CONFIDENCE]',"
                f" got {line.strip()[:80]!r}"
            )
        entries.append((parts[0], parts[1], parts[2] if len(parts) == 3 else ""))
    return entries


def read_speaker_info(path: Path) -> dict[str, str]:
    """Speaker id (``Ohm_01``) -> ``m``/``f`` from a loosely formatted text file."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read speaker info ({exc.strerror})") from exc
    genders: dict[str, str] = {}
    for line in text.splitlines():
        tokens = [t for t in re.split(r"[\s,;|]+", line.strip()) if t]
        speakers = [t for t in tokens if _SPEAKER.match(t)]
        words = [_GENDER_WORDS[t.lower()] for t in tokens if t.lower() in _GENDER_WORDS]
        if len(speakers) == 1 and len(set(words)) == 1:
            m = _SPEAKER.match(speakers[0])
            assert m is not None
            school = "Ohm" if m.group(1).lower() == "ohm" else "Mont"
            genders[f"{school}_{m.group(2)}"] = words[0]
    return genders


def _wav_index(root: Path, report: ImportReport) -> dict[str, Path]:
    wav_dir = root / "wav"
    if not wav_dir.is_dir():
        raise ManifestError(f"{wav_dir} not found: is {root} the FAU Aibo folder?")
    index: dict[str, Path] = {}
    duplicates = 0
    for p in sorted(wav_dir.rglob("*")):
        if p.suffix.lower() != ".wav" or p.name.startswith(".") or not p.is_file():
            continue
        if p.stem in index:
            duplicates += 1
            continue
        index[p.stem] = p
    if duplicates:
        report.warnings.append(
            f"{duplicates} wav file(s) under {wav_dir} repeat a chunk id; the first was used"
        )
    return index


def _genders(
    root: Path, speaker_info: str | Path | None, report: ImportReport, genders: bool = True
) -> dict[str, str]:
    path = Path(speaker_info) if speaker_info is not None else root / DEFAULT_SPEAKER_INFO
    if speaker_info is None and not path.is_file():
        return {}
    if speaker_info is None and not genders:
        report.warnings.append(
            f"{path} found but not used: gender left empty, so the norms keep one set of "
            "PITCH/FORMANTS edges for every child (pass --genders to use it)"
        )
        return {}
    if not path.is_file():
        raise ManifestError(f"{path}: speaker info file not found")
    found = read_speaker_info(path)
    if not found:
        message = f"{path}: no 'speaker gender' pairs found"
        if speaker_info is not None:
            raise ManifestError(message)
        report.warnings.append(message + "; gender left empty")
    return found


def read_dev_list(path: Path) -> set[str]:
    """Chunk ids (``Ohm_01_001_00``) or speaker ids (``Ohm_01``) of the dev split, one a line."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the dev list ({exc.strerror})") from exc
    ids = {line.split()[0] for line in text.splitlines() if line.split() and line[:1] != "#"}
    if not ids:
        raise ManifestError(f"{path}: the dev list names no chunk or speaker")
    return ids


def import_aibo(
    root: str | Path,
    out_manifest: str | Path,
    *,
    speaker_info: str | Path | None = None,
    genders: bool = False,
    dev_list: str | Path | None = None,
) -> ImportReport:
    """Write a 5-class FAU Aibo manifest (Ohm = train, Mont = test, and dev when listed).

    Columns: ``path, label, speaker, gender, split`` plus ``school``,
    ``confidence`` (share of annotators, as written) and ``raw_label``.

    Args:
        root: the corpus folder (holding ``wav/`` and ``labels/``).
        out_manifest: the manifest to write.
        speaker_info: a file giving each child's gender (see module docs).
        genders: read ``ROOT/misc/speaker_info.txt`` when it exists. Off by
            default: the emotion paper ran Aibo with one set of edges for all
            children, and a gender column would switch gender-specific PITCH /
            FORMANTS edges on in the norms. A named ``speaker_info`` is always read.
        dev_list: the development split: a file of chunk or speaker ids (one a
            line) whose train (Ohm) rows get ``split = dev``; ``--split dev``
            then selects them. A listed id that is not in the corpus is a warning.

    Raises:
        ManifestError: missing label file or ``wav/`` (named), a malformed
            label line, or nothing to write.
    """
    root = Path(root)
    report = ImportReport(dataset="aibo", manifest=Path(out_manifest))
    labels = _label_file(root)
    wavs = _wav_index(root, report)
    gender_of = _genders(root, speaker_info, report, genders)
    dev = read_dev_list(Path(dev_list)) if dev_list is not None else set()
    rows: dict[str, dict[str, str]] = {}
    missing: list[str] = []
    entries = parse_labels(labels)
    for chunk, letter, confidence in entries:
        m = _CHUNK.match(chunk)
        school = m.group(1) if m else ""
        if school not in SCHOOL_SPLIT:
            report.drop("unknown school")
            continue
        wav = wavs.get(chunk)
        if wav is None:
            report.drop("missing wav")
            missing.append(chunk)
            continue
        if chunk in rows:
            report.drop("duplicate chunk")
            continue
        assert m is not None
        speaker = f"{school}_{m.group(2)}"
        rows[chunk] = {
            "path": str(wav),
            "label": LABEL_MAP[letter],
            "speaker": speaker,
            "gender": gender_of.get(speaker, ""),
            "split": "dev" if dev & {chunk, speaker} else SCHOOL_SPLIT[school],
            "school": school,
            "confidence": confidence,
            "raw_label": letter,
        }
    if missing:
        report.warnings.append(
            f"{len(missing)} labelled chunk(s) have no wav under {root / 'wav'} and were"
            f" skipped (first: {missing[0]})"
        )
    unlabelled = len(set(wavs) - {c for c, _, _ in entries})
    if unlabelled:
        report.warnings.append(f"{unlabelled} wav file(s) have no label in {labels.name}")
    if dev:
        known = set(rows) | {r["speaker"] for r in rows.values()}
        unknown = sorted(dev - known)
        if unknown:
            report.warnings.append(
                f"{len(unknown)} id(s) of the dev list are not in the corpus (first: {unknown[0]})"
            )
        test_dev = sorted({r["speaker"] for r in rows.values() if r["split"] == "dev"
                           and r["school"] != "Ohm"})  # fmt: skip
        if test_dev:
            report.warnings.append(
                f"the dev list takes test (Mont) speakers: {', '.join(test_dev[:3])}"
            )
    if gender_of:
        no_gender = sorted({r["speaker"] for r in rows.values() if not r["gender"]})
        if no_gender:
            report.warnings.append(
                f"{len(no_gender)} speaker(s) missing from the speaker info (first: {no_gender[0]})"
            )
    return finish_import(report, list(rows.values()), EXTRA_COLUMNS, root)
