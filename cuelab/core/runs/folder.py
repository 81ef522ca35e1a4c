"""A run folder: its lock, its run.json across sessions, and how a run ended.

:func:`open_record` refuses a folder that holds another run, :func:`run_lock`
keeps one writer per folder, and :func:`run_session` records how each session
ended. The engines (:mod:`cuelab.core.runs.emotion`, :mod:`cuelab.core.runs.sseu`)
sit on top; :func:`cuelab.core.runs.engine.run_eval` picks one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cuelab.core.errors import Cancelled
from cuelab.core.runs import record as rec
from cuelab.core.runs.config import RunConfig, RunConfigError
from cuelab.core.runs.csvio import read_complete_rows
from cuelab.core.runs.writer import PredictionWriter
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
        return (
            f"{folder} is in use by another CueLab process (PID {holder}); "
            "wait for it to finish or choose another --out"
        )

    with locked_file(folder / LOCK_FILE, RunConfigError, in_use):
        yield


def _refuse_foreign(out: Path) -> None:
    """Refuse a folder that holds files and no CueLab run (the user's other work)."""
    if (out / rec.RUN_JSON).exists() or (out / rec.PREDICTIONS_CSV).exists():
        return
    try:
        foreign = sorted(p.name for p in out.iterdir() if p.name != LOCK_FILE)
    except OSError as exc:
        raise RunConfigError(f"{out}: cannot read the run folder ({exc.strerror})") from None
    if foreign:
        raise RunConfigError(
            f"{out} is not empty and holds no CueLab run ({foreign[0]}"
            + (f" and {len(foreign) - 1} more" if len(foreign) > 1 else "")
            + "); choose a new or empty --out"
        )


def open_record(
    out: Path,
    config: RunConfig,
    ident: dict[str, Any],
    manifest_path: str,
    labels: Sequence[str],
    resume: bool,
) -> dict[str, Any]:
    """run.json of a fresh run, or of the run being resumed (identity checked)."""
    _refuse_foreign(out)
    if (out / rec.RUN_JSON).exists():
        record = rec.read_record(out)
        if record.get("merged_from"):
            raise RunConfigError(f"{out} holds merged shards; it cannot be resumed")
        same = record["identity"] == ident
        if not (resume and same) and not _has_rows(out):
            return _replace_empty_run(out, record, config, ident, manifest_path, labels)
        if not resume:
            raise RunConfigError(
                f"{out} already holds a run; add --resume to continue it, or choose another --out"
            )
        rec.compare_identity(record["identity"], ident, f"cannot resume {out}")
        return record
    if (out / rec.PREDICTIONS_CSV).exists():
        raise RunConfigError(f"{out} has predictions.csv but no run.json; choose another --out")
    return rec.new_record(config, ident, manifest_path, labels)


#: Key of a fresh record that says which empty run it replaced; the engine pops it into a note.
REPLACED_NOTE = "_replaced_note"


def _has_rows(out: Path) -> bool:
    """True when the run folder's predictions.csv holds at least one complete row."""
    path = out / rec.PREDICTIONS_CSV
    if not path.exists():
        return False
    try:
        _, rows, _ = read_complete_rows(path)
    except RunConfigError:
        return True  # damaged: keep today's protection, the user repairs it first
    return bool(rows)


def _replace_empty_run(
    out: Path,
    old: dict[str, Any],
    config: RunConfig,
    ident: dict[str, Any],
    manifest_path: str,
    labels: Sequence[str],
) -> dict[str, Any]:
    """A fresh record in place of a run that wrote no row (e.g. its model failed to load).

    Nothing is lost: the old run has no prediction. Its sessions stay in the new
    record (``replaced``) as provenance, and the note tells the user what happened.
    """
    sessions = old.get("sessions") or []
    last = sessions[-1] if sessions and isinstance(sessions[-1], dict) else {}
    why = f"; its last session {last.get('status', 'ended')}" if last else ""
    if last.get("error"):
        why += f": {str(last['error'])[:120]}"
    for name in (rec.PREDICTIONS_CSV, rec.ERRORS_CSV):
        (out / name).unlink(missing_ok=True)
    record = rec.new_record(config, ident, manifest_path, labels)
    record["replaced"] = {"started": old.get("started"), "status": old.get("status"),
                          "sessions": sessions}  # fmt: skip
    note = f"replaced the run in {out}, which had written no row{why}"
    log.warning("%s", note)
    record[REPLACED_NOTE] = note
    return record


def replaced_note(record: dict[str, Any]) -> tuple[str, ...]:
    """Take the "replaced an empty run" note out of a record (before it is written)."""
    note = record.pop(REPLACED_NOTE, None)
    return (note,) if note else ()


@contextmanager
def run_session(
    out: Path, record: dict[str, Any], session: dict[str, Any], writer: PredictionWriter
) -> Iterator[None]:
    """Record how a run ended in run.json (complete, cancelled, interrupted, failed).

    Whatever happens, the prediction writer is closed: rows already written stay.
    """
    try:
        yield
        _finish(out, record, session, "complete")
    except Cancelled:
        _finish(out, record, session, "cancelled")
        raise
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        session["error"] = " ".join(str(exc).split())[:500]
        try:
            _finish(out, record, session, status)
        except OSError:  # e.g. the disk that failed the run is still full: its error matters
            log.warning("%s: could not mark the run %s", out, status, exc_info=True)
        raise
    finally:
        try:
            writer.close()
        except OSError:  # buffered rows were flushed and fsynced by append; nothing is lost
            log.warning("%s: closing failed", writer.path, exc_info=True)


def _finish(out: Path, record: dict[str, Any], session: dict[str, Any], status: str) -> None:
    session["finished"] = rec.now()
    session["status"] = status
    record["status"] = status
    if status == "complete":
        record["finished"] = session["finished"]
    rec.write_record(out, record)
