"""Acoustic counterfactuals: edit a cue of the audio itself, not the tokens.

An edit is a small value object with one text form used everywhere (command
line, TOML, run folders, the window): ``pitch=+2st``, ``pitch-range=0.5``,
``tempo=1.2``, ``gain=-6dB``, ``loudness=-23LUFS``, ``tilt=-3dB/oct``,
``formant=1.1``, ``jitter=2%``, ``shimmer=2%``, ``breathiness=+6dB`` and
``resynth`` (unedited resynthesis through the engine). Several combine with
commas: ``pitch=+2st,tempo=1.2``. :func:`parse_edit` and
:meth:`EditChain.text` round-trip; :func:`cuelab.core.audio.edit_engines.apply_edit`
runs an edit.

Two engines resynthesise (this module does not write a vocoder):

* ``world`` (default, MIT, ``pyworld``): analyse once (DIO + StoneMask F0,
  CheapTrick envelope, D4C aperiodicity), change the parameters, synthesise.
  Pitch scales F0 and leaves the envelope (so the formants) alone; tempo
  resamples the frame axis; formant warps the envelope's frequency axis;
  jitter / shimmer perturb F0 / the envelope frame by frame; breathiness
  raises the aperiodicity.
* ``praat`` (optional extra, GPL-3, ``praat-parselmouth``): Praat's PSOLA
  through "Change gender" (pitch median, pitch range, formant ratio,
  duration). Imported on first use only, never shipped in the packaged app.

``gain``, ``loudness`` (ITU-R BS.1770 via ``pyloudnorm``) and ``tilt`` are
plain filters applied after any resynthesis, in the order written. Every
comparison is made against ``resynth`` through the same engine, because
resynthesis alone moves features (WORLD raises loudness by about 7 %).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from cuelab.core.errors import CueLabError


class EditError(CueLabError):
    """An edit's text is malformed, out of range, or its engine cannot run it."""


ENGINES = ("world", "praat")
RESYNTH = "resynth"
# Kinds the praat engine ("Change gender", PSOLA) can do; filters run with any engine.
PRAAT_KINDS = frozenset({RESYNTH, "pitch", "pitch-range", "tempo", "formant"})


@dataclass(frozen=True)
class _Kind:
    """How one edit kind is written and checked: unit, sign, allowed range."""

    unit: str  # written after the number ("" for a plain factor)
    signed: bool  # written with an explicit sign (+2st)
    low: float
    high: float
    resynth: bool  # needs an engine (True) or is a plain filter (False)
    neutral: float  # the amount that changes nothing
    help: str


# Declared once; the parser, the formatter, the CLI help and the window read this table.
KINDS: dict[str, _Kind] = {
    "pitch": _Kind("st", True, -24.0, 24.0, True, 0.0, "F0 shift in semitones"),
    "pitch-range": _Kind("", False, 0.0, 4.0, True, 1.0, "F0 contour scaled around its median"),
    "tempo": _Kind("", False, 0.25, 4.0, True, 1.0, "rate factor (1.2 = 20 % faster)"),
    "gain": _Kind("dB", True, -60.0, 40.0, False, 0.0, "gain in dB"),
    "loudness": _Kind("LUFS", True, -70.0, 0.0, False, math.nan, "integrated loudness target"),
    "tilt": _Kind("dB/oct", True, -12.0, 12.0, False, 0.0, "spectral tilt around 1 kHz"),
    "formant": _Kind("", False, 0.7, 1.4, True, 1.0, "formant frequency ratio"),
    "jitter": _Kind("%", False, 0.0, 20.0, True, 0.0, "added cycle-to-cycle F0 perturbation"),
    "shimmer": _Kind("%", False, 0.0, 50.0, True, 0.0, "added cycle-to-cycle amplitude change"),
    "breathiness": _Kind("dB", True, -20.0, 20.0, True, 0.0, "aperiodicity change in dB"),
}
NONE_TEXT = "none"
_NUMBER = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(.*)$")


@dataclass(frozen=True)
class Edit:
    """One edit: a kind from :data:`KINDS` (or ``resynth``) and its amount."""

    kind: str
    amount: float = math.nan

    def text(self) -> str:
        """The canonical text form, e.g. ``pitch=+2st``; :func:`parse_edit` reads it back."""
        if self.kind == RESYNTH:
            return RESYNTH
        spec = KINDS[self.kind]
        number = f"{self.amount:+g}" if spec.signed else f"{self.amount:g}"
        return f"{self.kind}={number}{spec.unit}"

    @property
    def needs_engine(self) -> bool:
        """Whether the edit resynthesises (pitch, tempo, …) rather than filters."""
        return self.kind == RESYNTH or KINDS[self.kind].resynth


@dataclass(frozen=True)
class EditChain:
    """Edits applied together: resynthesis edits in one pass, then filters in order.

    The empty chain is the original audio (text ``none``).
    """

    edits: tuple[Edit, ...] = ()

    def text(self) -> str:
        """Comma-joined canonical text (``none`` for the empty chain)."""
        return ",".join(e.text() for e in self.edits) or NONE_TEXT

    def __str__(self) -> str:
        return self.text()

    @property
    def is_none(self) -> bool:
        return not self.edits

    @property
    def is_resynth(self) -> bool:
        return [e.kind for e in self.edits] == [RESYNTH]

    def kinds(self) -> list[str]:
        return [e.kind for e in self.edits]

    def amount(self, kind: str) -> float | None:
        """The amount of ``kind`` in the chain, or None."""
        for e in self.edits:
            if e.kind == kind:
                return e.amount
        return None

    @property
    def needs_engine(self) -> bool:
        return any(e.needs_engine for e in self.edits)


def _parse_amount(kind: str, raw: str, whole: str) -> float:
    spec = KINDS[kind]
    m = _NUMBER.match(raw.strip())
    if not m:
        raise EditError(f"edit {whole!r}: {kind} needs a number, e.g. {_example(kind)}")
    value = float(m.group(1))
    unit = m.group(2).strip()
    if unit and unit.lower() != spec.unit.lower():
        want = f"'{spec.unit}'" if spec.unit else "no unit (a factor)"
        raise EditError(f"edit {whole!r}: {kind} takes {want}, not {unit!r}")
    if not math.isfinite(value) or not spec.low <= value <= spec.high:
        raise EditError(
            f"edit {whole!r}: {kind} must be between {spec.low:g} and {spec.high:g}{spec.unit}"
        )
    if kind == "tempo" and value <= 0:
        raise EditError(f"edit {whole!r}: tempo must be above 0")
    return value + 0.0  # -0.0 -> 0.0, so texts round-trip


def _example(kind: str) -> str:
    spec = KINDS[kind]
    amount = {"pitch": 2.0, "gain": -6.0, "loudness": -23.0, "tilt": -3.0, "jitter": 2.0}.get(
        kind, 1.2 if not spec.signed else 3.0
    )
    return Edit(kind, amount).text()


def parse_edit(text: str) -> EditChain:
    """Parse ``pitch=+2st,tempo=1.2`` (or ``resynth``, or ``none``) into an :class:`EditChain`.

    Raises:
        EditError: an unknown kind, a missing or malformed number, a wrong
            unit, an amount out of range, a kind given twice, or ``resynth``
            combined with other edits (every edit already resynthesises).
    """
    whole = text.strip()
    if not whole:
        raise EditError("empty edit (write e.g. pitch=+2st, or none)")
    if whole.lower() == NONE_TEXT:
        return EditChain(())
    if ";" in whole:
        raise EditError(
            f"edit {whole!r}: ';' separates edits in a list (--edits); "
            f"combine edits into one with ',', e.g. {whole.replace(';', ',')}"
        )
    edits: list[Edit] = []
    for part in whole.split(","):
        part = part.strip()
        if not part:
            raise EditError(f"edit {whole!r}: an empty item between commas")
        if part.lower() == RESYNTH:
            edits.append(Edit(RESYNTH))
            continue
        name, sep, raw = part.partition("=")
        kind = name.strip().lower()
        if kind not in KINDS:
            raise EditError(
                f"edit {whole!r}: unknown edit {name.strip()!r} "
                f"(known: {', '.join([*KINDS, RESYNTH])})"
            )
        if not sep:
            raise EditError(f"edit {whole!r}: {kind} needs a value, e.g. {_example(kind)}")
        edits.append(Edit(kind, _parse_amount(kind, raw, whole)))
    kinds = [e.kind for e in edits]
    dup = next((k for k in kinds if kinds.count(k) > 1), None)
    if dup:
        raise EditError(f"edit {whole!r}: {dup} is given twice")
    if RESYNTH in kinds and len(kinds) > 1:
        raise EditError(f"edit {whole!r}: resynth stands alone (every edit resynthesises)")
    return EditChain(tuple(edits))


def parse_edit_list(text: str | Iterable[str]) -> list[EditChain]:
    """Edits separated by ``;`` (the ``--edits`` flag) or a TOML list, duplicates dropped."""
    # a TOML list item may itself hold ';'-separated edits, like the --edits flag
    items = [part for item in ([text] if isinstance(text, str) else text)
             for part in str(item).split(";")]  # fmt: skip
    out: list[EditChain] = []
    for item in items:
        if not str(item).strip():
            continue
        chain = parse_edit(str(item))
        if chain not in out:
            out.append(chain)
    if not out:
        raise EditError("no edit given (write e.g. 'pitch=+2st;tempo=1.2')")
    return out


def check_engine(engine: str, chain: EditChain) -> str:
    """The engine's name, checked against what the chain asks of it."""
    name = engine.strip().lower()
    if name not in ENGINES:
        raise EditError(f"unknown edit engine {engine!r} (known: {', '.join(ENGINES)})")
    if name == "praat":
        bad = [e.kind for e in chain.edits if e.needs_engine and e.kind not in PRAAT_KINDS]
        if bad:
            raise EditError(
                f"the praat engine cannot do {', '.join(bad)} (only the world engine can)"
            )
    return name


__all__ = [
    "ENGINES",
    "KINDS",
    "NONE_TEXT",
    "RESYNTH",
    "Edit",
    "EditChain",
    "EditError",
    "check_engine",
    "parse_edit",
    "parse_edit_list",
]
