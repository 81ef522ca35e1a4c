"""The JSON-lines protocol between CueLab and a model worker (both sides import this).

This module is copied into nobody's namespace: CueLab imports it as
``cuelab.core.models.isolated.protocol`` and the worker, started as a script
inside a family's own environment, imports it as plain ``protocol``. So it is
standard library only and written for Python 3.8, the oldest interpreter a
family's recipe may use.

One request per line on the worker's stdin, one response per line on its
stdout, UTF-8 JSON, nothing else on stdout (the worker moves ``sys.stdout``
and file descriptor 1 to stderr before it imports any model code)::

    {"id": 3, "op": "score_labels", "args": {...}}
    {"id": 3, "ok": true, "result": {...}}
    {"id": 3, "ok": false, "error": "one line", "kind": "model"}

Operations: ``hello`` (protocol version, Python, installed packages),
``load``, ``score_labels``, ``embed_audio``, ``embed_text``, ``generate`` and
``close``. Audio travels as little-endian float32 samples in base64
(``{"b64": ..., "sr": 48000}``) or as a file path (``{"path": ..., "sr": 48000}``).
"""

from __future__ import annotations

import base64
import json
import struct
import sys
from typing import Any, Dict, List, Optional, Tuple

#: Bumped when a message changes shape; both sides refuse a different version.
PROTOCOL_VERSION = 1

OPS = ("hello", "load", "score_labels", "embed_audio", "embed_text", "generate", "close")

#: Error kinds a response can carry.
ERROR_KINDS = ("model", "request", "internal")

#: A line longer than this is not a protocol line (64 MiB: ~5 min of 48 kHz audio in base64).
MAX_LINE = 64 * 1024 * 1024


class ProtocolError(Exception):
    """A line that is not a well-formed message of this protocol."""


def encode(message: Dict[str, Any]) -> bytes:
    """One message as a line of UTF-8 JSON (no newline inside, one at the end)."""
    return (json.dumps(message, ensure_ascii=True, allow_nan=False) + "\n").encode("ascii")


def decode(line: bytes) -> Dict[str, Any]:
    """Parse one line into a message.

    Raises:
        ProtocolError: not JSON, not an object, or too long.
    """
    if len(line) > MAX_LINE:
        raise ProtocolError("line of %d bytes is longer than the protocol allows" % len(line))
    text = line.decode("utf-8", errors="replace").strip()
    try:
        message = json.loads(text)
    except ValueError:
        raise ProtocolError("not a protocol line: %r" % text[:120]) from None
    if not isinstance(message, dict):
        raise ProtocolError("not a protocol message: %r" % text[:120])
    return message


def request(ident: int, op: str, args: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """A request message."""
    if op not in OPS:
        raise ValueError("unknown operation %r" % op)
    return {"id": ident, "op": op, "args": args or {}}


def ok(ident: Any, result: Dict[str, Any]) -> Dict[str, Any]:
    """A successful response."""
    return {"id": ident, "ok": True, "result": result}


def error(
    ident: Any, message: str, kind: str = "model", remedy: Optional[str] = None
) -> Dict[str, Any]:
    """A failed response; ``message`` is folded onto one line.

    ``remedy`` (optional) is a :class:`cuelab.core.errors.RemedyKind` value
    (``allow-pickle``, ``trust-remote-code``): CueLab words it for the user, so
    the worker's message names no command-line flag.
    """
    line = " ".join(str(message).split()) or "unknown error"
    out: Dict[str, Any] = {"id": ident, "ok": False, "error": line[:2000], "kind": kind}
    if remedy:
        out["remedy"] = str(remedy)
    return out


def check_response(message: Dict[str, Any], ident: int) -> Tuple[bool, Any]:
    """``(ok, result or error line)`` of a response to request ``ident``.

    Raises:
        ProtocolError: the response answers another request or lacks its fields.
    """
    if message.get("id") != ident:
        raise ProtocolError(
            "response to request %r while waiting for %r" % (message.get("id"), ident)
        )
    if message.get("ok") is True and isinstance(message.get("result"), dict):
        return True, message["result"]
    if message.get("ok") is False and isinstance(message.get("error"), str):
        return False, message["error"]
    raise ProtocolError("malformed response: %r" % str(message)[:120])


def audio_payload(samples: bytes, sr: int) -> Dict[str, Any]:
    """Audio as base64 of little-endian float32 samples (``samples`` already in that layout)."""
    if len(samples) % 4:
        raise ValueError("float32 audio must be a multiple of 4 bytes")
    return {"b64": base64.b64encode(samples).decode("ascii"), "sr": int(sr)}


def audio_from_payload(payload: Dict[str, Any]) -> Tuple[Optional[bytes], Optional[str], int]:
    """``(float32 bytes or None, path or None, sample rate)`` of an audio payload.

    Raises:
        ProtocolError: neither ``b64`` nor ``path``, or no positive ``sr``.
    """
    if not isinstance(payload, dict):
        raise ProtocolError("audio must be an object with b64 or path")
    sr = payload.get("sr")
    if not isinstance(sr, int) or sr <= 0:
        raise ProtocolError("audio needs a positive integer sample rate 'sr'")
    if isinstance(payload.get("b64"), str):
        data = base64.b64decode(payload["b64"].encode("ascii"), validate=True)
        if len(data) % 4:
            raise ProtocolError("audio bytes are not float32 samples")
        return data, None, sr
    if isinstance(payload.get("path"), str):
        return None, payload["path"], sr
    raise ProtocolError("audio must carry b64 or path")


def floats_from_bytes(data: bytes) -> List[float]:
    """Little-endian float32 bytes as Python floats (for workers without numpy at hand)."""
    return list(struct.unpack("<%df" % (len(data) // 4), data))


def python_version() -> str:
    """This interpreter's version, e.g. ``3.11.7``."""
    return "%d.%d.%d" % sys.version_info[:3]
