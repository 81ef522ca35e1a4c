"""SSEU tasks as :class:`~cuelab.core.tasks.prompts.TaskPrompt` objects.

Five tasks: ``asr``, ``asc`` and ``at`` ask one question each (independent),
``joint`` asks all three for one structured answer, and ``cot`` asks for the
same answer after five reasoning steps (energy and onset, transcript, scene
candidates, event candidates, correction and final answer).

The wording lives in ``assets/prompts/sseu_<task>.txt`` with ``{scenes}`` and
``{events}`` placeholders. A task is turned into an ordinary ``TaskPrompt``
so every model adapter can run it unchanged: the task's main class list
(scenes for ``asc``/``joint``/``cot``, events for ``at``) becomes the
prompt's ``{labels}`` (so closed-set label scoring works for ASC and AT), the
other list is written in, and literal braces (the JSON example) are escaped
for ``str.format``. Class names are shown with spaces for underscores
(``car_passing`` → ``car passing``); the matchers map answers back.

Two answer styles (``answers``): ``closed`` lists the classes in the prompt
(``sseu_<task>.txt``); ``open`` asks for the scene and the events in the
model's own words without listing any class (``sseu_<task>_open.txt``), as
SSEU-Bench does ("we do not require them to generate pre-defined labels"),
so the answers must be mapped by an embedding matcher. The wording of both
is CueLab's own: the paper's prompts are published only on its website.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cuelab.core.errors import ModelError
from cuelab.core.tasks.prompts import PROMPTS_DIR, TaskPrompt

SSEU_TASKS = ("asr", "asc", "at", "joint", "cot")
INDEPENDENT_TASKS = ("asr", "asc", "at")
# The answer fields each task asks for.
TASK_FIELDS: dict[str, tuple[str, ...]] = {
    "asr": ("transcript",),
    "asc": ("scene",),
    "at": ("events",),
    "joint": ("transcript", "scene", "events"),
    "cot": ("transcript", "scene", "events"),
}
#: The tasks the zero-shot mode (audio–text similarity, no text answer) can ask, with
#: the field each answers: scenes by a softmax, events by confidences; never speech.
ZERO_SHOT_FIELDS: tuple[tuple[str, str], ...] = (("asc", "scene"), ("at", "events"))


def zero_shot_tasks(asked: Sequence[str]) -> tuple[str, ...]:
    """The zero-shot mode's tasks for the answer fields a run ``asked`` (may be none)."""
    return tuple(task for task, f in ZERO_SHOT_FIELDS if f in asked)


# Placeholder that becomes ``{labels}`` and the one written in, per task.
_PLACEHOLDERS: dict[str, tuple[str | None, str | None]] = {
    "asr": (None, None),
    "asc": ("{scenes}", None),
    "at": ("{events}", None),
    "joint": ("{scenes}", "{events}"),
    "cot": ("{scenes}", "{events}"),
}
TOKEN_LINE = "\nAcoustic concept tokens: {tokens}"
ANSWER_STYLES = ("closed", "open")
PROMPT_PROVENANCE = (
    "CueLab's own prompt wording (assets/prompts/sseu_*.txt); the SSEU-Bench paper's "
    "prompts are published only on its website and are not reproduced"
)


def display_label(label: str) -> str:
    """How a class name is shown to a model: underscores become spaces."""
    return " ".join(label.replace("_", " ").split())


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def template_path(
    task: str, prompts_dir: str | Path | None = None, answers: str = "closed"
) -> Path:
    """The template file of ``task`` (``asr`` has one file for both answer styles)."""
    suffix = "_open" if answers == "open" and task != "asr" else ""
    return Path(prompts_dir or PROMPTS_DIR) / f"sseu_{task}{suffix}.txt"


def load_sseu_task(
    task: str,
    scenes: Sequence[str] = (),
    events: Sequence[str] = (),
    prompts_dir: str | Path | None = None,
    answers: str = "closed",
) -> TaskPrompt:
    """Build the :class:`TaskPrompt` of an SSEU task for the given class lists.

    Args:
        task: one of :data:`SSEU_TASKS`.
        scenes: the scene classes offered (needed by ``asc``, ``joint``, ``cot``).
        events: the event classes offered (needed by ``at``, ``joint``, ``cot``).
        prompts_dir: folder of the ``sseu_*.txt`` templates (default ``assets/prompts``).
        answers: ``closed`` (the classes are listed) or ``open`` (free answers; no list).

    Returns:
        A prompt whose ``render()`` gives the instruction; its ``labels`` are
        the displayed main class list (empty for ``asr``).

    Raises:
        ModelError: unknown task, unreadable template, a template missing a
            placeholder, or an empty class list the task needs.
    """
    if task not in SSEU_TASKS:
        raise ModelError(f"unknown SSEU task {task!r} (known: {', '.join(SSEU_TASKS)})")
    if answers not in ANSWER_STYLES:
        raise ModelError(f"unknown answer style {answers!r} (open or closed)")
    path = template_path(task, prompts_dir, answers)
    try:
        text = path.read_text(encoding="utf-8").rstrip("\n")
    except OSError as exc:
        raise ModelError(f"prompt template {path} cannot be read: {exc.strerror}") from exc
    lists = {
        "{scenes}": [display_label(s) for s in scenes],
        "{events}": [display_label(e) for e in events],
    }
    main, other = _PLACEHOLDERS[task] if answers == "closed" else (None, None)
    for placeholder in (main, other):
        if placeholder is None:
            continue
        if placeholder not in text:
            raise ModelError(f"prompt template {path} has no {placeholder} placeholder")
        if not lists[placeholder]:
            raise ModelError(f"SSEU task {task!r} needs a non-empty {placeholder[1:-1]} list")
    parts = text.split(main) if main else [text]
    body = "{labels}".join(_escape(p) for p in parts)
    if other is not None:
        body = body.replace(_escape(other), _escape(", ".join(lists[other])))
    labels = tuple(lists[main]) if main else ()
    if answers == "open":
        for placeholder in ("{scenes}", "{events}", "{labels}"):
            if placeholder in text:
                raise ModelError(
                    f"open-answer template {path} must not list classes ({placeholder})"
                )
    return TaskPrompt(
        name=f"sseu_{task}" + ("_open" if answers == "open" and task != "asr" else ""),
        audio_only=body,
        with_tokens=body + TOKEN_LINE,
        labels=labels,
    )


def load_sseu_tasks(
    tasks: Sequence[str],
    scenes: Sequence[str],
    events: Sequence[str],
    prompts_dir: str | Path | None = None,
    answers: str = "closed",
) -> dict[str, TaskPrompt]:
    """:func:`load_sseu_task` for several tasks, keyed by task name."""
    return {t: load_sseu_task(t, scenes, events, prompts_dir, answers) for t in tasks}


def tasks_for_mode(joint: bool = False, cot: bool = False) -> tuple[str, ...]:
    """The tasks one evaluation mode runs: the three independent ones, ``joint`` or ``cot``."""
    if cot:
        return ("cot",)
    if joint:
        return ("joint",)
    return INDEPENDENT_TASKS
