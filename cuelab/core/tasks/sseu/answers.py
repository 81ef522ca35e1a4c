"""Parse a model's free answer to an SSEU task into transcript, scene and events.

Parsing only extracts text; mapping scene and event text to classes is the
matchers' job (:mod:`cuelab.core.tasks.sseu.matching`). A field the task asked for
that cannot be found is ``None`` (unparsed): it is counted and scored as
wrong, never guessed. An events answer of "none" parses to an empty tuple,
which is an answer (no events), not a failure.

Accepted shapes for joint and CoT answers: a JSON object (bare, or in a
fenced block) with keys such as ``transcript``/``scene``/``events``, or
labelled lines (``Transcript: ...``, ``Scene: ...``, ``Events: a, b``). A
CoT answer is parsed from its final-answer section only (after the last
``Final answer`` heading, else after ``Step 5``); without one, only a JSON
object counts, because the earlier steps list *candidates*, not answers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

from cuelab.core.errors import ModelError
from cuelab.core.tasks.sseu.prompts import TASK_FIELDS

FIELDS = ("transcript", "scene", "events")
_KEYS: dict[str, tuple[str, ...]] = {
    "transcript": ("transcript", "transcription", "speech", "text", "asr", "words"),
    "scene": ("scene", "acoustic scene", "environment", "location", "asc", "setting"),
    "events": ("events", "sound events", "audio events", "event", "tags", "audio tags", "at"),
}
_LABELS = "|".join(
    re.escape(k).replace(r"\ ", r"[ _]") for keys in _KEYS.values() for k in keys if len(k) > 3
)
_LINE = re.compile(
    rf"^[\s>*#\-\d.)]*\**\s*({_LABELS})\s*\**\s*(?:[:=]|[-\u2013\u2014]\s)\s*(.*)$",
    re.IGNORECASE,
)
_FINAL = re.compile(r"final\s+answer\s*\**\s*[:\-]?", re.IGNORECASE)
_STEP5 = re.compile(r"step\s*5\s*\**\s*[:.)\-]?", re.IGNORECASE)
_NONE = {"none", "no events", "nothing", "no sound events", "n/a", "no", "null", "-"}
_ASR_PREFIX = re.compile(
    r"^\s*(?:the\s+)?(?:transcript(?:ion)?|speaker\s+says|speech)\s*(?:is)?\s*[:\-]\s*",
    re.IGNORECASE,
)
_SCENE_PREFIX = re.compile(
    r"^\s*(?:(?:the\s+)?(?:acoustic\s+)?scene(?:\s+is)?\s*[:\-]?|answer\s*[:\-])\s*",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ParsedAnswer:
    """What an answer said, field by field.

    Attributes:
        asked: the fields the task asked for.
        transcript: the transcript text, or None when asked and not found.
        scene: the scene text (not yet a class), or None.
        events: the event texts (possibly empty: "none"), or None.
        source: how it parsed: ``json``, ``lines``, ``plain`` or ``none``.
    """

    asked: tuple[str, ...]
    transcript: str | None = None
    scene: str | None = None
    events: tuple[str, ...] | None = None
    source: str = "none"

    @property
    def unparsed_fields(self) -> tuple[str, ...]:
        """Asked fields that could not be read from the answer."""
        return tuple(f for f in self.asked if getattr(self, f) is None)

    @property
    def unparsed(self) -> bool:
        """True when nothing the task asked for could be read."""
        return len(self.unparsed_fields) == len(self.asked)

    def merge(self, other: ParsedAnswer) -> ParsedAnswer:
        """Combine answers to different tasks for one clip (independent mode)."""
        values = {f: getattr(other, f) if f in other.asked else getattr(self, f) for f in FIELDS}
        asked = tuple(f for f in FIELDS if f in self.asked or f in other.asked)
        return replace(self, asked=asked, source=f"{self.source}+{other.source}", **values)


def _clean(text: str) -> str:
    text = text.strip().strip("*_`").strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text.rstrip(".").strip()


def split_events(text: str) -> tuple[str, ...] | None:
    """Split an events answer (``a, b and c`` / bullets / lines); ``none`` → ``()``."""
    body = _clean(text.strip().strip("[]"))
    if not body:
        return None
    if body.lower() in _NONE:
        return ()
    parts = re.split(r"[,;\n]|\s+and\s+|\s*\u2022\s*", body)
    items = [_clean(p.strip().lstrip("-*").strip().strip("'\"")) for p in parts]
    items = [i for i in items if i and i.lower() not in _NONE]
    return tuple(dict.fromkeys(items))


def _json_objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object in the text, in order (fenced blocks and bare braces)."""
    found: list[dict[str, Any]] = []
    decoder = json.JSONDecoder()
    i = text.find("{")
    while i != -1:
        try:
            obj, end = decoder.raw_decode(text, i)
        except ValueError:
            i = text.find("{", i + 1)
            continue
        if isinstance(obj, dict):
            found.append(obj)
        i = text.find("{", end)
    return found


def _norm_key(key: str) -> str:
    return " ".join(str(key).lower().replace("_", " ").replace("-", " ").split())


def _from_json(obj: dict[str, Any]) -> dict[str, Any]:
    keys = {_norm_key(k): v for k, v in obj.items()}
    out: dict[str, Any] = {}
    for name, aliases in _KEYS.items():
        value = next((keys[a] for a in aliases if a in keys), None)
        if value is None:
            continue
        if name == "events":
            if isinstance(value, list):
                items = [_clean(str(v)) for v in value if str(v).strip()]
                out[name] = tuple(i for i in items if i.lower() not in _NONE)
            elif isinstance(value, str):
                out[name] = split_events(value)
        elif isinstance(value, list) and len(value) == 1:
            out[name] = _clean(str(value[0])) or None
        elif isinstance(value, str):
            out[name] = _clean(value) or None
    return out


def _field_of(label: str) -> str:
    key = _norm_key(label)
    return next(name for name, aliases in _KEYS.items() if key in aliases)


def _from_lines(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        name = _field_of(m.group(1))
        value = m.group(2)
        parsed = split_events(value) if name == "events" else (_clean(value) or None)
        if parsed is not None:
            out[name] = parsed
    return out


def _structured(text: str, asked: tuple[str, ...], json_only: bool = False) -> ParsedAnswer:
    for obj in reversed(_json_objects(text)):
        values = {k: v for k, v in _from_json(obj).items() if k in asked}
        if values:
            return ParsedAnswer(asked, source="json", **values)
    if not json_only:
        values = {k: v for k, v in _from_lines(text).items() if k in asked}
        if values:
            return ParsedAnswer(asked, source="lines", **values)
    return ParsedAnswer(asked)


def final_section(text: str) -> str | None:
    """The final-answer part of a CoT answer, or None when it has none."""
    for pattern in (_FINAL, _STEP5):
        matches = list(pattern.finditer(text))
        if matches:
            return text[matches[-1].end() :]
    return None


def _plain(task: str, text: str) -> ParsedAnswer:
    asked = TASK_FIELDS[task]
    body = text.strip()
    if task == "asr":
        value = _clean(_ASR_PREFIX.sub("", body))
        return ParsedAnswer(asked, transcript=value or None, source="plain" if value else "none")
    if task == "asc":
        first = next((ln for ln in body.splitlines() if ln.strip()), "")
        value = _clean(_SCENE_PREFIX.sub("", first))
        return ParsedAnswer(asked, scene=value or None, source="plain" if value else "none")
    value_events = split_events(
        re.sub(r"^\s*(?:sound\s+)?events?\s*[:\-]\s*", "", body, flags=re.I)
    )
    return ParsedAnswer(
        asked, events=value_events, source="plain" if value_events is not None else "none"
    )


def parse_sseu_answer(task: str, text: str | None) -> ParsedAnswer:
    """Parse a generated answer to ``task`` (see the module docstring for the shapes).

    Independent tasks first look for a labelled or JSON answer (models often
    add one) and otherwise take the text itself.

    Raises:
        ModelError: unknown task.
    """
    if task not in TASK_FIELDS:
        raise ModelError(f"unknown SSEU task {task!r} (known: {', '.join(TASK_FIELDS)})")
    asked = TASK_FIELDS[task]
    if text is None or not text.strip():
        return ParsedAnswer(asked)
    if task == "cot":
        section = final_section(text)
        if section is None:
            return _structured(text, asked, json_only=True)
        return _structured(section, asked)
    structured = _structured(text, asked)
    if task == "joint" or structured.source != "none":
        return structured
    return _plain(task, text)
