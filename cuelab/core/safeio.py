"""Safe writes: atomic file replacement and spreadsheet-safe CSV cells.

Every file CueLab writes as a result (audio, features cache entries, norms
profiles, models, manifests, run tables, annotations) goes through
:func:`atomic_path` / :func:`atomic_write_text`: the content is written to a
temporary file in the same folder and renamed over the target, so a crash or
a full disk leaves the previous version, never a truncated one.

A CSV cell that a spreadsheet would read as a formula (it starts with ``=``,
``+``, ``-`` or ``@`` and is not a number, or with a tab or a carriage
return) is *neutralised* by a leading single quote, the OWASP advice against
CSV injection. The encoding is reversible (:func:`restore` undoes it; a cell
that merely looks neutralised gets a second quote), so CueLab reads its own
files back exactly.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

FORMULA_START = ("=", "+", "-", "@")
CONTROL_START = ("\t", "\r")
# A plain number (``-3.5``, ``+1e3``, ``-inf``) is data, not a formula.
_NUMBER = re.compile(r"^[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf(inity)?|nan)$", re.IGNORECASE)


def _dangerous(text: str) -> bool:
    if not text:
        return False
    if text.startswith(CONTROL_START):
        return True
    return text.startswith(FORMULA_START) and not _NUMBER.match(text)


def _quoted(text: str) -> bool:
    """True when ``text`` is the neutralised form of some other cell."""
    return text.startswith("'") and (_dangerous(text[1:]) or _quoted(text[1:]))


def neutralise(value: object) -> str:
    """The cell text of ``value``, with a leading quote if it could run as a formula.

    Numbers (``-0.5``, ``+3``, ``-inf``) are left alone; ``None`` becomes an empty cell.
    """
    text = "" if value is None else str(value)
    return "'" + text if _dangerous(text) or _quoted(text) else text


def restore(cell: str) -> str:
    """Undo :func:`neutralise` (the inverse for every string)."""
    return cell[1:] if _quoted(cell) else cell


def format_row(cells: Iterable[object]) -> str:
    """One CSV record (``\\n``-terminated) with every cell neutralised."""
    texts = [neutralise(c) for c in cells]
    # The writer quotes "\n" (its terminator) but not a bare "\r", which the
    # reader then rejects: quote the whole record when a cell holds one.
    buf = io.StringIO()
    if any("\r" in t for t in texts):
        csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL).writerow(texts)
    else:
        csv.writer(buf, lineterminator="\n").writerow(texts)
    return buf.getvalue()


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set it and put it back at once
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched.

    Raises:
        OSError: the folder cannot be created or written (callers turn it into
            their own one-line error).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes 0600 files; give the result the mode open() would (0666 & ~umask)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def atomic_write_text(path: str | Path, text: str, *, fsync: bool = False) -> Path:
    """Replace ``path`` with ``text`` (UTF-8) atomically; ``fsync`` forces it to disk first."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)
