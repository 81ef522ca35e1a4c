"""The command line's words for a core error's remedies: each remedy as the flag that applies it.

The core's messages name the problem and carry typed remedies
(:class:`cuelab.core.errors.Remedy`); this module is the only place that knows
which flag or command performs each one, so ``cuelab: error: …; add --resume to
continue it`` is built here, and the window words the same remedy as its own
switch or button (:mod:`cuelab.ui.remedies`).
"""

from __future__ import annotations

from cuelab.core.errors import Remedy, RemedyKind, one_line, remedies_of

_PHRASES: dict[RemedyKind, str] = {
    RemedyKind.RESUME: "add --resume to continue it",
    RemedyKind.NEW_OUTPUT_FOLDER: "choose another --out",
    RemedyKind.NEW_ENV_FOLDER: "choose another --dir",
    RemedyKind.ALLOW_PICKLE: (
        "convert them to safetensors or pass --allow-pickle if you trust the source"
    ),
    RemedyKind.TRUST_REMOTE_CODE: "pass --trust-remote-code if you trust its source",
    RemedyKind.LOAD_MODEL: "give one with --model SPEC",
    RemedyKind.MODEL_SPEC: "use --model {value}",
    RemedyKind.BUILD_ENV: "run: cuelab env create {value}",
    RemedyKind.CHOOSE_CONDITION: "give them with --conditions LIST",
    RemedyKind.GIVE_LABELS: "or give the label set with --labels",
    RemedyKind.SCORING_GENERATE: "use --scoring generate",
    RemedyKind.DEVICE_CPU: "use --device cpu",
    RemedyKind.QUANTIZE: "try --quant nf4 or 8bit",
    RemedyKind.EMBEDDING_MATCHER: (
        "add --matcher openai-embeddings:URL#MODEL (the paper's: "
        "openai-embeddings:https://api.openai.com/v1#text-embedding-3-large) "
        "or --matcher embeddings:FOLDER"
    ),
}


def phrase(remedy: Remedy) -> str:
    """One remedy as the command line says it (``add --resume to continue it``)."""
    return _PHRASES[remedy.kind].format(value=remedy.value)


def advice(remedies: tuple[Remedy, ...]) -> str:
    """Alternatives joined as one clause: ``add --resume to continue it, or choose another --out``."""
    return ", or ".join(phrase(r) for r in remedies)


def cli_text(exc: BaseException) -> str:
    """The one line ``cuelab: error:`` prints for ``exc``: its message, then its remedies."""
    message = str(exc)
    remedies = remedies_of(exc)
    if remedies:
        message = f"{message}; {advice(remedies)}"
    return one_line(message)


def with_advice(text: str, remedy: Remedy | None) -> str:
    """``text`` followed by ``remedy``'s flag, for messages that are not exceptions (env list)."""
    return f"{text}; {phrase(remedy)}" if remedy is not None else text
