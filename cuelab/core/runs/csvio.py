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

from cuelab.core.errors import CueLabError
from cuelab.core.safeio import atomic_path, atomic_write_text, format_row, neutralise, restore

__all__ = [
    "CorruptTableError",
    "atomic_write_text",
    "format_row",
    "neutralise",
    "read_complete_rows",
    "repair_table",
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


class CorruptTableError(CueLabError):
    """A record in the middle of a table is malformed (not a torn last write)."""


def read_complete_rows(path: str | Path) -> tuple[list[str], list[list[str]], int]:
    """Header, complete records (restored) and the byte length of the complete part.

    A record is complete when the reader finished it before reaching the end
    of the file, i.e. its line terminator was written. Only the *last* record
    may be torn or malformed (a write cut short by a crash): it is left out, and
    the returned length ends before it, so a resumed run can cut it off. A
    malformed record with complete records after it is damage, not a torn
    write: it raises, naming the file and line. An empty or header-less file
    gives ``([], [], 0)``.

    Raises:
        CorruptTableError: a malformed record before the last one
            (``cuelab repair DIR`` moves such lines aside).
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
    bad_line: int | None = None
    with open(path, "rb") as fh:
        reader = csv.reader(lines(fh))
        for record in reader:
            if exhausted or unterminated:
                break  # finished only by the end of the file: torn
            if bad_line is not None:
                raise CorruptTableError(
                    f"{path}: line {bad_line} is not a complete record (records follow it); "
                    f"run 'cuelab repair {Path(path).parent}' to move it aside"
                )
            cells = [restore(c) for c in record]
            if not header:
                header = cells
            elif len(cells) != len(header):
                bad_line = reader.line_num  # the last record may be a torn write
                continue
            else:
                rows.append(cells)
            good = consumed
    return header, rows, good


def repair_table(path: str | Path) -> tuple[int, int, Path | None]:
    """Move malformed records of a table aside; keep every complete one, in order.

    The records kept are rewritten atomically; the others go, as their raw text,
    to ``<name>.quarantine.csv`` beside the table (appended, so repairs never lose
    what an earlier one moved).

    Returns:
        (records kept, records moved, the quarantine file or None).
    """
    path = Path(path)
    text = path.read_bytes().decode("utf-8", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    kept: list[list[str]] = []
    moved: list[str] = []
    lines = io.StringIO(text, newline="").readlines()  # the same line breaks the reader sees
    start = 0
    for record in reader:
        end = reader.line_num
        raw = "".join(lines[start:end])
        start = end
        if header is None:
            header = [restore(c) for c in record]
        elif len(record) == len(header) and raw.endswith(("\n", "\r")):
            kept.append([restore(c) for c in record])
        else:
            moved.append(raw if raw.endswith("\n") else raw + "\n")
    if header is None:
        return 0, 0, None
    quarantine = None
    if moved:
        quarantine = path.with_name(path.stem + ".quarantine.csv")
        with open(quarantine, "a", encoding="utf-8", newline="") as fh:
            fh.write("".join(moved))
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(format_row(header))
        for row in kept:
            fh.write(format_row(row))
    return len(kept), len(moved), quarantine
