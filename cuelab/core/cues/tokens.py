"""Concept vocabularies, the :class:`TokenSet` type and its text form.

A token set maps some of the six concepts to one token each, always in the
canonical concept order. Its text form is what is appended to a model's
prompt; the format is an editable :class:`TokenTemplate` (default
``ENERGY=HIGH PITCH=LOW ...``) and :meth:`TokenTemplate.parse` reads it back,
so the text a user edits in the window or passes with ``--tokens`` is the
same object the runner sends.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from cuelab.core.errors import TokenError

CONCEPTS: tuple[str, ...] = (
    "ENERGY",
    "PITCH",
    "BRIGHTNESS",
    "DYNAMICS",
    "FORMANTS",
    "VOICE_QUALITY",
)

_LEVELS = ("VERY_LOW", "LOW", "MID", "HIGH", "VERY_HIGH")

VOCAB: dict[str, tuple[str, ...]] = {
    "ENERGY": _LEVELS,
    "PITCH": _LEVELS,
    "BRIGHTNESS": ("VERY_DARK", "DARK", "MID", "BRIGHT", "VERY_BRIGHT"),
    "DYNAMICS": ("VERY_STATIC", "STATIC", "MID", "DYNAMIC", "VERY_DYNAMIC"),
    "FORMANTS": _LEVELS,
    "VOICE_QUALITY": ("MODAL", "BREATHY", "PRESSED", "ROUGH", "CREAKY", "UNVOICED"),
}

#: Concepts whose vocabulary is an ordered five-level scale.
ORDINAL_CONCEPTS: tuple[str, ...] = tuple(c for c in CONCEPTS if len(VOCAB[c]) == 5)


def check_concept(concept: str) -> str:
    """Return ``concept`` upper-cased, or raise :class:`TokenError` naming the valid ones."""
    name = concept.strip().upper()
    if name not in VOCAB:
        raise TokenError(f"unknown concept '{concept}' (expected one of {', '.join(CONCEPTS)})")
    return name


class TokenSet(Mapping[str, str]):
    """An immutable, validated mapping concept → token in canonical order.

    A token set may hold fewer than six concepts (single-concept ablation
    drops one), never an unknown concept or a token outside its vocabulary.
    """

    __slots__ = ("_items",)

    def __init__(self, tokens: Mapping[str, str]) -> None:
        clean: dict[str, str] = {}
        for concept, token in tokens.items():
            name = check_concept(concept)
            value = str(token).strip().upper()
            if value not in VOCAB[name]:
                raise TokenError(
                    f"'{token}' is not a {name} token (expected one of {' '.join(VOCAB[name])})"
                )
            clean[name] = value
        self._items: tuple[tuple[str, str], ...] = tuple(
            (c, clean[c]) for c in CONCEPTS if c in clean
        )

    def __getitem__(self, concept: str) -> str:
        for c, t in self._items:
            if c == concept:
                return t
        raise KeyError(concept)

    def __iter__(self) -> Iterator[str]:
        return (c for c, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TokenSet):
            return self._items == other._items
        if isinstance(other, Mapping):
            return dict(self._items) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"TokenSet({self.text()!r})"

    def replace(self, **changes: str) -> TokenSet:
        """Return a copy with some concepts set to other tokens."""
        return TokenSet({**dict(self._items), **changes})

    def without(self, concept: str) -> TokenSet:
        """Return a copy with one concept dropped."""
        name = check_concept(concept)
        return TokenSet({c: t for c, t in self._items if c != name})

    def text(self, template: TokenTemplate | None = None) -> str:
        """Serialise with ``template`` (default: ``ENERGY=HIGH PITCH=LOW ...``)."""
        return (template or DEFAULT_TEMPLATE).format(self)

    def to_dict(self) -> dict[str, str]:
        """Plain dict in canonical order (JSON-ready)."""
        return dict(self._items)


@dataclass(frozen=True)
class TokenTemplate:
    """How a token set becomes prompt text, and how that text is read back.

    ``item`` must contain ``{concept}`` and ``{token}``; items are joined with
    ``sep`` and wrapped in ``prefix``/``suffix``. A template file holds the
    ``item`` line, optionally followed by ``sep=...``, ``prefix=...`` and
    ``suffix=...`` lines.
    """

    item: str = "{concept}={token}"
    sep: str = " "
    prefix: str = ""
    suffix: str = ""
    lowercase: bool = False

    def __post_init__(self) -> None:
        if "{concept}" not in self.item or "{token}" not in self.item:
            raise TokenError(
                f"token template item '{self.item}' must contain {{concept}} and {{token}}"
            )

    def format(self, tokens: TokenSet) -> str:
        """Render ``tokens`` as prompt text."""
        parts = []
        for concept, token in tokens.items():
            c, t = (concept.lower(), token.lower()) if self.lowercase else (concept, token)
            parts.append(self.item.replace("{concept}", c).replace("{token}", t))
        return f"{self.prefix}{self.sep.join(parts)}{self.suffix}"

    def parse(self, text: str) -> TokenSet:
        """Read token text back (lenient about case and spacing).

        Raises:
            TokenError: when the text names an unknown concept or token,
                repeats a concept, or contains nothing recognisable.
        """
        body = text.strip()
        if self.prefix.strip() and body.startswith(self.prefix.strip()):
            body = body[len(self.prefix.strip()) :]
        if self.suffix.strip() and body.endswith(self.suffix.strip()):
            body = body[: -len(self.suffix.strip())]
        pattern = _item_regex(self.item)
        found: dict[str, str] = {}
        leftover: list[str] = []
        last = 0
        for match in pattern.finditer(body):
            leftover.append(body[last : match.start()])
            last = match.end()
            concept = check_concept(match.group("concept"))
            if concept in found:
                raise TokenError(f"concept {concept} appears twice in token text '{text}'")
            found[concept] = match.group("token")
        leftover.append(body[last:])
        if not found:
            raise TokenError(f"no concept tokens found in '{text}' (expected e.g. ENERGY=HIGH)")
        junk = [
            piece.strip(" \t\n,;" + self.sep)
            for piece in leftover
            if piece.strip(" \t\n,;" + self.sep)
        ]
        if junk:
            raise TokenError(f"cannot read '{junk[0]}' in token text '{text}'")
        return TokenSet(found)

    @classmethod
    def from_file(cls, path: str | Path) -> TokenTemplate:
        """Load a template file (see the class docstring for its format)."""
        p = Path(path)
        try:
            lines = p.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise TokenError(f"{p}: cannot read token template ({exc.strerror})") from exc
        lines = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
        if not lines:
            raise TokenError(f"{p}: token template is empty")
        fields: dict[str, str] = {}
        for ln in lines[1:]:
            key, _, value = ln.partition("=")
            if key.strip() not in ("sep", "prefix", "suffix"):
                raise TokenError(f"{p}: unknown template setting '{key.strip()}'")
            fields[key.strip()] = value.replace("\\n", "\n").replace("\\t", "\t")
        return cls(
            item=lines[0].rstrip("\n"),
            sep=fields.get("sep", " "),
            prefix=fields.get("prefix", ""),
            suffix=fields.get("suffix", ""),
        )


def _item_regex(item: str) -> re.Pattern[str]:
    """Regex for one item of ``item``, with flexible whitespace around literals."""
    pieces = re.split(r"(\{concept\}|\{token\})", item)
    out = []
    for piece in pieces:
        if piece == "{concept}":
            out.append(r"(?P<concept>[A-Za-z_]+)")
        elif piece == "{token}":
            out.append(r"(?P<token>[A-Za-z_]+)")
        elif piece.strip():
            out.append(r"\s*" + re.escape(piece.strip()) + r"\s*")
        elif piece:
            out.append(r"\s+")
    return re.compile("".join(out))


DEFAULT_TEMPLATE = TokenTemplate()


def parse_tokens(text: str, template: TokenTemplate | None = None) -> TokenSet:
    """Parse token text with ``template`` (default ``ENERGY=HIGH ...``)."""
    return (template or DEFAULT_TEMPLATE).parse(text)
