"""The SSEU paper's sources as released: VCTK speech, DESED and MAESTRO-Real backgrounds.

``cuelab import vctk|desed|maestro-real FOLDER -o MANIFEST`` turns each
corpus's own folder layout into the manifests ``cuelab sseu build`` reads: a
speech manifest (``path, speaker, gender, transcript``) and backgrounds
manifests (``path, scene, events, event_times, description``), with scenes
and events mapped to SSEU-Bench's 6 scenes and 18 events by the shipped table
``assets/sseu/sseu-bench-classes.csv`` (documented in docs/reproducing.md):

* scenes: DESED's domestic clips are ``home``; MAESTRO-Real's five scenes keep
  their names (cafe_restaurant, city_center, grocery_store, metro_station,
  residential_area);
* events: DESED's 10 classes and the 11 MAESTRO-Real classes DCASE evaluates,
  with the overlapping ones merged (``people talking`` and ``children voices``
  into ``speech``, ``cutlery and dishes`` into ``dishes``, as the DCASE Task 4
  baseline aliases them): 10 + 11 − 3 = 18. MAESTRO-Real's other six classes
  map to nothing; they are kept in ``unmapped_events`` so nothing is lost.

Layouts read (the released ones):

* **VCTK** 0.92: ``wav48_silence_trimmed/pNNN/pNNN_MMM_mic1.flac`` (``--mic``
  picks mic1 or mic2); the older 0.80 release: ``wav48/pNNN/pNNN_MMM.wav``; both
  with ``txt/pNNN/pNNN_MMM.txt`` and ``speaker-info.txt`` (gender). An utterance
  without a transcript (all of p315's) is dropped and counted.
* **DESED**: every strong-label TSV under FOLDER (header ``filename onset offset
  event_label``, e.g. ``metadata/eval/public.tsv``), its audio found by file name
  under FOLDER (``audio/eval/public/``); a clip listed without events has none.
* **MAESTRO-Real**: the annotation files under a folder named ``*annotation*``
  (tab-separated ``onset offset label [soft label]``, one line per second per
  class), the audio of the same name elsewhere under FOLDER, the scene from the
  name (``cafe_restaurant_03``). The 3-5 minute recordings are cut into
  ``--segment`` second backgrounds (default 10 s, the paper's mixture length),
  written as FLAC beside the manifest; an event counts where its soft label is at
  least ``--threshold`` (0.5), and contiguous seconds are merged.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cuelab.core.audio.io import load_audio, write_audio
from cuelab.core.datasets.writer import ImportReport, finish_import
from cuelab.core.errors import ManifestError
from cuelab.core.paths import assets_dir

CLASS_TABLE = assets_dir() / "sseu" / "sseu-bench-classes.csv"
AUDIO_SUFFIXES = (".wav", ".flac")
SPEECH_COLUMNS = ("transcript", "utterance", "mic")
BACKGROUND_COLUMNS = (
    "scene", "events", "event_times", "description", "source", "source_events", "unmapped_events",
)  # fmt: skip


@dataclass(frozen=True)
class ClassTable:
    """The shipped mapping of each source's labels to the paper's classes."""

    scenes: dict[tuple[str, str], str]
    events: dict[tuple[str, str], str]

    def scene(self, source: str, label: str) -> str | None:
        """The paper's scene for a source scene (``*`` matches any), or None."""
        return self.scenes.get((source, label), self.scenes.get((source, "*")))

    def event(self, source: str, label: str) -> str | None:
        """The paper's event ("" for a label mapped to nothing), or None when not in the table."""
        return self.events.get((source, label))

    def classes(self) -> tuple[list[str], list[str]]:
        """The paper's scene and event classes, sorted."""
        return sorted(set(self.scenes.values())), sorted({e for e in self.events.values() if e})


def load_class_table(path: str | Path | None = None) -> ClassTable:
    """Read ``source,source_label,kind,class`` rows.

    Raises:
        ManifestError: unreadable file or a row of another kind.
    """
    table = Path(path) if path is not None else CLASS_TABLE
    scenes: dict[tuple[str, str], str] = {}
    events: dict[tuple[str, str], str] = {}
    try:
        with table.open(encoding="utf-8", newline="") as f:
            for n, row in enumerate(csv.DictReader(f), 2):
                key = (row["source"].strip(), row["source_label"].strip())
                kind = row["kind"].strip()
                if kind not in ("scene", "event"):
                    raise ManifestError(f"{table} line {n}: kind {kind!r} is not scene or event")
                (scenes if kind == "scene" else events)[key] = (row["class"] or "").strip()
    except (OSError, KeyError, csv.Error) as exc:
        raise ManifestError(f"{table}: not a readable class table ({exc})") from None
    return ClassTable(scenes, events)


def _map_events(
    source: str,
    spans: Sequence[tuple[str, float, float]],
    table: ClassTable,
    report: ImportReport,
) -> dict[str, str]:
    """Cells for mapped events, their times, the source labels and the unmapped ones."""
    events: list[str] = []
    times: list[str] = []
    unmapped: list[str] = []
    for label, start, end in spans:
        cls = table.event(source, label)
        if cls is None:
            report.warnings.append(
                f"{source} event {label!r} is not in the class table; kept aside"
            )
            cls = ""
        if not cls:
            if label not in unmapped:
                unmapped.append(label)
            continue
        if cls not in events:
            events.append(cls)
        times.append(f"{cls}@{start:.3f}-{end:.3f}")
    return {
        "events": ";".join(events),
        "event_times": ";".join(times),
        "source_events": ";".join(dict.fromkeys(s[0] for s in spans)),
        "unmapped_events": ";".join(unmapped),
    }


def _dedupe_warnings(report: ImportReport) -> ImportReport:
    report.warnings = list(dict.fromkeys(report.warnings))
    return report


# ----------------------------------------------------------------------------- VCTK


def _vctk_genders(root: Path) -> dict[str, str]:
    info = root / "speaker-info.txt"
    out: dict[str, str] = {}
    if not info.is_file():
        return out
    for line in info.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].upper() != "ID":
            speaker = parts[0] if parts[0].startswith(("p", "s")) else f"p{parts[0]}"
            gender = parts[2].lower()
            if gender in ("m", "f"):
                out[speaker] = gender
    return out


def import_vctk(root: str | Path, out_manifest: str | Path, *, mic: str = "mic1") -> ImportReport:
    """VCTK speech with transcripts (see the module docstring for the layouts).

    Raises:
        ManifestError: no VCTK audio folder or no ``txt`` folder under ``root``.
    """
    base = Path(root)
    if mic not in ("mic1", "mic2"):
        raise ManifestError(f"VCTK microphone {mic!r} is not mic1 or mic2")
    audio_dir = next(
        (base / d for d in ("wav48_silence_trimmed", "wav48") if (base / d).is_dir()), None
    )
    if audio_dir is None or not (base / "txt").is_dir():
        raise ManifestError(
            f"{base}: not a VCTK release (needs wav48_silence_trimmed/ or wav48/, and txt/)"
        )
    genders = _vctk_genders(base)
    report = ImportReport("vctk", Path(out_manifest))
    rows = []
    pattern = re.compile(r"^(?P<utt>(?P<spk>[ps]\d+)_\d+)(?:_(?P<mic>mic[12]))?$")
    for path in sorted(p for p in audio_dir.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
        m = pattern.match(path.stem)
        if m is None:
            report.drop("unknown file name")
            continue
        if m.group("mic") and m.group("mic") != mic:
            report.drop(f"other microphone ({m.group('mic')})")
            continue
        txt = base / "txt" / m.group("spk") / f"{m.group('utt')}.txt"
        if not txt.is_file():
            report.drop("no transcript")
            continue
        transcript = " ".join(txt.read_text(encoding="utf-8", errors="replace").split())
        if not transcript:
            report.drop("empty transcript")
            continue
        rows.append({
            "path": str(path), "label": "", "speaker": m.group("spk"),
            "gender": genders.get(m.group("spk"), ""), "split": "", "transcript": transcript,
            "utterance": m.group("utt"), "mic": m.group("mic") or "",
        })  # fmt: skip
    if not genders:
        report.warnings.append(f"{base / 'speaker-info.txt'} missing or unreadable: no genders")
    return finish_import(report, rows, SPEECH_COLUMNS, base)


# ----------------------------------------------------------------------------- DESED


def _audio_index(root: Path, skip: str | None = None) -> dict[str, list[Path]]:
    index: dict[str, list[Path]] = {}
    for p in root.rglob("*"):
        if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file():
            if skip and any(skip in part for part in p.relative_to(root).parts[:-1]):
                continue
            index.setdefault(p.name, []).append(p)
            index.setdefault(p.stem, []).append(p)
    return index


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def import_desed(
    root: str | Path, out_manifest: str | Path, *, table: ClassTable | None = None
) -> ImportReport:
    """DESED clips with strong labels as ``home`` backgrounds (see the module docstring).

    Raises:
        ManifestError: no strong-label TSV under ``root``, or no clip found.
    """
    base = Path(root)
    table = table or load_class_table()
    report = ImportReport("desed", Path(out_manifest))
    tsvs = []
    for tsv in sorted(base.rglob("*.tsv")):
        with tsv.open(encoding="utf-8", errors="replace") as f:
            header = f.readline().strip().split("\t")
        if header[:4] == ["filename", "onset", "offset", "event_label"]:
            tsvs.append(tsv)
    if not tsvs:
        raise ManifestError(
            f"{base}: no DESED strong-label TSV (header filename, onset, offset, event_label)"
        )
    index = _audio_index(base)
    seen: set[Path] = set()
    rows = []
    scene = table.scene("desed", "*") or "home"
    for tsv in tsvs:
        clips: dict[str, list[tuple[str, float, float]]] = {}
        with tsv.open(encoding="utf-8", errors="replace", newline="") as f:
            for record in csv.DictReader(f, delimiter="\t"):
                name = (record.get("filename") or "").strip()
                if not name:
                    continue
                spans = clips.setdefault(name, [])
                label = (record.get("event_label") or "").strip()
                on, off = _number(record.get("onset") or ""), _number(record.get("offset") or "")
                if label and on is not None and off is not None and off > on:
                    spans.append((label, on, off))
        for name, spans in clips.items():
            found = index.get(Path(name).name, [])
            if len(found) > 1:
                found = [p for p in found if p.parent.name == tsv.stem] or found
            if len(found) != 1:
                report.drop("audio not found" if not found else "ambiguous audio")
                continue
            if found[0] in seen:
                report.drop("listed twice")
                continue
            seen.add(found[0])
            rows.append({
                "path": str(found[0]), "label": "", "speaker": "", "gender": "", "split": "",
                "scene": scene, "description": f"DESED {tsv.relative_to(base)}",
                "source": "desed", **_map_events("desed", sorted(spans, key=lambda s: s[1]),
                                                 table, report),
            })  # fmt: skip
    return _dedupe_warnings(finish_import(report, rows, BACKGROUND_COLUMNS, base))


# ----------------------------------------------------------------------------- MAESTRO-Real


def _read_maestro(path: Path, threshold: float) -> list[tuple[str, float, float]] | None:
    """Spans at or above the threshold, contiguous ones merged; None when not this format."""
    spans: list[tuple[str, float, float]] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("\t")]
        on = _number(parts[0]) if parts else None
        off = _number(parts[1]) if len(parts) > 1 else None
        if len(parts) < 3 or on is None or off is None:
            return None
        soft = _number(parts[3]) if len(parts) > 3 and parts[3] else 1.0
        if soft is not None and soft >= threshold and off > on:
            spans.append((parts[2], on, off))
    merged: list[tuple[str, float, float]] = []
    for label, on, off in sorted(spans, key=lambda s: (s[0], s[1])):
        if merged and merged[-1][0] == label and on <= merged[-1][2] + 1e-6:
            merged[-1] = (label, merged[-1][1], max(off, merged[-1][2]))
        else:
            merged.append((label, on, off))
    return sorted(merged, key=lambda s: (s[1], s[0]))


def import_maestro_real(
    root: str | Path,
    out_manifest: str | Path,
    *,
    segment_s: float = 10.0,
    threshold: float = 0.5,
    table: ClassTable | None = None,
) -> ImportReport:
    """MAESTRO-Real recordings cut into backgrounds (see the module docstring).

    Raises:
        ManifestError: bad parameters, no annotation file, or no segment written.
    """
    if not (segment_s >= 1.0 and math.isfinite(segment_s)) or not 0.0 < threshold <= 1.0:
        raise ManifestError("MAESTRO-Real: --segment must be ≥ 1 s and --threshold in (0, 1]")
    base = Path(root)
    table = table or load_class_table()
    scenes = sorted(k[1] for k in table.scenes if k[0] == "maestro-real")
    report = ImportReport("maestro-real", Path(out_manifest))
    notes = sorted(
        p for p in base.rglob("*.txt") if any("annotation" in q for q in p.relative_to(base).parts)
    )
    if not notes:
        raise ManifestError(f"{base}: no MAESTRO-Real annotation files (*annotation*/*.txt)")
    index = _audio_index(base, skip="annotation")
    segments_dir = Path(out_manifest).resolve().parent / "maestro_real_segments"
    rows = []
    for note in notes:
        spans = _read_maestro(note, threshold)
        scene = next((s for s in scenes if note.stem.startswith(s)), None)
        audio = index.get(note.stem, [])
        if spans is None:
            report.drop("not an annotation file")
            continue
        if scene is None:
            report.drop("unknown scene")
            continue
        if len(audio) != 1:
            report.drop("audio not found" if not audio else "ambiguous audio")
            continue
        signal, sr = load_audio(audio[0], sr=None, max_seconds=None)
        step = round(segment_s * sr)
        for k in range(signal.size // step):
            start, end = k * segment_s, (k + 1) * segment_s
            inside = [(lab, max(on, start) - start, min(off, end) - start)
                      for lab, on, off in spans if min(off, end) > max(on, start)]  # fmt: skip
            target = segments_dir / f"{note.stem}_{k:03d}.flac"
            if not target.is_file():
                write_audio(target, signal[k * step : (k + 1) * step], sr)
            rows.append({
                "path": str(target), "label": "", "speaker": "", "gender": "", "split": "",
                "scene": table.scene("maestro-real", scene) or scene,
                "description": f"MAESTRO-Real {note.stem} {start:g}-{end:g} s",
                "source": "maestro-real", **_map_events("maestro-real", inside, table, report),
            })  # fmt: skip
        if signal.size % step:
            report.drop("last part shorter than a segment")
    return _dedupe_warnings(finish_import(report, rows, BACKGROUND_COLUMNS, base))
