"""Typed errors whose ``str()`` is one line a user can act on.

The command line prints ``str(error)`` alone (the traceback goes to the log),
so every message names the thing at fault (a file, a row, a column) and the
problem.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass


class RemedyKind(enum.Enum):
    """What a user can do about an error, named once for every front end.

    The core says *what* would help; the command line words it as a flag
    (:mod:`cuelab.cli.remedies`) and the window as a switch or a button
    (:mod:`cuelab.ui.remedies`), which may also perform it.
    """

    RESUME = "resume"  # continue the run already in the folder
    NEW_OUTPUT_FOLDER = "new-output-folder"  # write the run (or set) somewhere else
    NEW_ENV_FOLDER = "new-env-folder"  # build the environment in another folder
    ALLOW_PICKLE = "allow-pickle"  # accept pickled weights (they can run code)
    TRUST_REMOTE_CODE = "trust-remote-code"  # run the checkpoint's own Python code
    LOAD_MODEL = "load-model"  # no model was given
    MODEL_SPEC = "model-spec"  # load it under another spec (value: the spec)
    BUILD_ENV = "build-env"  # build the family's environment (value: the family)
    CHOOSE_CONDITION = "choose-condition"  # no condition was given
    GIVE_LABELS = "give-labels"  # the manifest has no label set of its own
    SCORING_GENERATE = "scoring-generate"  # score by generation instead
    DEVICE_CPU = "device-cpu"  # no GPU: run on the CPU
    QUANTIZE = "quantize"  # too little memory: a smaller precision
    EMBEDDING_MATCHER = "embedding-matcher"  # map free answers with text embeddings


@dataclass(frozen=True)
class Remedy:
    """One remedy: its kind and, for some kinds, the value it needs (a family, a spec)."""

    kind: RemedyKind
    value: str | None = None


RESUME = Remedy(RemedyKind.RESUME)
NEW_OUTPUT_FOLDER = Remedy(RemedyKind.NEW_OUTPUT_FOLDER)
NEW_ENV_FOLDER = Remedy(RemedyKind.NEW_ENV_FOLDER)
ALLOW_PICKLE = Remedy(RemedyKind.ALLOW_PICKLE)
TRUST_REMOTE_CODE = Remedy(RemedyKind.TRUST_REMOTE_CODE)
LOAD_MODEL = Remedy(RemedyKind.LOAD_MODEL)
CHOOSE_CONDITION = Remedy(RemedyKind.CHOOSE_CONDITION)
GIVE_LABELS = Remedy(RemedyKind.GIVE_LABELS)
SCORING_GENERATE = Remedy(RemedyKind.SCORING_GENERATE)
DEVICE_CPU = Remedy(RemedyKind.DEVICE_CPU)
QUANTIZE = Remedy(RemedyKind.QUANTIZE)
EMBEDDING_MATCHER = Remedy(RemedyKind.EMBEDDING_MATCHER)


def build_env(family: str) -> Remedy:
    """Build (or rebuild) ``family``'s own environment."""
    return Remedy(RemedyKind.BUILD_ENV, family)


def model_spec(spec: str) -> Remedy:
    """Load the model under ``spec`` (a checkpoint of another family than the one asked)."""
    return Remedy(RemedyKind.MODEL_SPEC, spec)


class CueLabError(Exception):
    """Base class of every error CueLab reports to a user.

    ``str()`` is the problem in one line, with no front end's vocabulary;
    ``subject`` is the file, folder, model or key at fault, and ``remedies``
    the alternatives that would fix it (each front end words them, see
    :func:`remedies_of`). Both are plain attributes, so the error pickles
    across processes and crosses threads as an object.
    """

    def __init__(
        self,
        message: str = "",
        *,
        subject: object = None,
        remedy: Remedy | Sequence[Remedy] | None = None,
    ) -> None:
        super().__init__(message)
        self.subject = subject
        if remedy is None:
            self.remedies: tuple[Remedy, ...] = ()
        elif isinstance(remedy, Remedy):
            self.remedies = (remedy,)
        else:
            self.remedies = tuple(remedy)

    @property
    def remedy(self) -> Remedy | None:
        """The first remedy, or None."""
        return self.remedies[0] if self.remedies else None


def remedies_of(exc: BaseException) -> tuple[Remedy, ...]:
    """The remedies of ``exc`` or of the first error it was raised ``from`` that has some.

    A front end that wraps a core error (``raise ModelError(...) from exc``)
    keeps the core's remedy this way without copying it.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = getattr(current, "remedies", ())
        if found:
            return tuple(found)
        current = current.__cause__
    return ()


class AudioError(CueLabError):
    """An audio file is missing, undecodable, empty, non-finite, too short or too long."""


class FeatureError(CueLabError):
    """Feature extraction failed for a clip."""


class NormsError(CueLabError):
    """A norms profile is missing, malformed or of an unknown schema version."""


class TokenError(CueLabError):
    """A concept-token set or token text is invalid."""


class ManifestError(CueLabError):
    """A manifest is unreadable, or a row has a bad value (the message names row and column)."""


class ModelError(CueLabError):
    """A model cannot be found, loaded or run."""


class ReportError(CueLabError):
    """A run folder cannot be reported (missing or malformed predictions)."""


class Cancelled(CueLabError):
    """A job was cancelled by its caller."""


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped, so it stays one line.

    File names may hold a newline, a carriage return or a NUL byte; a message
    that names such a file must still be one line on a terminal and in a log.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else _escape(c) for c in text)


def _escape(c: str) -> str:
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}
    if c in named:
        return named[c]
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
