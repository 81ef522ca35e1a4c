"""Speech emotion recognition as a task: its label sets.

A generated answer is mapped to one of them by
:func:`cuelab.core.models.scoring.parse_answer` (a model that can only generate,
such as a remote server without log-probabilities, needs it below the tasks).
"""

from __future__ import annotations

from collections.abc import Sequence

from cuelab.core.errors import ModelError

#: IEMOCAP's four classes: the default label set of a task prompt.
IEMOCAP_LABELS: tuple[str, ...] = ("angry", "happy", "neutral", "sad")

LABEL_SETS: dict[str, tuple[str, ...]] = {
    "iemocap": IEMOCAP_LABELS,
    "aibo": ("angry", "emphatic", "neutral", "positive", "rest"),
}


def parse_labels(spec: str | Sequence[str]) -> tuple[str, ...]:
    """Return a label set from a name (``iemocap``, ``aibo``) or a comma-separated list.

    Raises:
        ModelError: the list is empty or has duplicates.
    """
    if not isinstance(spec, str):
        labels = tuple(str(label).strip() for label in spec)
    elif spec.strip().lower() in LABEL_SETS:
        return LABEL_SETS[spec.strip().lower()]
    else:
        labels = tuple(part.strip() for part in spec.split(","))
    labels = tuple(label for label in labels if label)
    if not labels:
        raise ModelError(f"label set {spec!r} is empty; use iemocap, aibo or a,b,c")
    if len(set(labels)) != len(labels):
        raise ModelError(f"label set {spec!r} has duplicate labels")
    return labels
