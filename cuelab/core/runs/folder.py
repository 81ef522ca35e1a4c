"""A run folder: its layout, lock, run.json across sessions, and how a run ended.

:class:`RunFolder` is the one place that knows the folder's files:
:meth:`RunFolder.open_record` refuses a folder that holds another run,
:meth:`RunFolder.lock` keeps one writer per folder (:func:`run_lock`), and
:meth:`RunFolder.session` records how each session ended. The engines (:mod:`cuelab.core.runs.emotion`, :mod:`cuelab.core.runs.sseu`)
sit on top; :func:`cuelab.core.runs.engine.run_eval` picks one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cuelab.core import errors
from cuelab.core.errors import Cancelled
from cuelab.core.runs import record as rec
from cuelab.core.runs.config import RunConfig, RunConfigError
from cuelab.core.runs.csvio import RowCheck, read_complete_rows, repair_table
from cuelab.core.runs.writer import KEY_COLUMNS, ClipFailures, PredictionWriter
from cuelab.core.safeio import locked_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    """What a finished run did."""

    folder: Path
    rows_written: int
    rows_kept: int
    clips: int
    notes: tuple[str, ...] = ()
    failed: int = 0


#: The lock file of a run folder: one writer at a time (eval, resume, merge, repair).
LOCK_FILE = ".cuelab.lock"


def make_run_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents), or say in one line why it cannot be.

    Raises:
        RunConfigError: it is a file, a parent is a file, or the place is not writable.
    """
    if "\0" in str(folder):
        raise RunConfigError(f"{str(folder)!r}: the output folder's name contains a NUL byte")
    if folder.exists() and not folder.is_dir():
        raise RunConfigError(f"{folder} is a file, not a folder; choose a folder for the run")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in folder.parents if p.exists() and not p.is_dir()), folder)
        raise RunConfigError(
            f"{folder}: cannot create the run folder ({blocker} is a file, not a folder)"
        ) from None
    except OSError as exc:
        raise RunConfigError(f"{folder}: cannot create the run folder ({exc.strerror})") from None


@contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive OS lock on ``folder`` (created if missing) for the block.

    ``fcntl.flock`` on :data:`LOCK_FILE`, released by the OS even after ``kill -9``.
    A second writer gets one line naming the holder's PID; of two runs started at
    the same instant, only one gets the lock. A folder that holds someone else's
    files is refused before the lock file is made, and the lock file is never
    written through a symbolic link (:func:`~cuelab.core.safeio.locked_file`).

    Raises:
        RunConfigError: another process holds the folder, it holds no CueLab run but
            other files, or its lock file is a link or not a regular file.
    """
    make_run_folder(folder)
    _refuse_foreign(folder)  # before the lock file: a refused folder is left as it was

    def in_use(holder: str) -> str:
        return f"{folder} is in use by another CueLab process (PID {holder}) until it finishes"

    def refused(message: str) -> RunConfigError:
        return RunConfigError(message, subject=folder, remedy=errors.NEW_OUTPUT_FOLDER)

    with locked_file(folder / LOCK_FILE, refused, in_use):
        yield


def _refuse_foreign(out: Path) -> None:
    """Refuse a folder that holds files and no CueLab run (the user's other work)."""
    if RunFolder(out).has_record() or RunFolder(out).has_predictions():
        return
    try:
        foreign = sorted(p.name for p in out.iterdir() if p.name != LOCK_FILE)
    except OSError as exc:
        raise RunConfigError(f"{out}: cannot read the run folder ({exc.strerror})") from None
    if foreign:
        raise RunConfigError(
            f"{out} is not empty and holds no CueLab run ({foreign[0]}"
            + (f" and {len(foreign) - 1} more" if len(foreign) > 1 else "")
            + ")",
            subject=out,
            remedy=errors.NEW_OUTPUT_FOLDER,
        )


class RunFolder:
    """A run folder: the one place that knows its layout, lock, record and tables.

    ``run.json`` (the :class:`~cuelab.core.runs.record.RunRecord`),
    ``predictions.csv`` (appended durably by :class:`PredictionWriter`),
    ``errors.csv`` (the clips of the last session that failed) and the lock file
    (one writer at a time) all live here; the engines, merge, reports, the
    command line and the window go through this class rather than joining
    file names themselves.
    """

    RUN_JSON = rec.RUN_JSON
    PREDICTIONS_CSV = rec.PREDICTIONS_CSV
    ERRORS_CSV = rec.ERRORS_CSV
    LOCK_FILE = LOCK_FILE

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)

    @property
    def run_json(self) -> Path:
        """The run record's file."""
        return self.path / rec.RUN_JSON

    @property
    def predictions(self) -> Path:
        """The predictions table."""
        return self.path / rec.PREDICTIONS_CSV

    @property
    def errors(self) -> Path:
        """The clips that failed in the last session."""
        return self.path / rec.ERRORS_CSV

    def has_record(self) -> bool:
        """True when the folder holds a run.json (readable or not)."""
        return self.run_json.exists()

    def has_predictions(self) -> bool:
        """True when the folder holds a predictions.csv."""
        return self.predictions.exists()

    def has_rows(self) -> bool:
        """True when predictions.csv holds at least one complete row (or is damaged)."""
        if not self.predictions.exists():
            return False
        try:
            _, rows, _ = read_complete_rows(self.predictions)
        except RunConfigError:
            return True  # damaged: keep today's protection, the user repairs it first
        return bool(rows)

    def lock(self) -> AbstractContextManager[None]:
        """Hold the folder's exclusive lock for a block (see :func:`run_lock`)."""
        return run_lock(self.path)

    def read_record(self) -> rec.RunRecord:
        """The folder's run.json as a typed record."""
        return rec.load_record(self.path)

    def write_record(self, record: rec.RunRecord) -> Path:
        """Write run.json atomically."""
        return rec.write_record(self.path, record)

    def open_writer(
        self,
        header: list[str],
        resume: bool,
        key_columns: Sequence[str] = KEY_COLUMNS,
        check: RowCheck | None = None,
    ) -> PredictionWriter:
        """The durable writer of predictions.csv (a resume cuts a torn last record)."""
        return PredictionWriter(self.predictions, header, resume, key_columns, check)

    def failures(self, fail_fast: bool) -> ClipFailures:
        """The failed clips of this session, written to errors.csv when it ends."""
        return ClipFailures(self.path, fail_fast)

    def read_predictions(
        self, record: rec.RunRecord | None = None
    ) -> tuple[list[str], list[list[str]]]:
        """(header, complete rows) of predictions.csv, checked against ``record`` when given.

        Raises:
            CorruptTableError: a damaged record before the last one, or a row the
                record refuses (:func:`~cuelab.core.runs.record.row_check`).
        """
        check = rec.row_check(record) if record is not None else None
        header, rows, _ = read_complete_rows(self.predictions, check)
        return header, rows

    def read_errors(self) -> list[list[str]]:
        """The rows of errors.csv (none when the last session had no failure)."""
        if not self.errors.exists():
            return []
        _, rows, _ = read_complete_rows(self.errors)
        return rows

    def repair(self, record: rec.RunRecord | None) -> tuple[int, int, Path | None]:
        """Move the damaged records of predictions.csv aside (see ``repair_table``)."""
        check = rec.row_check(record) if record is not None else None
        return repair_table(self.predictions, check)

    def report_files(self, written: Sequence[Path]) -> list[Path]:
        """The files a report wrote, then predictions.csv and run.json (their provenance)."""
        return [*written, self.predictions, self.run_json]

    def open_record(
        self,
        config: RunConfig,
        ident: dict[str, Any],
        manifest_path: str,
        labels: Sequence[str],
        resume: bool,
    ) -> rec.RunRecord:
        """run.json of a fresh run, or of the run being resumed (identity checked)."""
        out = self.path
        _refuse_foreign(out)
        if self.has_record():
            record = self.read_record()
            if record.merged:
                raise RunConfigError(f"{out} holds merged shards; it cannot be resumed")
            same = record.identity == ident
            if not (resume and same) and not self.has_rows():
                return self._replace_empty_run(record, config, ident, manifest_path, labels)
            if not resume:
                raise RunConfigError(
                    f"{out} already holds a run",
                    subject=out,
                    remedy=(errors.RESUME, errors.NEW_OUTPUT_FOLDER),
                )
            rec.compare_identity(record.identity, ident, f"cannot resume {out}")
            return record
        if self.has_predictions():
            raise RunConfigError(
                f"{out} has predictions.csv but no run.json",
                subject=out,
                remedy=errors.NEW_OUTPUT_FOLDER,
            )
        return rec.new_record(config, ident, manifest_path, labels)

    def _replace_empty_run(
        self,
        old: rec.RunRecord,
        config: RunConfig,
        ident: dict[str, Any],
        manifest_path: str,
        labels: Sequence[str],
    ) -> rec.RunRecord:
        """A fresh record in place of a run that wrote no row (e.g. its model failed to load).

        Nothing is lost: the old run has no prediction. Its sessions stay in the new
        record (``replaced``) as provenance, and the note tells the user what happened.
        """
        sessions = old.sessions
        last = sessions[-1] if sessions and isinstance(sessions[-1], dict) else {}
        why = f"; its last session {last.get('status', 'ended')}" if last else ""
        if last.get("error"):
            why += f": {str(last['error'])[:120]}"
        for path in (self.predictions, self.errors):
            path.unlink(missing_ok=True)
        record = rec.new_record(config, ident, manifest_path, labels)
        record.sections["replaced"] = {"started": old.started, "status": old.status,
                                       "sessions": sessions}  # fmt: skip
        note = f"replaced the run in {self.path}, which had written no row{why}"
        log.warning("%s", note)
        record.replaced_note = note
        return record

    @contextmanager
    def session(
        self, record: rec.RunRecord, session: dict[str, Any], writer: PredictionWriter
    ) -> Iterator[None]:
        """Record how a run ended in run.json (complete, cancelled, interrupted, failed).

        Whatever happens, the prediction writer is closed: rows already written stay.
        """
        try:
            yield
            self._finish(record, session, "complete")
        except Cancelled:
            self._finish(record, session, "cancelled")
            raise
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            session["error"] = " ".join(str(exc).split())[:500]
            try:
                self._finish(record, session, status)
            except OSError:  # e.g. the disk that failed the run is still full: its error matters
                log.warning("%s: could not mark the run %s", self.path, status, exc_info=True)
            raise
        finally:
            try:
                writer.close()
            except OSError:  # buffered rows were flushed and fsynced by append; nothing is lost
                log.warning("%s: closing failed", writer.path, exc_info=True)

    def _finish(self, record: rec.RunRecord, session: dict[str, Any], status: str) -> None:
        session["finished"] = rec.now()
        session["status"] = status
        record.status = status
        if status == "complete":
            record.finished = session["finished"]
        self.write_record(record)


def replaced_note(record: rec.RunRecord) -> tuple[str, ...]:
    """Take the "replaced an empty run" note out of a fresh record."""
    note, record.replaced_note = record.replaced_note, None
    return (note,) if note else ()
