"""Prompt templates: the instructions the emotion task gives a model.

Templates are plain text files in ``assets/prompts`` so that users can edit
the wording without touching code. A task has two templates: the audio-only
instruction (``{labels}`` placeholder) and the same instruction with the
concept tokens appended *after* it (``{tokens}`` placeholder). Keeping the
token line last means every token variant of a clip shares the prefix
"audio + instruction", which the model adapters encode once per clip.

A :class:`TaskPrompt` renders into the requests the adapters answer
(:mod:`cuelab.core.models.capabilities`); the models below see it only as a
``PromptTemplate``. The label sets are :mod:`cuelab.core.tasks.emotion`'s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cuelab.core.errors import ModelError
from cuelab.core.paths import assets_dir
from cuelab.core.tasks.emotion import IEMOCAP_LABELS, LABEL_SETS, parse_labels


@dataclass(frozen=True)
class TaskPrompt:
    """An instruction with and without concept tokens: what an adapter is asked.

    The task layer fills it from template files (:func:`load_task`,
    :mod:`cuelab.core.tasks.sseu.prompts`) and renders it into requests; adapters
    see the rendered text.

    Attributes:
        name: task name (``ser``).
        audio_only: template with ``{labels}``.
        with_tokens: template with ``{labels}`` and ``{tokens}``; it should start with the
            audio-only text so that token variants share a prefix.
        labels: the default label set.
    """

    name: str
    audio_only: str
    with_tokens: str
    labels: tuple[str, ...] = IEMOCAP_LABELS

    def render(self, labels: Sequence[str] | None = None, token_text: str | None = None) -> str:
        """Return the instruction text for ``labels``, with the token line when given."""
        label_text = ", ".join(labels if labels is not None else self.labels)
        if token_text is None or not token_text.strip():
            return self.audio_only.format(labels=label_text)
        return self.with_tokens.format(labels=label_text, tokens=token_text.strip())

    def digest(self) -> str:
        """A short hash of the templates, for run provenance and cache keys."""
        text = "\x00".join((self.name, self.audio_only, self.with_tokens))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


PROMPTS_DIR = assets_dir() / "prompts"

# Task name -> (audio-only template file, with-tokens template file).
TASKS: dict[str, tuple[str, str]] = {
    "ser": ("ser_audio_only.txt", "ser_with_tokens.txt"),
    "ser_rationale": ("ser_rationale.txt", "ser_rationale_with_tokens.txt"),
}


def _read_template(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").rstrip("\n")
    except OSError as exc:
        raise ModelError(f"prompt template {path} cannot be read: {exc.strerror}") from exc


def load_task(
    name: str = "ser",
    labels: Sequence[str] | str | None = None,
    prompts_dir: Path | str | None = None,
) -> TaskPrompt:
    """Load a task's templates from ``prompts_dir`` (``assets/prompts`` by default).

    Raises:
        ModelError: unknown task, unreadable file, or a template without its placeholders.
    """
    if name not in TASKS:
        raise ModelError(f"unknown prompt task {name!r} (known: {', '.join(sorted(TASKS))})")
    folder = Path(prompts_dir) if prompts_dir is not None else PROMPTS_DIR
    audio_file, tokens_file = TASKS[name]
    audio_only = _read_template(folder / audio_file)
    with_tokens = _read_template(folder / tokens_file)
    if "{labels}" not in audio_only:
        raise ModelError(f"prompt template {folder / audio_file} has no {{labels}} placeholder")
    if "{tokens}" not in with_tokens:
        raise ModelError(f"prompt template {folder / tokens_file} has no {{tokens}} placeholder")
    label_set = parse_labels(labels) if labels is not None else LABEL_SETS["iemocap"]
    return TaskPrompt(name=name, audio_only=audio_only, with_tokens=with_tokens, labels=label_set)


__all__ = ["PROMPTS_DIR", "TASKS", "TaskPrompt", "load_task"]
