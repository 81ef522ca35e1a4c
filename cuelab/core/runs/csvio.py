"""Run tables: one writer for every table CueLab exports, and a torn-write-safe reader.

Cells are neutralised for spreadsheets by :mod:`cuelab.core.safeio` (a label
such as ``=HYPERLINK(...)`` taken from a manifest must not run when a
colleague opens the report); the encoding is reversible, so the runner reads
its own predictions back exactly.

``predictions.csv`` is appended row by row and must survive ``kill -9``:
:func:`read_complete_rows` returns the records that were fully written and
the byte offset where the first torn one starts, so a resumed run can cut
the file there.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from cuelab.core.safeio import atomic_path, atomic_write_text, format_row, neutralise, restore

__all__ = [
    "atomic_write_text",
    "format_row",
    "neutralise",
    "read_complete_rows",
    "restore",
    "write_csv",
]


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    """Write a whole table atomically (temporary file in the same folder + ``os.replace``).

    A reader never sees a half-written table, and a crash leaves the previous
    version in place.
    """
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(format_row(header))
        for row in rows:
            fh.write(format_row(row))
    return Path(path)


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
