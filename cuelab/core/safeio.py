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
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

#: The longest cell (in characters, as written) a CueLab table may hold. It is the
#: ``csv`` module's field limit, which every reader of these tables has
#: (:func:`cuelab.core.runs.csvio.read_complete_rows` checks it explicitly too), so
#: :func:`format_row` refuses to write a cell the reader would refuse.
FIELD_LIMIT = 131_072

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


class CellTooLongError(ValueError):
    """A cell longer than :data:`FIELD_LIMIT`: written, it would make the table unreadable.

    The run layer turns it into a typed error naming the file
    (:class:`cuelab.core.runs.csvio.TableCellError`).
    """


def format_row(cells: Iterable[object]) -> str:
    """One CSV record (``\\n``-terminated) with every cell neutralised.

    NUL characters are dropped (a model may decode one): in a table, a NUL only
    ever means damage, such as the zero-filled tail of a write cut short.

    Raises:
        CellTooLongError: a cell is longer than :data:`FIELD_LIMIT` characters; no
            record is written that CueLab's own reader would refuse.
    """
    texts = [neutralise(c).replace("\0", "") for c in cells]
    for i, text in enumerate(texts):
        if len(text) > FIELD_LIMIT:
            raise CellTooLongError(
                f"cell {i + 1} of a table row is {len(text):,} characters "
                f"({text[:30]!r}...); a table cell holds at most {FIELD_LIMIT:,}"
            )
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
    with naming(target):
        target.parent.mkdir(parents=True, exist_ok=True)
    try:  # a folder that refuses new files is named, never the temporary file's name
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(target.parent)) from exc
    os.close(fd)
    try:
        with naming(target), _instead_of(tmp, target):
            yield Path(tmp)
            # mkstemp makes 0600 files; give the result the mode open() would (0666 & ~umask)
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextmanager
def _instead_of(tmp: str, target: Path) -> Iterator[None]:
    """An ``OSError`` about the temporary file ``tmp`` names ``target`` instead."""
    try:
        yield
    except OSError as exc:
        if exc.filename != tmp or exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror, str(target)) from exc


@contextmanager
def naming(path: str | Path) -> Iterator[None]:
    """Give an ``OSError`` raised in the block ``path`` as its file name when it has none.

    A write that fails for a full disk (``ENOSPC``) or a quota says only "No space
    left on device"; the user must learn which file it was.
    """
    try:
        yield
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def atomic_write_text(path: str | Path, text: str, *, fsync: bool = False) -> Path:
    """Replace ``path`` with ``text`` (UTF-8) atomically; ``fsync`` forces it to disk first."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def read_input(
    path: str | Path,
    what: str,
    error: type[Exception],
    limit: int = 1 << 30,
    *,
    head: int | None = None,
) -> bytes:
    """The bytes of a file the user gave (a manifest, a norms profile, a config).

    The file is opened without blocking and checked before it is read, so a
    FIFO, a device such as ``/dev/zero`` or a folder is refused at once
    instead of hanging or filling memory.

    Args:
        path: the file.
        what: its role, for the message (``"manifest"``).
        error: the exception type raised (one line, naming the file).
        limit: largest accepted size in bytes.
        head: read only the first ``head`` bytes (any size accepted), e.g. to look at a
            CSV's header.

    Raises:
        error: missing, not a regular file, unreadable, or larger than ``limit``.
    """
    import stat

    src = Path(path)
    if "\0" in str(src):
        raise error(f"{str(src)!r}: the {what} path contains a NUL byte")
    try:
        fd = os.open(src, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise error(f"{src}: {what} not found") from None
    except OSError as exc:
        raise error(f"{src}: cannot read the {what} ({exc.strerror})") from exc
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise error(f"{src}: the {what} is a folder, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{src}: the {what} is not a regular file")
        if head is not None:
            with os.fdopen(fd, "rb", closefd=False) as fh:
                return fh.read(head)
        if info.st_size > limit:
            raise error(f"{src}: the {what} is too large ({info.st_size} bytes)")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(limit + 1)
    except OSError as exc:
        raise error(f"{src}: cannot read the {what} ({exc.strerror})") from exc
    finally:
        os.close(fd)


def read_input_text(path: str | Path, what: str, error: type[Exception]) -> str:
    """:func:`read_input`, decoded as UTF-8 (a BOM is dropped); other encodings are named."""
    return decode_input(read_input(path, what, error), path, what, error)


def decode_input(data: bytes, path: str | Path, what: str, error: type[Exception]) -> str:
    """``data`` read from ``path`` as UTF-8 text (a BOM is dropped), or one line naming it."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(
            f"{path}: the {what} is not UTF-8 text (byte {exc.start}: 0x{data[exc.start]:02x}); "
            "save it as UTF-8"
        ) from None


def read_json(path: str | Path, what: str, error: type[Exception]) -> object:
    """A JSON file the user gave, with one-line errors (bad syntax, nesting too deep)."""
    import json

    text = read_input_text(path, what, error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(
            f"{path}: the {what} is not valid JSON ({exc.msg} at line {exc.lineno})"
        ) from None
    except RecursionError:
        raise error(f"{path}: the {what} is nested too deeply to be read") from None


@contextmanager
def locked_file(
    path: str | Path,
    error: Callable[[str], Exception],
    in_use: Callable[[str], str],
    *,
    inheritable: bool = False,
) -> Iterator[int]:
    """Hold an exclusive ``flock`` on ``path`` for the block, with this process's PID in it.

    The lock file is never written through a symbolic link or into another file's
    hard link (it would overwrite that file with a PID), and a FIFO or device in its
    place is refused. The OS releases the lock when the last holder of the file
    descriptor ends, even after ``kill -9``; with ``inheritable`` the processes this
    one starts hold it too, so a step that survives its parent keeps the lock.

    Args:
        path: the lock file (created if missing).
        error: the one-line exception type raised.
        in_use: builds the message for a lock held elsewhere from the PID written in it.
        inheritable: pass the descriptor on to child processes.

    Yields:
        the file descriptor.

    Raises:
        error: held by another process, or the place cannot hold a lock file.
    """
    import errno
    import fcntl
    import stat

    lock = Path(path)
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(lock, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise error(f"{lock} is a symbolic link; CueLab does not write through it "
                        "(remove it)") from None  # fmt: skip
        if exc.errno == errno.EISDIR:
            raise error(f"{lock} is a folder, not a lock file; remove it") from None
        raise error(f"{lock.parent}: cannot write in this folder ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{lock} is not a regular file; remove it")
        if info.st_nlink > 1:
            raise error(f"{lock} is a hard link to another file; remove it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            raise error(in_use(holder)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        if inheritable:
            os.set_inheritable(fd, True)
        yield fd
    finally:
        os.close(fd)
