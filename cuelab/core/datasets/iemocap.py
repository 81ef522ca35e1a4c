"""IEMOCAP as released (``IEMOCAP_full_release``) to a 4-class CueLab manifest.

Layout read (the USC release; sessions that are absent are reported, not
fatal, so a partial copy still imports)::

    ROOT/SessionN/dialog/EmoEvaluation/<dialog>.txt    labels, one file per dialog
    ROOT/SessionN/sentences/wav/<dialog>/<utt>.wav      one wav per utterance

An evaluation file holds one summary line per utterance::

    [6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]

followed by per-annotator lines (``C-E1: ...``, ``A-E1: ...``) that are
ignored. Only lines that start with ``[`` are summary lines; one of those that
does not parse is an error naming the file and line, because a silently
skipped line would change the class balance. Sub-folders of EmoEvaluation
(``Categorical``, ``Attribute``...) and macOS ``._`` files are ignored.

The 4-class protocol most papers use: ``ang`` -> angry, ``hap`` and ``exc``
-> happy, ``neu`` -> neutral, ``sad`` -> sad; every other code (``fru``,
``sur``, ``fea``, ``dis``, ``oth``, ``xxx``) is dropped and counted. Sessions
1-4 are ``train`` and Session 5 ``test`` (leave-one-session-out fold 5).

The speaker is taken from the utterance's own name, not the dialog's: in
``Ses01F_impro01_M003`` the dialog was led by the female actor but this turn
is the male's (the letter before the 3-digit index), so speaker ``Ses01_M``,
gender ``m``.
"""

from __future__ import annotations

import re
from pathlib import Path

from cuelab.core.datasets.writer import ImportReport, finish_import
from cuelab.core.errors import ManifestError

LABEL_MAP = {"ang": "angry", "hap": "happy", "exc": "happy", "neu": "neutral", "sad": "sad"}
KNOWN_CODES = frozenset({*LABEL_MAP, "fru", "sur", "fea", "dis", "oth", "xxx"})
TEST_SESSIONS = frozenset({5})
EXTRA_COLUMNS = (
    "dialog",
    "session",
    "start",
    "end",
    "valence",
    "activation",
    "dominance",
    "raw_label",
)

_NUM = r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"
_LINE = re.compile(
    rf"^\[\s*({_NUM})\s*-\s*({_NUM})\s*\]\s+(\S+)\s+(\S+)\s+"
    rf"\[\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*\]\s*$"
)
# Ses01F_impro01_M003, Ses01F_script01_1b_F012: session, then the speaker letter before the index.
_UTT = re.compile(r"^Ses(\d{2})[MF]_\S+_([MF])[0-9A-Za-z]{3}$")
_SESSION_DIR = re.compile(r"^Session(\d+)$")


def _sessions(root: Path) -> list[tuple[int, Path]]:
    if not root.is_dir():
        raise ManifestError(f"{root}: folder not found")
    found = sorted(
        (int(m.group(1)), p)
        for p in root.iterdir()
        if p.is_dir() and (m := _SESSION_DIR.match(p.name))
    )
    if not found:
        raise ManifestError(
            f"{root / 'Session1'} not found: is {root} the IEMOCAP_full_release folder?"
        )
    for _, folder in found:
        evaluation = folder / "dialog" / "EmoEvaluation"
        if not evaluation.is_dir():
            raise ManifestError(
                f"{evaluation} not found: is {root} the IEMOCAP_full_release folder?"
            )
    return found


def parse_evaluation(path: Path) -> list[dict[str, str]]:
    """The summary lines of one EmoEvaluation file.

    Returns:
        One dict per utterance: ``utt``, ``code``, ``start``, ``end``,
        ``valence``, ``activation``, ``dominance`` (numbers as written).

    Raises:
        ManifestError: unreadable file, or a ``[``-line that does not parse
            (the message names the file and the line number).
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read ({exc.strerror})") from exc
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.startswith("["):
            continue
        m = _LINE.match(line)
        if m is None:
            raise ManifestError(
                f"{path} line {number}: malformed evaluation line: {line.strip()[:80]!r}"
            )
        start, end, utt, code, val, act, dom = m.groups()
        entries.append(
            {
                "utt": utt,
                "code": code.lower(),
                "start": start,
                "end": end,
                "valence": val,
                "activation": act,
                "dominance": dom,
            }
        )
    return entries


def _evaluation_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.glob("*.txt")
        if p.is_file() and not p.name.startswith(".")  # also macOS "._" files
    )


def import_iemocap(root: str | Path, out_manifest: str | Path) -> ImportReport:
    """Write a 4-class IEMOCAP manifest from the released folder layout.

    Columns: ``path, label, speaker, gender, split`` plus ``dialog, session,
    start, end, valence, activation, dominance, raw_label`` (the original
    code, so ``exc`` stays visible after the merge).

    Raises:
        ManifestError: ``root`` is not the release folder (the message names
            the missing folder), a malformed evaluation line, or nothing to
            write.
    """
    root = Path(root)
    report = ImportReport(dataset="iemocap", manifest=Path(out_manifest))
    sessions = _sessions(root)
    absent = sorted({1, 2, 3, 4, 5} - {n for n, _ in sessions})
    if absent:
        names = ", ".join(f"Session{n}" for n in absent)
        report.warnings.append(f"{root}: {names} not found; imported the other sessions")
    rows: dict[str, dict[str, str]] = {}
    missing: list[str] = []
    bad_names: list[str] = []
    for number, folder in sessions:
        wav_root = folder / "sentences" / "wav"
        for eval_file in _evaluation_files(folder / "dialog" / "EmoEvaluation"):
            dialog = eval_file.stem
            for entry in parse_evaluation(eval_file):
                code = entry["code"]
                label = LABEL_MAP.get(code)
                if label is None:
                    report.drop(f"label {code}" if code in KNOWN_CODES else "unknown label")
                    continue
                m = _UTT.match(entry["utt"])
                if m is None:
                    report.drop("unparsable utterance name")
                    bad_names.append(f"{eval_file.name}: {entry['utt']}")
                    continue
                wav = wav_root / dialog / f"{entry['utt']}.wav"
                if not wav.is_file():
                    report.drop("missing wav")
                    missing.append(str(wav))
                    continue
                key = str(wav)
                if key in rows:
                    report.drop("duplicate utterance")
                    continue
                letter = m.group(2)
                rows[key] = {
                    "path": key,
                    "label": label,
                    "speaker": f"Ses{m.group(1)}_{letter}",
                    "gender": letter.lower(),
                    "split": "test" if number in TEST_SESSIONS else "train",
                    "dialog": dialog,
                    "session": str(number),
                    "start": entry["start"],
                    "end": entry["end"],
                    "valence": entry["valence"],
                    "activation": entry["activation"],
                    "dominance": entry["dominance"],
                    "raw_label": code,
                }
    if missing:
        report.warnings.append(
            f"{len(missing)} labelled utterance(s) have no wav and were skipped (first: {missing[0]})"
        )
    if bad_names:
        report.warnings.append(
            f"{len(bad_names)} utterance name(s) do not follow SesNN[MF]_..._[MF]NNN"
            f" and were skipped (first: {bad_names[0]})"
        )
    return finish_import(report, list(rows.values()), EXTRA_COLUMNS, root)
