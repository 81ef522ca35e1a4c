"""What each run-configuration key may hold, declared as data, and the messages made from it.

scikit-learn declares each estimator's ``_parameter_constraints`` (a type, an
interval, a set of options) and generates every validation message from that
table, so a new parameter is one line and every message has one shape. A run
configuration does the same here: :data:`PARAMETER_CONSTRAINTS` holds the
rules every run obeys, :data:`SSEU_CONSTRAINTS` those of speech/scene/event
runs, and :func:`check` turns the first broken rule into a
:class:`~cuelab.core.runs.config.RunConfigError` (``run configuration: limit
must be at least 1``). Rules that relate several keys in ways a table would
only obscure (a condition listed twice once parsed, the sampling defaults, the
edits) stay as code in :mod:`cuelab.core.runs.config`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cuelab.core import errors
from cuelab.core.errors import CueLabError, Remedy
from cuelab.core.models.base import DEVICE_CHOICES, LABEL_SCORES, QUANT_CHOICES
from cuelab.core.models.remote.spec import SCORING_CHOICES

PREFIX = "run configuration: "


@dataclass(frozen=True)
class NotEmpty:
    """A sequence with at least one item; ``message`` says what is missing."""

    message: str
    remedy: Remedy | None = None

    def problem(self, key: str, value: Any) -> str | None:
        return None if value else self.message


@dataclass(frozen=True)
class Distinct:
    """No item listed twice."""

    message: str

    def problem(self, key: str, value: Any) -> str | None:
        return self.message if len(set(value)) != len(value) else None


@dataclass(frozen=True)
class AtLeast:
    """A whole number of at least ``low`` (None passes: the key's "decide for me")."""

    low: int
    unit: str = ""  # "resample": "bootstrap must be at least 1 resample"

    def problem(self, key: str, value: Any) -> str | None:
        if value is None or value >= self.low:
            return None
        return f"{key} must be at least {self.low}" + (f" {self.unit}" if self.unit else "")


@dataclass(frozen=True)
class EachAtLeast:
    """Every item a whole number of at least ``low``."""

    low: int

    def problem(self, key: str, value: Any) -> str | None:
        if all(v >= self.low for v in value):
            return None
        return f"{key} must be {self.low} or more"


@dataclass(frozen=True)
class OneOf:
    """One of ``choices``: ``quant 'x' is not one of auto, nf4, …`` (two: ``is not a or b``)."""

    choices: tuple[str, ...]

    def problem(self, key: str, value: Any) -> str | None:
        if value in self.choices:
            return None
        if len(self.choices) == 2:
            return f"{key} '{value}' is not {self.choices[0]} or {self.choices[1]}"
        return f"{key} '{value}' is not one of {', '.join(self.choices)}"


@dataclass(frozen=True)
class EachOneOf:
    """Every item one of ``choices``; ``message`` is formatted with the first bad ``item``."""

    choices: tuple[str, ...]
    message: str

    def problem(self, key: str, value: Any) -> str | None:
        bad = [item for item in value if item not in self.choices]
        return self.message.format(item=bad[0]) if bad else None


@dataclass(frozen=True)
class SseuOnly:
    """Only a speech/scene/event run may change this key from ``default``."""

    default: Any
    why: str = ""

    def problem(self, key: str, value: Any) -> str | None:
        if value == self.default:
            return None
        return f"'{key}' is for speech/scene/event runs" + (f"; {self.why}" if self.why else "")


Constraint = NotEmpty | Distinct | AtLeast | EachAtLeast | OneOf | EachOneOf | SseuOnly

#: Every run: key → its constraints, checked in this order (the first broken one is reported).
PARAMETER_CONSTRAINTS: dict[str, tuple[Constraint, ...]] = {
    "models": (NotEmpty("no model given", errors.LOAD_MODEL), Distinct("a model is listed twice")),
    "conditions": (NotEmpty("no condition given", errors.CHOOSE_CONDITION),),
    "seeds": (
        NotEmpty("seeds must not be empty"),
        Distinct("a seed is listed twice"),
        EachAtLeast(0),
    ),
    "bootstrap": (AtLeast(1, "resample"),),
    "limit": (AtLeast(1),),
    "quant": (OneOf(QUANT_CHOICES),),
    "device": (OneOf(DEVICE_CHOICES),),
    "scoring": (OneOf(SCORING_CHOICES),),
    "label_score": (OneOf(LABEL_SCORES),),
    "concurrency": (AtLeast(1),),
    "threads": (AtLeast(1),),
    "workers": (AtLeast(1),),
}

#: Emotion runs: the SSEU-only keys keep their defaults.
EMOTION_CONSTRAINTS: dict[str, tuple[Constraint, ...]] = {
    "answers": (SseuOnly("closed"),),
    "matcher": (SseuOnly("lexical", "an emotion run has no free answers to match"),),
}

#: Speech/scene/event runs.
SSEU_CONSTRAINTS: dict[str, tuple[Constraint, ...]] = {
    "sseu_tasks": (
        EachOneOf(("asr", "asc", "at"), "unknown SSEU task '{item}' (asr, asc, at, joint, cot)"),
        Distinct("an SSEU task is listed twice"),
    ),
    "answers": (OneOf(("open", "closed")),),
    "max_new_tokens": (AtLeast(1),),
    "cot_max_new_tokens": (AtLeast(1),),
}


def check(
    values: Callable[[str], Any] | Mapping[str, Any],
    table: Mapping[str, Sequence[Constraint]],
    error: Callable[..., CueLabError],
) -> None:
    """Raise ``error`` for the first value that breaks its key's constraints in ``table``.

    Args:
        values: a key's value, by name (a mapping, or a getter such as ``getattr`` bound).
        table: key → constraints, in the order to check.
        error: the exception type, called with the message and ``subject``/``remedy``.
    """
    get = values.__getitem__ if isinstance(values, Mapping) else values
    for key, constraints in table.items():
        value = get(key)
        for constraint in constraints:
            problem = constraint.problem(key, value)
            if problem is not None:
                remedy = getattr(constraint, "remedy", None)
                raise error(PREFIX + problem, subject=key, remedy=remedy)
