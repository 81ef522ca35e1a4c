"""The manifest CSV: one row per clip, paths relative to the manifest's folder.

Columns (DESIGN.md): ``path`` (required), ``label``, ``speaker``, ``gender``
(``m``/``f``/empty), ``split``, and for speech-over-background sets
``transcript``, ``scene``, ``events`` (``;``-separated), ``snr_db``. A row may
carry ``start`` and ``end`` (seconds): it is then a region of the clip, a unit
of its own (``eval`` scores only that span; its utterance id gets
``@<start>-<end>``), and one file may appear once per region. Unknown
columns are kept. Errors name the manifest, the row (1 = first data row) and
the column.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cuelab.core.errors import ManifestError
from cuelab.core.safeio import decode_input, read_input, restore

KNOWN_COLUMNS = (
    "path",
    "label",
    "speaker",
    "gender",
    "split",
    "transcript",
    "scene",
    "events",
    "snr_db",
    "start",
    "end",
)


def _seconds(value: float) -> str:
    """Seconds as an utterance id shows them (microseconds, no trailing zeros)."""
    return repr(round(value, 6))


@dataclass(frozen=True)
class ManifestRow:
    """One validated clip entry."""

    index: int  # 1-based data row number
    path: Path  # absolute
    rel_path: str
    fields: dict[str, str] = field(default_factory=dict)

    def get(self, column: str, default: str = "") -> str:
        """A column's value (stripped), or ``default`` when absent or empty."""
        value = self.fields.get(column, "")
        return value if value else default

    @property
    def utt_id(self) -> str:
        """Utterance id: the ``utt_id`` column, else the path without suffix
        (``@<start>-<end>`` added for a region)."""
        own = self.get("utt_id")
        if own:
            return own
        base = str(Path(self.rel_path).with_suffix(""))
        if self.start is not None and self.end is not None:
            return f"{base}@{_seconds(self.start)}-{_seconds(self.end)}"
        return base

    @property
    def start(self) -> float | None:
        """Region start in seconds (None: the whole clip)."""
        value = self.get("start")
        return float(value) if value else None

    @property
    def end(self) -> float | None:
        """Region end in seconds (None: the whole clip)."""
        value = self.get("end")
        return float(value) if value else None

    @property
    def unit(self) -> tuple[str, float | None, float | None]:
        """(path, start, end): what an annotation of this row is keyed by."""
        return (self.rel_path, self.start, self.end)

    @property
    def gender(self) -> str | None:
        """``"m"``, ``"f"`` or None."""
        return self.get("gender") or None

    @property
    def events(self) -> list[str]:
        """The ``;``-separated ``events`` column as a list."""
        return [e.strip() for e in self.get("events").split(";") if e.strip()]


@dataclass
class Manifest:
    """A validated manifest."""

    path: Path
    columns: list[str]
    rows: list[ManifestRow]
    sha256: str

    def __iter__(self) -> Iterator[ManifestRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def split(self, name: str | None) -> list[ManifestRow]:
        """Rows of one split (all rows when ``name`` is None or empty)."""
        return [r for r in self.rows if not name or r.get("split") == name]


def _check_row(
    src: Path, i: int, raw: dict[str, str], root: Path, check_files: bool
) -> ManifestRow:
    where = f"{src.name} row {i}"
    rel = raw.get("path", "")
    if not rel:
        raise ManifestError(f"{where}, column 'path': empty")
    if "\0" in rel:
        raise ManifestError(f"{where}, column 'path': contains a NUL byte")
    gender = raw.get("gender", "").lower()
    if gender in ("male", "female"):
        gender = gender[0]
    if gender not in ("", "m", "f"):
        raise ManifestError(f"{where}, column 'gender': '{raw['gender']}' is not m, f or empty")
    raw["gender"] = gender
    if raw.get("snr_db", ""):
        text = raw["snr_db"].strip().lower()
        try:
            value = float(text)
        except ValueError:
            raise ManifestError(
                f"{where}, column 'snr_db': '{raw['snr_db']}' is not a number"
            ) from None
        if math.isnan(value):
            raise ManifestError(f"{where}, column 'snr_db': NaN is not an SNR")
    _check_span(raw, where)
    path = (root / rel).resolve()
    if check_files and not path.is_file():
        raise ManifestError(f"{where}, column 'path': file not found: {rel}")
    return ManifestRow(index=i, path=path, rel_path=rel, fields=raw)


def _check_span(raw: dict[str, str], where: str) -> None:
    """``start``/``end``: both or neither, finite seconds, start before end."""
    times: dict[str, float] = {}
    for col in ("start", "end"):
        text = raw.get(col, "").strip()
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0:
            raise ManifestError(f"{where}, column '{col}': '{text}' is not a time in seconds")
        times[col] = value
    if len(times) == 1:
        missing = "end" if "start" in times else "start"
        raise ManifestError(f"{where}, column '{missing}': a region needs both start and end")
    if times and not times["start"] < times["end"]:
        raise ManifestError(f"{where}, column 'end': {times['end']} is not after start")


def _csv_problem(exc: csv.Error, line: int) -> str:
    """The csv module's complaint in a user's words (``line``: the last line read)."""
    text = str(exc)
    if "field larger than field limit" in text:
        return f"a cell after line {line} is longer than {csv.field_size_limit()} characters"
    if "unexpected end of data" in text:
        return f'a quote (") opened before line {line} is never closed'
    if "expected after" in text:
        return f'line {line}: text follows a closing quote (") in a cell'
    return f"line {line}: {text}"


def read_manifest(path: str | Path, *, check_files: bool = True) -> Manifest:
    """Read and validate a manifest CSV.

    Raises:
        ManifestError: unreadable file, missing ``path`` column, a bad value
            (the message names the row and the column), a duplicate path, or
            no rows.
    """
    src = Path(path)
    data = read_input(src, "manifest", ManifestError)
    text = decode_input(data, src, "manifest", ManifestError)
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        columns = [c.strip() for c in (reader.fieldnames or [])]
        records = list(reader)
    except csv.Error as exc:
        raise ManifestError(f"{src}: {_csv_problem(exc, reader.line_num)}") from None
    if "path" not in columns:
        raise ManifestError(f"{src}: no 'path' column (columns: {', '.join(columns) or 'none'})")
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        raise ManifestError(f"{src}: column '{twice[0]}' appears twice in the header")
    rows: list[ManifestRow] = []
    seen: dict[tuple[str, float | None, float | None], int] = {}
    for i, raw in enumerate(records, start=1):
        if None in raw:
            raise ManifestError(f"{src.name} row {i}: more cells than columns")
        clean = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        # undo spreadsheet neutralisation (CueLab's writers quote formula-like cells)
        clean = {k: v if k == "path" else restore(v) for k, v in clean.items()}
        row = _check_row(src, i, clean, src.parent, check_files)
        if row.unit in seen:
            raise ManifestError(
                f"{src.name} row {i}, column 'path': duplicate of row {seen[row.unit]}"
            )
        seen[row.unit] = i
        rows.append(row)
    if not rows:
        raise ManifestError(f"{src}: manifest has no rows")
    return Manifest(src.resolve(), columns, rows, hashlib.sha256(data).hexdigest())
