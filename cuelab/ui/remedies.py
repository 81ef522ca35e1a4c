"""The window's words for a core error's remedies: its switches and buttons, never CLI flags.

The core raises :class:`~cuelab.core.errors.CueLabError` with typed remedies;
the command line words them as flags (:mod:`cuelab.cli.remedies`), and this
module words them as the window's controls. A panel that can perform a remedy
(tick 'Allow pickle' and load again, resume the run) offers it as a button:
:func:`offered` picks the remedy and :func:`action_label` names the button.
"""

from __future__ import annotations

from collections.abc import Container

from cuelab.core.errors import CueLabError, Remedy, RemedyKind, one_line, remedies_of

_WORDS: dict[RemedyKind, str] = {
    RemedyKind.RESUME: "press Resume to continue it",
    RemedyKind.NEW_OUTPUT_FOLDER: "choose another run folder",
    RemedyKind.NEW_ENV_FOLDER: "choose another environment folder",
    RemedyKind.ALLOW_PICKLE: (
        "convert them to safetensors or tick 'Allow pickle' (Safety) if you trust the source"
    ),
    RemedyKind.TRUST_REMOTE_CODE: "tick 'Trust remote code' (Safety) if you trust its source",
    RemedyKind.LOAD_MODEL: "load a model or type its spec",
    RemedyKind.MODEL_SPEC: "load it as {value}",
    RemedyKind.BUILD_ENV: "press Create beside Environment (Model panel)",
    RemedyKind.CHOOSE_CONDITION: "tick a condition",
    RemedyKind.GIVE_LABELS: "or choose a label set",
    RemedyKind.SCORING_GENERATE: "choose Scoring 'generate' (Model panel)",
    RemedyKind.DEVICE_CPU: "choose Device 'cpu' (Model panel)",
    RemedyKind.QUANTIZE: "choose Quantisation nf4 or 8bit (Model panel)",
    RemedyKind.EMBEDDING_MATCHER: "map free answers with an embedding matcher (cuelab eval)",
}

#: The remedies a button can perform, and the button's text.
_ACTIONS: dict[RemedyKind, str] = {
    RemedyKind.RESUME: "Resume",
    RemedyKind.ALLOW_PICKLE: "Allow pickle and load",
    RemedyKind.TRUST_REMOTE_CODE: "Trust remote code and load",
    RemedyKind.BUILD_ENV: "Create environment",
    RemedyKind.DEVICE_CPU: "Load on cpu",
    RemedyKind.MODEL_SPEC: "Load as {value}",
    RemedyKind.SCORING_GENERATE: "Load with generate",
}


def phrase(remedy: Remedy) -> str:
    """One remedy as the window says it (``tick 'Allow pickle' (Safety) …``)."""
    return _WORDS[remedy.kind].format(value=remedy.value)


def window_text(exc: BaseException | str) -> str:
    """The one line the window shows for ``exc``: its message, then its remedies in its words.

    An error that is not CueLab's keeps its type name (it is a bug or a system
    refusal, and the name helps a report). A string passes through as it is.
    """
    if isinstance(exc, str):
        return one_line(exc)
    if isinstance(exc, CueLabError):
        message = str(exc)
    else:
        message = f"{type(exc).__name__}: {exc}"
    remedies = remedies_of(exc)
    if remedies:
        message = f"{message}; " + ", or ".join(phrase(r) for r in remedies)
    return one_line(message)


def offered(exc: BaseException, kinds: Container[RemedyKind]) -> Remedy | None:
    """The first remedy of ``exc`` that a panel able to perform ``kinds`` can offer, or None."""
    for remedy in remedies_of(exc):
        if remedy.kind in kinds and remedy.kind in _ACTIONS:
            return remedy
    return None


def action_label(remedy: Remedy) -> str:
    """The text of the button that performs ``remedy`` (``Allow pickle and load``)."""
    return _ACTIONS[remedy.kind].format(value=remedy.value)


def model_error(action: str, spec: str, exc: BaseException | str) -> str:
    """One wording for every model failure the window shows: ``model SPEC: cannot ACTION: why``.

    Raise the result ``from exc``: the core error's remedies stay reachable
    through the cause (:func:`cuelab.core.errors.remedies_of`), and the job slot
    words them when it shows the error.
    """
    return f"model {spec}: cannot {action}: {exc}"
