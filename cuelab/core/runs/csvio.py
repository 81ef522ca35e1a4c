"""Spreadsheet-safe CSV files: one writer for every table CueLab exports.

A cell that a spreadsheet would read as a formula (it starts with ``=``,
``+``, ``-`` or ``@`` and is not a number, or it starts with a tab or a
carriage return) is *neutralised* by a leading single quote, the OWASP
advice against CSV injection: a label such as ``=HYPERLINK(...)`` taken from
a manifest must not run when a colleague opens the report. The encoding is
reversible (:func:`restore` undoes it, a cell that merely looks neutralised
gets a second quote), so the runner can read its own predictions back
exactly.

``predictions.csv`` is appended row by row and must survive ``kill -9``:
:func:`read_complete_rows` returns the records that were fully written and
the byte offset where the first torn one starts, so a resumed run can cut
the file there.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

_FORMULA_START = ("=", "+", "-", "@")
_CONTROL_START = ("\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _dangerous(text: str) -> bool:
    if not text:
        return False
    if text.startswith(_CONTROL_START):
        return True
    return text.startswith(_FORMULA_START) and not _is_number(text)


def _quoted(text: str) -> bool:
    """True when ``text`` is the neutralised form of some other cell."""
    return text.startswith("'") and (_dangerous(text[1:]) or _quoted(text[1:]))


def neutralise(value: object) -> str:
    """The cell text of ``value``, with a leading quote if it could run as a formula.

    Numbers (``-0.5``, ``+3``) are left alone; ``None`` becomes an empty cell.
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


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    """Write a whole table atomically (temporary file in the same folder + ``os.replace``).

    A reader never sees a half-written table, and a crash leaves the previous
    version in place.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(format_row(header))
            for row in rows:
                fh.write(format_row(row))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Replace ``path`` with ``text`` atomically (used for run.json)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def read_complete_rows(path: str | Path) -> tuple[list[str], list[list[str]], int]:
    """Header, complete records (restored) and the byte length of the complete part.

    A record is complete when the reader finished it before reaching the end
    of the file, i.e. its line terminator was written. Records after the
    first torn or malformed one (a wrong number of cells) are not returned.
    An empty or header-less file gives ``([], [], 0)``.
    """
    consumed = 0
    exhausted = False
    unterminated = False  # the last line read has no line terminator (a torn write)

    def lines(fh: io.BufferedReader) -> Iterator[str]:
        nonlocal consumed, exhausted, unterminated
        for raw in fh:
            consumed += len(raw)
            unterminated = not raw.endswith(b"\n")
            yield raw.decode("utf-8", errors="replace")
        exhausted = True

    header: list[str] = []
    rows: list[list[str]] = []
    good = 0
    with open(path, "rb") as fh:
        for record in csv.reader(lines(fh)):
            if exhausted or unterminated:
                break  # finished only by the end of the file: torn
            cells = [restore(c) for c in record]
            if not header:
                header = cells
            elif len(cells) != len(header):
                break
            else:
                rows.append(cells)
            good = consumed
    return header, rows, good
