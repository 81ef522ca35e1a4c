"""Praat TextGrid and ELAN .eaf files of one clip's annotations (via praatio and pympi-ling).

One file per clip; tiers per annotator, named so that a round trip keeps every
label, note, region and annotator:

- ``<annotator>``: the whole-clip label, one interval over the clip;
- ``<annotator> notes``: the whole-clip note, same interval;
- ``<annotator> regions`` (``regions 2``, ... when regions overlap): region labels;
- ``<annotator> region notes`` (``region notes 2``, ...): their notes.

Annotator names hold no spaces (:func:`~cuelab.core.datasets.annotations.check_annotator`),
so the first space separates the annotator from the tier's role. A tier from
elsewhere ("words", "Speaker A") is read as an annotator of its own (the name
with unsafe characters replaced by ``_``): an interval over the whole clip is a
whole-clip label, any other a region. Empty intervals carry nothing and are
skipped; point tiers have no span to label and are skipped with a note in the
result. EAF times are whole milliseconds; ELAN's ``ANNOTATOR`` tier attribute
is written too and preferred on reading. Durations come from the caller (this
layer does no audio I/O).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cuelab.core.datasets.annotations import Annotation, unit_sort_key
from cuelab.core.errors import ManifestError

_ROLE = re.compile(r"^(notes|regions(?: \d+)?|region notes(?: \d+)?)$")
_EPS = 1e-6


@dataclass
class ReadResult:
    """Annotations read from one file, and notes on what was skipped."""

    annotations: list[Annotation] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _layers(regions: Sequence[Annotation]) -> list[list[Annotation]]:
    """Regions in non-overlapping layers (first fit, in time order)."""
    layers: list[list[Annotation]] = []
    for a in sorted(regions, key=unit_sort_key):
        for layer in layers:
            last = layer[-1]
            assert last.end is not None and a.start is not None
            if a.start >= last.end - _EPS:
                layer.append(a)
                break
        else:
            layers.append([a])
    return layers


def tiers_of(
    annotations: Sequence[Annotation], duration: float
) -> list[tuple[str, str, list[tuple[float, float, str]]]]:
    """(tier name, annotator, [(start, end, text)]) for every tier of one clip."""
    out = []
    for who in sorted({a.annotator for a in annotations}):
        mine = [a for a in annotations if a.annotator == who]
        whole = [a for a in mine if not a.is_region]
        if any(a.label for a in whole):
            out.append((who, who, [(0.0, duration, a.label) for a in whole if a.label]))
        if any(a.note for a in whole):
            out.append((f"{who} notes", who, [(0.0, duration, a.note) for a in whole if a.note]))
        for k, layer in enumerate(_layers([a for a in mine if a.is_region]), start=1):
            suffix = "" if k == 1 else f" {k}"
            spans = [(float(a.start or 0), float(a.end or 0), a) for a in layer]
            labels = [(s, e, a.label) for s, e, a in spans if a.label]
            notes = [(s, e, a.note) for s, e, a in spans if a.note]
            if labels:
                out.append((f"{who} regions{suffix}", who, labels))
            if notes:
                out.append((f"{who} region notes{suffix}", who, notes))
    return out


def _split(name: str, attribute: str | None = None) -> tuple[str, str]:
    """(annotator, role) of a tier name; role "" for a label tier from elsewhere."""
    who, _, role = name.strip().partition(" ")
    if role and not _ROLE.match(role):
        who, role = name.strip(), ""
    if attribute:
        who = attribute.strip()
    return re.sub(r"[^\w.-]", "_", who).strip(".") or "tier", role


def from_tiers(
    path: str,
    tiers: Sequence[tuple[str, str | None, Sequence[tuple[float, float, str]]]],
    span: tuple[float, float],
) -> list[Annotation]:
    """Annotations from (tier name, annotator attribute, intervals) of one clip file."""
    labels: dict[tuple[str, float | None, float | None], str] = {}
    notes: dict[tuple[str, float | None, float | None], str] = {}
    for name, attribute, intervals in tiers:
        who, role = _split(name, attribute)
        for start, end, text in intervals:
            if not text.strip():
                continue  # an empty interval carries nothing
            # EAF keeps whole milliseconds: 2 ms of slack for "over the whole clip"
            whole = abs(start - span[0]) < 2e-3 and abs(end - span[1]) < 2e-3
            region = role.startswith("region") or (role == "" and not whole)
            key: tuple[str, float | None, float | None] = (
                (who, round(start, 6), round(end, 6)) if region else (who, None, None)
            )
            target = notes if role.endswith("notes") or role.startswith("region notes") else labels
            target[key] = text
    out = []
    for key in sorted(
        set(labels) | set(notes), key=lambda k: (k[0], unit_sort_key((path, k[1], k[2])))
    ):
        out.append(
            Annotation(
                path=path,
                label=labels.get(key, "").strip(),
                note=notes.get(key, ""),
                start=key[1],
                end=key[2],
                annotator=key[0],
            )
        )
    return out


# --- Praat TextGrid -------------------------------------------------------------------


def write_textgrid(out: str | Path, annotations: Sequence[Annotation], duration: float) -> Path:
    """One clip's annotations as a long-format TextGrid (interval tiers only)."""
    from praatio import textgrid

    tg = textgrid.Textgrid(0.0, duration)
    for name, _who, spans in tiers_of(annotations, duration):
        tg.addTier(textgrid.IntervalTier(name, [(s, e, t) for s, e, t in spans], 0.0, duration))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tg.save(str(out), format="long_textgrid", includeBlankSpaces=True, reportingMode="silence")
    return out


def read_textgrid(source: str | Path, clip_path: str) -> ReadResult:
    """A TextGrid's interval tiers as annotations of ``clip_path``; point tiers skipped.

    Raises:
        ManifestError: not a readable TextGrid.
    """
    from praatio import textgrid
    from praatio.data_classes.point_tier import PointTier

    try:
        tg = textgrid.openTextgrid(str(source), includeEmptyIntervals=False,
                                   reportingMode="silence", duplicateNamesMode="rename")  # fmt: skip
    except Exception as exc:  # praatio raises many types for a malformed file
        raise ManifestError(f"{source}: not a readable TextGrid ({exc})") from None
    result = ReadResult()
    tiers = []
    for name in tg.tierNames:
        tier = tg.getTier(name)
        if isinstance(tier, PointTier):
            result.skipped.append(f"{Path(source).name}: point tier {name!r} ignored (no spans)")
            continue
        tiers.append((name, None, [(e.start, e.end, e.label) for e in tier.entries]))
    result.annotations = from_tiers(clip_path, tiers, (tg.minTimestamp, tg.maxTimestamp))
    return result


# --- ELAN .eaf ------------------------------------------------------------------------


def write_eaf(
    out: str | Path,
    annotations: Sequence[Annotation],
    duration: float,
    media: str | Path | None = None,
) -> Path:
    """One clip's annotations as an ELAN file (times in whole milliseconds)."""
    from pympi.Elan import Eaf

    eaf = Eaf(author="CueLab")
    if media is not None:
        import mimetypes

        media = Path(media)
        kind = mimetypes.guess_type(media.name)[0] or "application/octet-stream"
        url = media.as_uri() if media.is_absolute() else str(media)
        eaf.add_linked_file(url, relpath=media.name, mimetype=kind)
    ms = round(duration * 1000)
    names = tiers_of(annotations, duration)
    if "default" not in {n for n, _w, _s in names}:
        eaf.remove_tier("default")
    for name, who, spans in names:
        if name != "default":
            eaf.add_tier(name, ann=who)
        for s, e, text in spans:
            eaf.add_annotation(
                name, round(s * 1000), ms if e == duration else round(e * 1000), text
            )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    eaf.to_file(str(out))
    return out


def read_eaf(source: str | Path, clip_path: str, duration: float | None = None) -> ReadResult:
    """An ELAN file's tiers as annotations of ``clip_path``.

    Args:
        duration: the clip's duration (an annotation over all of it is a whole-clip
            label); without it, the end of the last annotation.

    Raises:
        ManifestError: not a readable EAF file.
    """
    from pympi.Elan import Eaf

    try:
        eaf = Eaf(str(source))
    except Exception as exc:  # pympi raises many types for a malformed file
        raise ManifestError(f"{source}: not a readable ELAN file ({exc})") from None
    tiers = []
    last = 0.0
    for name in eaf.get_tier_names():
        data = eaf.get_annotation_data_for_tier(name)
        spans = [(s / 1000.0, e / 1000.0, str(v[0] if isinstance(v, tuple) else v))
                 for s, e, v, *_rest in data]  # fmt: skip
        last = max([last, *(e for _s, e, _v in spans)])
        attribute = eaf.tiers[name][2].get("ANNOTATOR")
        tiers.append((name, attribute, spans))
    span_end = round(duration, 3) if duration is not None else last
    return ReadResult(from_tiers(clip_path, tiers, (0.0, span_end)))
