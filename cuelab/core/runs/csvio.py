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
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from cuelab.core.errors import CueLabError
from cuelab.core.safeio import (
    FIELD_LIMIT,
    CellTooLongError,
    atomic_path,
    atomic_write_text,
    format_row,
    neutralise,
    restore,
)

__all__ = [
    "CorruptTableError",
    "TableCellError",
    "atomic_write_text",
    "format_row",
    "neutralise",
    "read_complete_rows",
    "repair_table",
    "restore",
    "write_csv",
]


class TableCellError(CueLabError):
    """A row with a cell longer than :data:`~cuelab.core.safeio.FIELD_LIMIT` was not written."""


def table_rows(path: str | Path, rows: Iterable[Sequence[object]]) -> str:
    """The text of ``rows`` as records (see :func:`format_row`), all or nothing.

    Raises:
        TableCellError: a cell the reader would refuse (the message names ``path``).
    """
    try:
        return "".join(format_row(r) for r in rows)
    except CellTooLongError as exc:
        raise TableCellError(f"{path}: {exc}") from None


def readable_rows(
    path: str | Path,
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    check: RowCheck | None = None,
) -> str:
    """The text of ``rows``, each checked the way :func:`read_complete_rows` reads it.

    Raises:
        TableCellError: a row that would not read back as one record of the header's
            width, or that ``check`` refuses (the message names ``path`` and the row).
    """
    texts: list[str] = []
    for row in rows:
        text = table_rows(path, [row])
        try:
            cells, clean, _ = _parse(text.encode("utf-8"))
        except UnicodeEncodeError:  # a lone surrogate: no file can hold it as UTF-8
            cells, clean = None, False
        restored = [restore(c) for c in cells] if cells is not None and clean else None
        if restored is None:
            problem: str | None = "would not read back as one record"
        elif len(restored) != len(header):
            problem = f"has {len(restored)} cells for {len(header)} columns"
        else:
            problem = check(list(header), restored) if check is not None else None
        if problem is not None:
            first = str(row[0])[:40] if len(row) else ""
            raise TableCellError(f"{path}: the row of {first!r} {problem}; it was not written")
        texts.append(text)
    return "".join(texts)


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    """Write a whole table atomically (temporary file in the same folder + ``os.replace``).

    A reader never sees a half-written table, and a crash leaves the previous
    version in place.

    Raises:
        TableCellError: a cell longer than the reader's limit; the old table stays.
    """
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(table_rows(path, [header]))
        for row in rows:
            fh.write(table_rows(path, [row]))
    return Path(path)


class CorruptTableError(CueLabError):
    """A record in the middle of a table is malformed (not a torn last write)."""


class _Record(NamedTuple):
    cells: list[str] | None  # None: not parseable as CSV
    raw: bytes  # the record's bytes, line terminators included
    end: int  # byte offset just after it
    terminated: bool  # its line terminator was written
    line: int  # the line it starts on (1-based)
    damaged: bool  # holds a NUL or bytes that are not UTF-8


def _parse(data: bytes) -> tuple[list[str] | None, bool, bool]:
    """(the cells of one record or None, decodable, an open quote at the end)."""
    try:
        text, decodable = data.decode("utf-8"), True
    except UnicodeDecodeError:
        text, decodable = data.decode("utf-8", errors="replace"), False
    try:
        parsed = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        return None, decodable, text.count('"') % 2 == 1
    if len(parsed) != 1 or any(len(cell) > FIELD_LIMIT for cell in parsed[0]):
        return None, decodable and "\0" not in text, False  # the writer never writes such a cell
    return parsed[0], decodable and "\0" not in text, False


def _records(lines: Iterable[bytes], width: int | None = None) -> Iterator[_Record]:
    """Every record of a CueLab table, raw and parsed, however damaged.

    Records are split on ``\\n`` only (CueLab quotes a cell's line breaks, and
    a whole record holding a bare CR). A record that continues over several
    lines (an open quoted cell) but then does not parse, or that stays open to
    the end of the file while complete records follow its first line, was a
    stray quote: its first line is the damaged record, and reading goes on with
    the next line, so one bad line never swallows the records after it.
    """
    source = iter(lines)
    back: list[bytes] = []  # lines to read again, last first
    pending: list[bytes] = []
    offset = line = 0
    start_line = start_offset = 0

    def first_line_alone() -> _Record:
        nonlocal offset, line
        back.extend(reversed(pending[1:]))
        offset = start_offset + len(pending[0])
        line = start_line
        return _Record(None, pending[0], offset, True, start_line, True)

    while True:
        raw = back.pop() if back else next(source, None)
        if raw is None:
            if not pending:
                return
            # A quote open up to the end of the file: a torn record, unless complete
            # records follow its first line (then that line held a stray quote).
            after = _records(pending[1:], width)
            if width is not None and any(r.terminated and r.cells is not None
                                         and len(r.cells) == width for r in after):  # fmt: skip
                yield first_line_alone()
                pending = []
                continue
            yield _Record(None, b"".join(pending), offset, False, start_line, True)
            return
        line += 1
        if not pending:
            start_line, start_offset = line, offset
        offset += len(raw)
        pending.append(raw)
        data = b"".join(pending)
        cells, clean, open_quote = _parse(data)
        if cells is None and open_quote and clean:
            continue  # an open quoted cell: the record goes on on the next line
        if cells is None and len(pending) > 1:
            yield first_line_alone()
        else:
            if width is None and cells is not None:
                width = len(cells)
            yield _Record(cells, data, offset, data.endswith(b"\n"), start_line, not clean)
        pending = []


#: Checks one parsed record against its header; returns what is wrong, or None.
RowCheck = Callable[[list[str], list[str]], "str | None"]


def read_complete_rows(
    path: str | Path, check: RowCheck | None = None
) -> tuple[list[str], list[list[str]], int]:
    """Header, complete records (restored) and the byte length of the complete part.

    A record is complete when its line terminator was written and it parses
    with as many cells as the header. Only the *last* record may be torn (a
    write cut short by a crash, perhaps zero-filled: it has no line end): it is
    left out, and the returned length ends before it, so a resumed run can cut
    it off. Any other malformed record is damage, not a torn write: it raises,
    naming the file and line. An empty or header-less file gives ``([], [], 0)``.
    ``check`` (e.g. :func:`cuelab.core.runs.record.row_check`) refuses records
    that parse but cannot have been written by the run: a repeated key, an
    unknown model, a probability that is not one.

    Raises:
        CorruptTableError: a malformed record before the last one
            (``cuelab repair DIR`` moves such lines aside).
    """
    header: list[str] = []
    rows: list[list[str]] = []
    good = 0
    bad_line: int | None = None
    with open(path, "rb") as fh:
        for rec in _records(fh):
            if bad_line is not None:
                raise CorruptTableError(
                    f"{path}: line {bad_line} is not a complete record (records follow it); "
                    f"run 'cuelab repair {Path(path).parent}' to move it aside"
                )
            if not rec.terminated:
                break  # ended by the end of the file: torn
            cells = [restore(c) for c in rec.cells] if rec.cells is not None else None
            if not header and cells is not None and not rec.damaged:
                header = cells
            elif cells is None or rec.damaged or len(cells) != len(header):
                bad_line = rec.line
                continue
            else:
                problem = check(header, cells) if check is not None else None
                if problem is not None:
                    raise CorruptTableError(
                        f"{path}: line {rec.line} {problem}; "
                        f"run 'cuelab repair {Path(path).parent}' to move it aside"
                    )
                rows.append(cells)
            good = rec.end
    if bad_line is not None:
        # CueLab writes whole records: a write cut short has no line end. A last
        # record that has one and is malformed was damaged later.
        raise CorruptTableError(
            f"{path}: line {bad_line} is not a complete record; "
            f"run 'cuelab repair {Path(path).parent}' to move it aside"
        )
    return header, rows, good


def repair_table(path: str | Path, check: RowCheck | None = None) -> tuple[int, int, Path | None]:
    """Move malformed records of a table aside; keep every complete one, in order.

    ``check`` moves aside, too, records that parse but that it refuses (see
    :func:`read_complete_rows`).

    The records kept are rewritten atomically; the others go, as their raw text,
    to ``<name>.quarantine.csv`` beside the table (appended, so repairs never lose
    what an earlier one moved).

    Returns:
        (records kept, records moved, the quarantine file or None).
    """
    path = Path(path)
    header: list[str] | None = None
    kept: list[list[str]] = []
    moved: list[bytes] = []
    with open(path, "rb") as fh:
        for rec in _records(fh):
            cells = [restore(c) for c in rec.cells] if rec.cells is not None else None
            if header is None and cells is not None and not rec.damaged:
                header = cells
            elif (
                header is not None
                and cells is not None
                and not rec.damaged
                and rec.terminated
                and len(cells) == len(header)
                and (check is None or check(header, cells) is None)
            ):
                kept.append(cells)
            else:
                moved.append(rec.raw if rec.raw.endswith(b"\n") else rec.raw + b"\n")
    if header is None:
        return 0, 0, None
    quarantine = None
    if moved:
        quarantine = path.with_name(path.stem + ".quarantine.csv")
        with open(quarantine, "ab") as out:
            out.write(b"".join(moved))
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(format_row(header))
        for row in kept:
            fh.write(format_row(row))
    return len(kept), len(moved), quarantine
