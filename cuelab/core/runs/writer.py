"""The durable prediction writer and the clips that failed (errors.csv).

The writer makes a run survive ``kill -9``: every batch of rows is appended
with one ``write``, then flushed and fsynced, so a killed run leaves complete
rows plus at most one torn record, which :class:`PredictionWriter` cuts on
resume.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from cuelab.core.runs import record as rec
from cuelab.core.runs.config import RunConfigError
from cuelab.core.runs.csvio import (
    RowCheck,
    read_complete_rows,
    readable_rows,
    table_rows,
    write_csv,
)
from cuelab.core.safeio import naming

log = logging.getLogger(__name__)

Key = tuple[str, ...]  # utt_id, model, condition (or mode), seed (+ an edit run's cell)
#: The columns that identify an emotion run's row; SSEU runs key on ``mode``.
KEY_COLUMNS = ("utt_id", "model", "condition", "seed")


class ClipFailures:
    """Clips that could not be scored: kept in errors.csv, the run goes on.

    A clip whose audio or features fail (a corrupt file) is recorded with the
    stage and the one-line error, and the other clips are scored; the run then
    reports how many failed. ``--fail-fast`` raises at the first one instead.
    errors.csv is rewritten at the end of every session; ``--resume`` tries the
    failed clips again (they have no rows).
    """

    def __init__(self, out: Path, fail_fast: bool) -> None:
        self.out = out
        self.fail_fast = fail_fast
        self.rows: list[list[str]] = []
        self._lock = threading.Lock()

    def add(self, utt_id: str, path: str, model: str, stage: str, error: str) -> None:
        """Record one failure."""
        log.warning("%s: %s failed at %s: %s", self.out, utt_id, stage, error)
        with self._lock:
            self.rows.append([utt_id, path, model, stage, " ".join(error.split())])

    def __enter__(self) -> ClipFailures:
        return self

    def __exit__(self, *exc: object) -> None:
        self.write()  # whatever ended the session, its failures are on disk

    def write(self) -> None:
        """errors.csv of this session (removed when nothing failed)."""
        path = self.out / rec.ERRORS_CSV
        if self.rows:
            write_csv(path, rec.ERROR_COLUMNS, self.rows)
        else:
            path.unlink(missing_ok=True)


class PredictionWriter:
    """Appends rows to predictions.csv durably (one write, flush and fsync per batch).

    The file stays open for the whole run; :meth:`close` is called in the runner's
    ``finally``. ``key_columns`` name the four cells that identify a row (SSEU runs
    key on ``mode`` instead of ``condition``).
    """

    def __init__(
        self,
        path: Path,
        header: list[str],
        resume: bool,
        key_columns: Sequence[str] = KEY_COLUMNS,
        check: RowCheck | None = None,
    ) -> None:
        self.path = path
        self.header = list(header)
        self._check = check
        self.done: set[Key] = set()
        self.kept = 0
        if path.is_symlink():  # appending would write into whatever file it points to
            raise RunConfigError(f"{path} is a symbolic link; CueLab does not write through it")
        if resume and path.exists():
            old_header, rows, good = read_complete_rows(path, check)
            if old_header and old_header != header:
                raise RunConfigError(
                    f"{path}: columns differ from this configuration's; cannot resume"
                )
            if old_header:
                idx = [header.index(c) for c in key_columns]
                self.done = {tuple(r[i] for i in idx) for r in rows}
                self.kept = len(rows)
                with naming(path), open(path, "r+b") as fh:
                    fh.truncate(good)  # drop a torn last record
                with naming(path):
                    self._fh: IO[str] = open(path, "a", encoding="utf-8", newline="")  # noqa: SIM115
                return
        with naming(path):
            self._fh = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 (for the run)
        self._write(table_rows(path, [header]))

    def append(self, rows: Sequence[Sequence[object]]) -> None:
        """Write ``rows`` as one block and make it durable (an OSError names the file).

        Each row is first read back as the reader will read it (cell limit, one
        record, the header's width, the run's row check), so no row is written
        that a resume, a report or ``repair`` would refuse.

        Raises:
            TableCellError: a row the reader would refuse; nothing of the block is written.
        """
        self._write(readable_rows(self.path, self.header, rows, self._check))

    def _write(self, block: str) -> None:
        with naming(self.path):
            self._fh.write(block)
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Close the file."""
        self._fh.close()
