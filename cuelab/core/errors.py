"""Typed errors whose ``str()`` is one line a user can act on.

The command line prints ``str(error)`` alone (the traceback goes to the log),
so every message names the thing at fault (a file, a row, a column) and the
problem.
"""

from __future__ import annotations


class CueLabError(Exception):
    """Base class of every error CueLab reports to a user."""


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
