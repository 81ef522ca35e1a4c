"""The torn-write-safe table reader and ``repair`` on every kind of damage, byte by byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from cuelab.core.runs.csvio import (
    CorruptTableError,
    format_row,
    read_complete_rows,
    repair_table,
)

HEADER = ["utt_id", "prediction", "raw_output"]
ROWS = [
    ["a", "angry", "plain"],
    ["b", "sad", 'step one\nstep two, with "quotes"\nanswer: sad'],  # a multi-line CoT answer
    ["c", "happy", "carriage\rreturn"],
    ["d", "neutral", "=HYPERLINK(1)"],
]


def table(tmp_path: Path, tail: bytes = b"", rows: list[list[str]] = ROWS) -> Path:
    path = tmp_path / "predictions.csv"
    text = format_row(HEADER) + "".join(format_row(r) for r in rows)
    path.write_bytes(text.encode() + tail)
    return path


def test_every_cell_reads_back_exactly(tmp_path: Path) -> None:
    path = table(tmp_path)
    header, rows, good = read_complete_rows(path)
    assert header == HEADER and rows == ROWS and good == path.stat().st_size


@pytest.mark.parametrize(
    "tail",
    [
        b"e,angr",  # cut mid-record
        b'e,sad,"step one\nstep tw',  # cut inside a multi-line cell
        b"\0" * 300,  # a zero-filled tail after a crash
        b"spk01_f_angry_01\rgarbage\r\x00\xff",  # garbage with bare CRs and a non-UTF-8 byte
        b'e,"',
    ],
)
def test_a_torn_last_record_is_left_out_and_cut_there(tmp_path: Path, tail: bytes) -> None:
    path = table(tmp_path, tail)
    _header, rows, good = read_complete_rows(path)
    assert rows == ROWS and good == path.stat().st_size - len(tail)


@pytest.mark.parametrize(
    ("damage", "line"),
    [
        (lambda b: b.replace(b"\na,", b'\n"a,', 1), 2),  # a stray quote that opens a cell
        (lambda b: b.replace(b"\na,", b"\n\0\0a,", 1), 2),  # NULs in the middle
        (lambda b: b.replace(b"plain", b"pl\xe9in", 1), 2),  # not UTF-8
        (lambda b: b.replace(b"\nd,", b"\nd,extra,", 1), 7),  # a cell too many
        (lambda b: b.replace(b"plain", b"pl\rain", 1), 2),  # a bare CR, unquoted
    ],
)
def test_damage_before_the_last_record_is_named_and_repair_moves_only_it(
    tmp_path: Path, damage, line: int
) -> None:
    path = table(tmp_path, rows=[*ROWS, ["e", "angry", "last"]])
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CorruptTableError) as err:
        read_complete_rows(path)
    assert f"line {line} " in str(err.value) and "cuelab repair" in str(err.value)
    kept, moved, quarantine = repair_table(path)
    assert moved == 1 and kept == len(ROWS)
    assert quarantine is not None and quarantine.read_bytes().count(b"\n") >= 1
    _, rows, _ = read_complete_rows(path)
    assert len(rows) == len(ROWS) and rows[-1] == ["e", "angry", "last"]


def test_nul_characters_in_a_cell_are_never_written() -> None:
    assert "\0" not in format_row(["a", "x\0y"])
