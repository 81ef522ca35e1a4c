"""What every batch run shares: the durable prediction writer, run.json, model loading.

An engine per task kind sits on top (:mod:`cuelab.core.runs.emotion`,
:mod:`cuelab.core.runs.sseu`); :func:`cuelab.core.runs.engine.run_eval` picks
one. The pieces here make a run survive ``kill -9``: every batch of rows is
appended with one ``write``, then flushed and fsynced, so a killed run leaves
complete rows plus at most one torn record, which :class:`PredictionWriter`
cuts on resume. :func:`open_record` refuses a folder that holds another run,
and :class:`ModelRun` refuses to resume with a model that describes itself
differently from the one recorded.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from cuelab.core import errors
from cuelab.core.errors import Cancelled
from cuelab.core.jobs import JobControl
from cuelab.core.models.base import LoadOptions, ModelAdapter
from cuelab.core.models.capabilities import has_label_texts, is_served
from cuelab.core.runs import record as rec
from cuelab.core.runs.config import RunConfig, RunConfigError
from cuelab.core.runs.csvio import (
    RowCheck,
    read_complete_rows,
    readable_rows,
    table_rows,
    write_csv,
)
from cuelab.core.safeio import locked_file, naming

log = logging.getLogger(__name__)

Key = tuple[str, ...]  # utt_id, model, condition (or mode), seed (+ an edit run's cell)
#: The columns that identify an emotion run's row; SSEU runs key on ``mode``.
KEY_COLUMNS = ("utt_id", "model", "condition", "seed")
ModelLoader = Callable[[str, LoadOptions], ModelAdapter]
Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(frozen=True)
class RunOutcome:
    """What a finished run did."""

    folder: Path
    rows_written: int
    rows_kept: int
    clips: int
    notes: tuple[str, ...] = ()
    failed: int = 0


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
            + ")",
            subject=out,
            remedy=errors.NEW_OUTPUT_FOLDER,
        )


def default_loader(spec: str, options: LoadOptions) -> ModelAdapter:
    """Load ``spec`` through the model registry."""
    from cuelab.core.models.registry import load_model

    return load_model(spec, options)


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
                f"{out} already holds a run",
                subject=out,
                remedy=(errors.RESUME, errors.NEW_OUTPUT_FOLDER),
            )
        rec.compare_identity(record["identity"], ident, f"cannot resume {out}")
        return record
    if (out / rec.PREDICTIONS_CSV).exists():
        raise RunConfigError(
            f"{out} has predictions.csv but no run.json",
            subject=out,
            remedy=errors.NEW_OUTPUT_FOLDER,
        )
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


class ModelRun:
    """One model loaded for the run; its describe() is checked against run.json.

    Keys the adapter lists in ``recorded_only`` (a remote model's endpoints) are
    recorded anew but may differ on resume.
    """

    def __init__(
        self,
        spec: str,
        config: RunConfig,
        record: dict[str, Any],
        out: Path,
        loader: ModelLoader,
        adapter: ModelAdapter | None = None,
    ) -> None:
        self.spec = spec
        # ``adapter``: the model already loaded (in the background, while features ran)
        self.adapter = adapter if adapter is not None else loader(spec, config.load_options())
        described = self.adapter.describe()
        if has_label_texts(self.adapter):  # reads no instruction: tokens cannot reach it
            if record.get("labels"):  # the text each label is scored with
                described = {**described, "prompts": self.adapter.label_prompts(record["labels"])}
            described = {**described, "tokens_note": self.adapter.token_note()}
        previous = record["models"].get(spec)
        free = set(self.adapter.recorded_only)
        changed = sorted(
            k
            for k in set(previous or {}) | set(described)
            if k not in free and (previous or {}).get(k) != described.get(k)
        )
        if previous is not None and changed:
            self.adapter.unload()
            raise RunConfigError(
                f"cannot resume {out}: model {spec} differs in '{changed[0]}' from the run's"
            )
        record["models"][spec] = described
        rec.write_record(out, record)

    def progress(self, what: str) -> str:
        """A progress line for ``what``, with the adapter's request figures when it has them."""
        note = f" ({self.adapter.progress_note()})" if is_served(self.adapter) else ""
        return f"{self.spec}: {what}{note}"

    def close(self) -> None:
        """Free the model."""
        self.adapter.unload()


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


def in_order(
    work: Callable[[Item], Result],
    items: Iterable[Item],
    workers: int,
    control: JobControl,
) -> Iterator[tuple[Item, Result]]:
    """``(item, work(item))`` in the order of ``items``, with up to ``workers`` in flight.

    With one worker this is a plain loop. With more (a remote model that serves
    many requests at once) the next items are started while the caller writes
    the finished ones, so the file is written in the same order as a sequential
    run: a kill leaves a prefix of it, and ``--resume`` redoes only what is
    missing. Cancellation is checked before each item is started; the items
    already running are waited for (their results are dropped), then
    :class:`~cuelab.core.errors.Cancelled` is raised. The first failure is
    raised after the items before it have been handed over.
    """
    if workers <= 1:
        for item in items:
            control.check()
            yield item, work(item)
        return
    pending: deque[tuple[Item, Future[Result]]] = deque()
    source = iter(items)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clip")
    finished = False
    try:
        while True:
            while len(pending) < workers and not control.cancelled:
                item = next(source, _END)
                if item is _END:
                    break
                pending.append((item, pool.submit(work, item)))
            if not pending:
                control.check()
                finished = True
                return
            item, future = pending.popleft()
            yield item, future.result()
            control.check()
    finally:
        # On a failure or cancel the clips still running are not waited for here: the
        # caller unloads the model next, which cancels their queued requests.
        pool.shutdown(wait=finished, cancel_futures=True)


_END: Any = object()
